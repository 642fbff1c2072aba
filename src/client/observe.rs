//! Observing a Thing over its websocket: [`ThingClient::observe_property`] and
//! [`ThingClient::observe_action`], in the LabThings message protocol.

use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use super::ClientError;
use super::invocation::ActionStatus;
use super::thing::{ThingClient, ws_problem};

impl ThingClient {
    /// Observes a property over the Thing's websocket: a stream of its new values as JSON.
    pub async fn observe_property(
        &self,
        property: &str,
    ) -> Result<BoxStream<'static, Result<Value, ClientError>>, ClientError> {
        let url = self.form_where("properties", property, "observeproperty", is_websocket)?;
        let name = property.to_owned();
        let stream = self
            .observe(url, "addPropertyObservation", property)
            .await?
            .filter_map(move |message| {
                let item = match message {
                    Ok(message) if message["messageType"] == "propertyStatus" => {
                        message["data"].get(&name).cloned().map(Ok)
                    }
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
            .observe(ws, "addActionObservation", action)
            .await?
            .filter_map(move |message| {
                let item = match message {
                    Ok(message) if message["messageType"] == "actionStatus" => {
                        let data = &message["data"];
                        (data["action name"] == name.as_str()).then(|| {
                            Ok(ActionStatus {
                                action: name.clone(),
                                status: data["status"].as_str().unwrap_or_default().to_owned(),
                                id: data["id"].as_str().map(str::to_owned),
                                href: data["href"].as_str().map(str::to_owned),
                            })
                        })
                    }
                    Ok(_) => None,
                    Err(error) => Some(Err(error)),
                };
                std::future::ready(item)
            });
        Ok(stream.boxed())
    }

    /// Opens the websocket at `url`, asks to observe `name`, and yields every JSON message; an
    /// error reply about `name` ends the stream with that error.
    async fn observe(
        &self,
        url: Url,
        message_type: &str,
        name: &str,
    ) -> Result<BoxStream<'static, Result<Value, ClientError>>, ClientError> {
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
        let subscribe = json!({"messageType": message_type, "data": {name: true}});
        socket
            .send(tungstenite::Message::text(subscribe.to_string()))
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
                    let Ok(message) = serde_json::from_str::<Value>(&message) else {
                        continue;
                    };
                    if message["messageType"] == "response" && message["error"].is_object() {
                        let problem = Box::new(ws_problem(&message["error"]));
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
