//! Server-Sent Events (`text/event-stream`) from a Thing's event log: message ids, resuming
//! with `Last-Event-ID`, the signal for lost events, heartbeats, and the end at shutdown.
//!
//! The messages follow the shape of the W3C WoT HTTP SSE profile: a stream of one affordance
//! (one event, one property) sends `data:` (the JSON value) with no event type, which is what
//! `EventSource.onmessage` and WoT consumers such as node-wot read; a stream of several sends
//! the affordance's name as the event type. Every message has an `id` of the form
//! `<server start>.<sequence> <time>`, the time being when the server recorded the event or the
//! change (RFC 3339, UTC), which a browser reads as `MessageEvent.lastEventId`:
//!
//! ```text
//! id: 1764500000000.42 2026-12-06T14:00:00.123456Z
//! data: [100,0,0]
//! ```
//!
//! A client that reconnects with that id in `Last-Event-ID` gets the messages it missed while
//! they are still in the Thing's history, then live ones, nothing twice. If some were dropped
//! from the history first, or the id is from before a server restart, it first gets a message
//! of type `labthings:lost` (a name no affordance can have) with `{"missed": N}` (`null` when
//! unknown). A comment line every 15 s (`ThingServerBuilder::sse_heartbeat`) keeps proxies from
//! closing a quiet stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event as SseMessage, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use super::metrics::Metrics;
use crate::event::{Delivery, EventLog};
use crate::openapi::RouteDoc;

/// The media type of a Server-Sent Events stream.
pub(crate) const EVENT_STREAM: &str = "text/event-stream";

/// The event type of the message that says events were lost.
const LOST: &str = "labthings:lost";

/// How often a quiet stream sends a comment line, by default.
pub(crate) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// What every SSE route of a server shares.
#[derive(Clone)]
pub(crate) struct SseScope {
    /// Identifies this run of the server in message ids (its start, in ms since 1970).
    pub(crate) boot: u64,
    pub(crate) metrics: Arc<Metrics>,
    /// Ends every stream at shutdown.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    /// How often a quiet stream sends a comment line.
    pub(crate) heartbeat: Duration,
}

impl SseScope {
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        shutdown: tokio_util::sync::CancellationToken,
        heartbeat: Duration,
    ) -> Self {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        Self {
            boot,
            metrics,
            shutdown,
            heartbeat,
        }
    }
}

/// What one stream sends.
pub(crate) struct Subscription {
    /// The log it reads.
    pub(crate) log: Arc<EventLog>,
    /// One affordance only (messages without an event type), or every one (typed messages).
    pub(crate) name: Option<Arc<str>>,
    /// For properties: their current values, sent first to a client that does not resume.
    pub(crate) current: Vec<(Arc<str>, String)>,
}

/// Where a client resumes: after which sequence number, and whether to say events were lost.
#[derive(Debug, PartialEq, Eq)]
struct Resume {
    after: u64,
    /// `Some(None)`: lost, number unknown (an id from another run of the server).
    lost: Option<Option<u64>>,
}

/// Reads `Last-Event-ID` against this run of the server and the log (the oldest and newest
/// sequence numbers it holds).
fn resume(headers: &HeaderMap, boot: u64, (oldest, newest): (u64, u64)) -> Option<Resume> {
    let id = headers.get("last-event-id")?.to_str().ok()?.trim();
    // The cursor is the first word; the time after it is for people and plots.
    let id = id.split_whitespace().next().unwrap_or_default();
    let parsed = id
        .split_once('.')
        .and_then(|(run, seq)| Some((run.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)));
    Some(match parsed {
        Some((run, seq)) if run == boot && seq <= newest => Resume {
            after: seq,
            lost: None,
        },
        // Another run of the server, or an id this run never sent: everything held may be new
        // to the client, and what came before may be lost.
        _ => Resume {
            after: oldest.saturating_sub(1),
            lost: Some(None),
        },
    })
}

/// A message's `id`: the cursor to resume from, and the server's time.
fn message_id(boot: u64, seq: u64, time: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{boot}.{seq} {}",
        time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
}

