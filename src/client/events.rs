//! Events and property changes over Server-Sent Events: [`ThingClient::subscribe_event`] and
//! [`ThingClient::watch_property`], each a `Stream` of typed values that reconnects by itself
//! and resumes where it stopped (`Last-Event-ID`), so nothing is missed or seen twice while the
//! Thing's history holds it.

use std::time::Duration;

use axum::http::Method;
use bytes::BytesMut;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ClientError;
use super::thing::ThingClient;

/// The event type of the message that says events were lost.
const LOST: &str = "labthings:lost";

impl ThingClient {
    /// Subscribes to an event over Server-Sent Events: a stream of its data as `T`.
    ///
    /// The stream reconnects after a dropped connection (backing off from 100 ms to 5 s) and
    /// resumes after the last event it gave, so no event in the Thing's history is missed or
    /// repeated. If some were lost anyway (the connection was down longer than the history
    /// lasts, or the server restarted), it yields [`ClientError::EventsLost`] and goes on. It
    /// ends with an error the server gives (a 4xx, say), and when dropped.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoSuchAffordance`] or [`ClientError::Protocol`] if the Thing has no such
    /// event or no Server-Sent Events form for it.
    pub fn subscribe_event<T: DeserializeOwned + Send + 'static>(
        &self,
        event: &str,
    ) -> Result<BoxStream<'static, Result<T, ClientError>>, ClientError> {
        let url = self.form_where("events", event, "subscribeevent", is_sse)?;
        Ok(typed(self.sse(url), event.to_owned()).boxed())
    }

    /// Observes a property over Server-Sent Events: its value now, then every change, as `T`;
    /// reconnecting and resuming as [`subscribe_event`](Self::subscribe_event) does.
    ///
    /// # Errors
    ///
    /// As [`subscribe_event`](Self::subscribe_event), for the property.
    pub fn watch_property<T: DeserializeOwned + Send + 'static>(
        &self,
        property: &str,
    ) -> Result<BoxStream<'static, Result<T, ClientError>>, ClientError> {
        let url = self.form_where("properties", property, "observeproperty", is_sse)?;
        Ok(typed(self.sse(url), property.to_owned()).boxed())
    }

    /// The messages of the Server-Sent Events stream at `url`, reconnecting and resuming.
    fn sse(
        &self,
        url: Url,
    ) -> impl Stream<Item = Result<SseMessage, ClientError>> + Send + 'static {
        let state = Reader {
            client: self.clone(),
            url,
            last_id: None,
            response: None,
            buffer: BytesMut::new(),
            backoff: Duration::ZERO,
            ended: false,
        };
        futures_util::stream::unfold(state, |mut reader| async move {
            if reader.ended {
                return None;
            }
            let item = reader.next().await;
            if item.is_err() {
                reader.ended = !matches!(item, Err(ClientError::EventsLost { .. }));
            }
            Some((item, reader))
        })
    }
}

/// Whether a form is a Server-Sent Events one.
fn is_sse(form: &Value) -> bool {
    form["subprotocol"] == "sse"
}

/// The data of each message as `T`; lost events as an error item.
fn typed<T: DeserializeOwned>(
    messages: impl Stream<Item = Result<SseMessage, ClientError>>,
    name: String,
) -> impl Stream<Item = Result<T, ClientError>> {
    messages.map(move |message| {
        let message = message?;
        serde_json::from_str(&message.data).map_err(|source| ClientError::Json {
            what: format!("the data of `{name}`"),
            source,
        })
    })
}

/// One Server-Sent Events message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseMessage {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// A reconnecting reader of one SSE URL.
struct Reader {
    client: ThingClient,
    url: Url,
    /// The id of the last message given, sent as `Last-Event-ID` on reconnecting.
    last_id: Option<String>,
    response: Option<reqwest::Response>,
    buffer: BytesMut,
    /// The wait before the next reconnection.
    backoff: Duration,
    ended: bool,
}

impl Reader {
    /// The next message, reconnecting as needed; an error ends the stream unless it is
    /// [`ClientError::EventsLost`].
    async fn next(&mut self) -> Result<SseMessage, ClientError> {
        loop {
            if let Some(message) = parse_one(&mut self.buffer) {
                if message.event.as_deref() == Some(LOST) {
                    let missed = serde_json::from_str::<Value>(&message.data)
                        .ok()
                        .and_then(|data| data["missed"].as_u64());
                    return Err(ClientError::EventsLost {
                        url: self.url.to_string(),
                        missed,
                    });
                }
                if message.id.is_some() {
                    self.last_id.clone_from(&message.id);
                }
                return Ok(message);
            }
            let Some(response) = self.response.as_mut() else {
                self.connect().await?;
                continue;
            };
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.backoff = Duration::ZERO;
                    self.buffer.extend_from_slice(&chunk);
                }
                // The connection ended or broke: reconnect and resume.
                Ok(None) | Err(_) => {
                    self.response = None;
                    self.buffer.clear();
                }
            }
        }
    }

    /// Opens the stream, resuming after the last id; retries transport failures with backoff.
    async fn connect(&mut self) -> Result<(), ClientError> {
        loop {
            if !self.backoff.is_zero() {
                tokio::time::sleep(self.backoff).await;
            }
            self.backoff =
                (self.backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
            let mut request = self
                .client
                .request_unbounded(Method::GET, self.url.clone())
                .header("accept", "text/event-stream");
            if let Some(id) = &self.last_id {
                request = request.header("last-event-id", id);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(_) => continue,
            };
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                continue;
            }
            if !status.is_success() {
                return Err(ClientError::from_response(response).await);
            }
            self.response = Some(response);
            return Ok(());
        }
    }
}

/// Takes one complete message (ended by a blank line) off the front of `buffer`, skipping
/// comments and messages without data. Lines may end in CRLF, LF or CR.
pub(crate) fn parse_one(buffer: &mut BytesMut) -> Option<SseMessage> {
    loop {
        let end = message_end(buffer)?;
        let block = buffer.split_to(end.1);
        let text = String::from_utf8_lossy(&block[..end.0]);
        let (mut id, mut event, mut data): (Option<String>, Option<String>, Option<String>) =
            (None, None, None);
        for line in text.split(['\n', '\r']).filter(|line| !line.is_empty()) {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => match &mut data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                },
                _ => {} // a comment (empty field name), `retry`, or unknown
            }
        }
        if let Some(data) = data {
            return Some(SseMessage { id, event, data });
        }
    }
}

/// Where the first message ends: (its length, its length with the blank line).
fn message_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buffer.len() {
        for terminator in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if buffer[i..].starts_with(terminator) {
                return Some((i, i + terminator.len()));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_parsed_whatever_the_line_ends_and_comments_skipped() {
        let mut buffer = BytesMut::from(
            &b": heartbeat\n\nid: 7.1\nevent: moved\ndata: [1,\ndata: 2]\n\nid: 7.2\r\ndata: 3\r\n\r\nda"[..],
        );
        assert_eq!(
            parse_one(&mut buffer),
            Some(SseMessage {
                id: Some("7.1".into()),
                event: Some("moved".into()),
                data: "[1,\n2]".into(),
            })
        );
        assert_eq!(parse_one(&mut buffer).unwrap().data, "3");
        assert_eq!(parse_one(&mut buffer), None, "incomplete");
        assert_eq!(&buffer[..], b"da");
    }
}
