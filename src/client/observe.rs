//! Observing a Thing over its websocket: [`ThingClient::observe_property`] and
//! [`ThingClient::observe_action`], in the LabThings message protocol.

use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use super::ClientError;
use super::http::ws_problem;
use super::invocation::ActionStatus;
use super::thing::ThingClient;
use crate::observation::{ClientMessage, Observed, ServerMessage};

impl ThingClient {
    /// Observes a property over the Thing's websocket: a stream of its new values as JSON.
    pub async fn observe_property(
        &self,
        property: &str,
    ) -> Result<BoxStream<'static, Result<Value, ClientError>>, ClientError> {
        let url = self.form_where("properties", property, "observeproperty", is_websocket)?;
        let name = property.to_owned();
        let stream = self
            .observe(url, ClientMessage::add(Observed::Property, property))
            .await?
            .filter_map(move |message| {
                let item = match message {
                    Ok(ServerMessage::PropertyStatus { mut data }) => data.remove(&name).map(Ok),
                    Ok(_) => None,
                    Err(error) => Some(Err(error)),
                };
                std::future::ready(item)
            });
        Ok(stream.boxed())
    }

    /// Observes an action over the Thing's websocket: a stream of its invocations' status
    /// changes.
    pub async fn observe_action(
        &self,
        action: &str,
    ) -> Result<BoxStream<'static, Result<ActionStatus, ClientError>>, ClientError> {
        let url = self.form("actions", action, "invokeaction")?;
        // Actions have no observe form of their own: they share the properties' websocket, or
        // the conventional `<thing>/ws`.
        let ws = self
            .properties()
            .iter()
            .find_map(|property| {
                self.form_where("properties", property, "observeproperty", is_websocket)
                    .ok()
            })
            .map_or_else(|| websocket_beside(&url), Ok)?;
        let name = action.to_owned();
        let stream = self
            .observe(ws, ClientMessage::add(Observed::Action, action))
            .await?
            .filter_map(move |message| {
                let item = match message {
                    Ok(ServerMessage::ActionStatus { data }) => (data.action == name).then(|| {
                        Ok(ActionStatus {
                            action: data.action,
                            status: data.status,
                            id: data.id,
                            href: data.href,
                        })
                    }),
                    Ok(_) => None,
                    Err(error) => Some(Err(error)),
                };
                std::future::ready(item)
            });
        Ok(stream.boxed())
    }

    /// Opens the websocket at `url`, sends `subscribe`, and yields every message the server
    /// sends; an error reply ends the stream with that error.
    async fn observe(
        &self,
        url: Url,
        subscribe: ClientMessage,
    ) -> Result<BoxStream<'static, Result<ServerMessage, ClientError>>, ClientError> {
        let mut url = url;
        let scheme = match url.scheme() {
            "http" => "ws",
            "https" => "wss",
            other => other,
        }
        .to_owned();
        let _ = url.set_scheme(&scheme);
        let ws_error = |reason: String| ClientError::WebSocket {
            url: url.to_string(),
            reason,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| ws_error(error.to_string()))?;
        request.headers_mut().extend(self.headers().clone());
        let connect = tokio_tungstenite::connect_async(request);
        let (mut socket, _) = tokio::time::timeout(self.request_timeout(), connect)
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!("opening the websocket {url}"),
                after: self.request_timeout(),
            })?
            .map_err(|error| ws_error(error.to_string()))?;
        let subscribe = serde_json::to_string(&subscribe).expect("a message is JSON");
        socket
            .send(tungstenite::Message::text(subscribe))
            .await
            .map_err(|error| ws_error(error.to_string()))?;
        let url = url.to_string();
        let stream = futures_util::stream::unfold(Some(socket), move |socket| {
            let url = url.clone();
            async move {
                let mut socket = socket?;
                loop {
                    let message = match socket.next().await {
                        None | Some(Ok(tungstenite::Message::Close(_))) => return None,
                        Some(Err(error)) => {
                            let reason = error.to_string();
                            return Some((Err(ClientError::WebSocket { url, reason }), None));
                        }
                        Some(Ok(tungstenite::Message::Text(text))) => text,
                        Some(Ok(_)) => continue,
                    };
                    // A message of a newer server that this client does not know is skipped.
                    let Ok(message) = serde_json::from_str::<ServerMessage>(&message) else {
                        continue;
                    };
                    if let ServerMessage::Response { error, .. } = message {
                        let error = serde_json::to_value(&error).unwrap_or_default();
                        let problem = Box::new(ws_problem(&error));
                        return Some((Err(ClientError::Observation { url, problem }), None));
                    }
                    return Some((Ok(message), Some(socket)));
                }
            }
        });
        Ok(stream.boxed())
    }
}

/// `<thing>/ws` beside an action's URL, the LabThings convention.
fn websocket_beside(action: &Url) -> Result<Url, ClientError> {
    action.join("ws").map_err(|error| ClientError::InvalidUrl {
        url: action.to_string(),
        reason: error.to_string(),
    })
}

/// Whether a form is a websocket's (not, say, a Server-Sent Events one).
fn is_websocket(form: &Value) -> bool {
    let href = form["href"].as_str().unwrap_or_default();
    href.starts_with("ws://")
        || href.starts_with("wss://")
        || form["subprotocol"] == "webthingprotocol"
}