/// The SSE response for `subscription`, resuming from the request's `Last-Event-ID`.
pub(crate) fn respond(
    scope: &SseScope,
    headers: &HeaderMap,
    subscription: Subscription,
) -> Response {
    let Subscription { log, name, current } = subscription;
    let newest = log.newest();
    let boot = scope.boot;
    let typed = name.is_none();
    let (after, opening) = match resume(headers, boot, (log.oldest(), newest)) {
        Some(Resume { after, lost }) => {
            let lost = lost.map(|missed| Ok(lost_message(missed)));
            (after, lost.into_iter().collect::<Vec<_>>())
        }
        // A new subscriber: the current values (properties), then what comes next.
        None => {
            let id = message_id(boot, newest, chrono::Utc::now());
            let values = current.into_iter().map(|(property, value)| {
                let message = SseMessage::default().id(id.clone()).data(value);
                Ok(if typed {
                    message.event(&*property)
                } else {
                    message
                })
            });
            (newest, values.collect())
        }
    };
    let open = scope.metrics.sse_opened();
    let live = log.subscribe(after, name).map(move |delivery| {
        let _counted = &open;
        Ok::<_, Infallible>(match delivery {
            Delivery::Event(record) => {
                let message = SseMessage::default()
                    .id(message_id(boot, record.seq, record.time))
                    .data(&*record.data);
                if typed {
                    message.event(&*record.name)
                } else {
                    message
                }
            }
            Delivery::Lost(missed) => lost_message(Some(missed)),
        })
    });
    let messages = stream::iter(opening)
        .chain(live)
        .take_until(scope.shutdown.clone().cancelled_owned());
    Sse::new(messages)
        .keep_alive(KeepAlive::new().interval(scope.heartbeat))
        .into_response()
}

/// The OpenAPI operation of a Server-Sent Events route.
pub(crate) fn doc(
    path: &str,
    operation_id: String,
    summary: String,
    description: &str,
    thing: &str,
) -> RouteDoc {
    RouteDoc::get(
        path.to_owned(),
        json!({
            "operationId": operation_id,
            "summary": summary,
            "description": format!(
                "{description}\n\nServer-Sent Events: each message has an `id`; reconnect with \
                 `Last-Event-ID` to get what was missed while it is still held. A message of type \
                 `labthings:lost` says how many were lost (`{{\"missed\": N}}`)."
            ).trim_start().to_owned(),
            "tags": [thing],
            "parameters": [{"name": "Last-Event-ID", "in": "header", "required": false,
                "description": "The id of the last message received, to resume after it",
                "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "A stream of Server-Sent Events; the data of each is JSON",
                    "content": {EVENT_STREAM: {"schema": {"type": "string"}}}},
            },
        }),
    )
}

/// The TD form of a Server-Sent Events route at `path` for the operations `ops` (`subscribe…`
/// and `unsubscribe…`, or `observe…` and `unobserve…`). Its `contentType` is that of each
/// message's data, which is what WoT consumers decode it with.
pub(crate) fn form(path: &str, ops: [&str; 2]) -> Value {
    json!({
        "href": crate::layout::relative(path),
        "op": ops,
        "subprotocol": "sse",
        "contentType": "application/json",
    })
}

fn lost_message(missed: Option<u64>) -> SseMessage {
    SseMessage::default()
        .event(LOST)
        .data(json!({ "missed": missed }).to_string())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_id(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_str(id).unwrap());
        headers
    }

    #[test]
    fn an_id_of_this_run_resumes_after_it() {
        assert_eq!(resume(&HeaderMap::new(), 7, (1, 10)), None);
        assert_eq!(
            resume(&with_id("7.4"), 7, (1, 10)),
            Some(Resume {
                after: 4,
                lost: None
            })
        );
        // The id as sent, with the server's time after the cursor.
        assert_eq!(
            resume(&with_id("7.4 2026-12-06T14:00:00.123456Z"), 7, (1, 10)),
            Some(Resume {
                after: 4,
                lost: None
            })
        );
        assert_eq!(
            message_id(7, 4, "2026-12-06T14:00:00.123456Z".parse().unwrap()),
            "7.4 2026-12-06T14:00:00.123456Z"
        );
    }

    #[test]
    fn an_id_of_another_run_or_unknown_replays_the_history_and_says_events_may_be_lost() {
        let lost = Some(Resume {
            after: 4,
            lost: Some(None),
        });
        assert_eq!(resume(&with_id("6.4"), 7, (5, 10)), lost);
        assert_eq!(resume(&with_id("7.11"), 7, (5, 10)), lost, "not sent yet");
        assert_eq!(resume(&with_id("nonsense"), 7, (5, 10)), lost);
    }
}
