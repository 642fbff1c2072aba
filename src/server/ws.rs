//! `WS /<thing>/ws`: observing properties and actions (the labthings-fastapi protocol).
//!
//! Messages in (JSON text):
//!
//! - `{"messageType": "addPropertyObservation", "data": {"exposure": true}}`: send the value
//!   now and on every change;
//! - `{"messageType": "addActionObservation", "data": {"capture": true}}`: send the status of
//!   every invocation of the action as it changes;
//! - `{"messageType": "addEventObservation", "data": {"moved": true}}`: send each emission of
//!   the event;
//! - `removePropertyObservation`, `removeActionObservation` and `removeEventObservation`, with
//!   the same `data`: stop.
//!
//! Messages out: `{"messageType": "propertyStatus", "data": {"exposure": 42.0}}`,
//! `{"messageType": "actionStatus", "data": {"action name": "capture", "status": "running",
//! "id": "...", "href": "..."}}`, `{"messageType": "event", "data": {"moved": [100, 0, 0]}}`
//! (and `{"messageType": "eventsLost", "data": {"missed": 3}}` if the client fell so far
//! behind that events left the Thing's history before it read them), and for a bad request `{"messageType": "response",
//! "operation": "observeproperty", "name": "...", "error": {problem details}}`.
//!
//! A client that reads slowly gets the newest value of each property (older ones are skipped,
//! never queued) and loses only its own oldest action events; it never slows a property write,
//! an action or another client.

use super::forwarded::Reached;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::StreamMap;

use super::affordance::Context;
use super::base::Base;
use super::metrics::Metrics;
use super::route_table::RouteTable;
use crate::action::{ActionEvent, Invocations};
use crate::event::{Delivery, EventLog};
use crate::layout;
use crate::observation::{
    ActionStatusData, CLIENT_MESSAGE_TYPES, ClientMessage, ErrorData, EventsLost, Observed,
    ServerMessage,
};
use crate::openapi::{self, RouteDoc};
use crate::thing::{PropertyAccess, ThingDescriptor};

const ERRORS: &str = "https://w3c.github.io/web-thing-protocol/errors";

/// Subscribes to a property's changes.
type Subscribe = Box<dyn Fn() -> BoxStream<'static, Value> + Send + Sync>;

/// A property as the websocket sees it.
struct ObservedProperty {
    name: String,
    observable: bool,
    subscribe: Subscribe,
}

/// What a websocket connection may observe on one Thing.
struct Observable {
    thing: String,
    properties: Vec<ObservedProperty>,
    actions: Vec<String>,
    events: Vec<String>,
    /// The Thing's events.
    event_log: Arc<EventLog>,
    invocations: Arc<Invocations>,
    base: Base,
    metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down.
    shutdown: tokio_util::sync::CancellationToken,
}

/// Adds `GET /{thing}/ws`, the observation websocket of one Thing, and its documentation.
pub(crate) fn serve<T: Send + Sync + 'static>(
    thing_name: &str,
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    events: &Arc<EventLog>,
    context: &Context,
    routes: &mut RouteTable,
) {
    let observable = Arc::new(Observable {
        thing: thing_name.to_owned(),
        properties: descriptor
            .properties
            .iter()
            .map(|p| ObservedProperty {
                name: p.name.to_owned(),
                observable: p.observable,
                subscribe: subscriber(thing.clone(), p.access.clone()),
            })
            .collect(),
        actions: descriptor
            .actions
            .iter()
            .map(|a| a.name.to_owned())
            .collect(),
        events: descriptor
            .events
            .iter()
            .map(|e| e.name.to_owned())
            .collect(),
        event_log: events.clone(),
        invocations: context.invocations.clone(),
        base: context.base.clone(),
        metrics: context.metrics.clone(),
        shutdown: context.shutdown.clone(),
    });
    let path = layout::websocket(thing_name);
    routes.route(
        &path,
        // GET upgrades over HTTP/1.1; CONNECT is RFC 8441's websocket over HTTP/2.
        get(upgrade).connect(upgrade).with_state(observable),
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": format!("{thing_name}_websocket"),
                "summary": format!("Observe the properties and actions of {thing_name} (WebSocket)"),
                "description": "Send `{\"messageType\": \"addPropertyObservation\", \"data\": {\"<property>\": true}}` or `addActionObservation`; receive `propertyStatus` and `actionStatus` messages.",
                "tags": [thing_name],
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol"},
                    "400": openapi::problem("Not a valid WebSocket handshake"),
                    "403": openapi::problem("The request comes from a page of another site (its `Origin` is neither this server nor in `allow_origins`)"),
                    "426": openapi::problem("Not a WebSocket upgrade request"),
                },
            }),
        )],
    );
}

/// `GET /{thing}/ws`: upgrades to a websocket.
async fn upgrade(
    State(observable): State<Arc<Observable>>,
    upgrade: WebSocketUpgrade,
    reached: Reached,
) -> Response {
    let root = observable.base.url(&reached);
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        // Small buffers keep an idle socket cheap (the library's defaults are 128 KiB each);
        // each reply is written as soon as it is sent.
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection(socket, observable, root))
}

/// The largest message (and frame) a client may send: the protocol's messages name properties,
/// actions or events to observe, a few hundred bytes each. A larger one closes the socket.
const MAX_MESSAGE: usize = 16 * 1024;

/// The most names one message may list (far more than any Thing has).
const MAX_NAMES: usize = 256;

/// The most error replies one message gets: past it, one reply says how many more were wrong.
const MAX_ERROR_REPLIES: usize = 16;

async fn connection(socket: WebSocket, observable: Arc<Observable>, root: String) {
    let _open = observable.metrics.websocket_opened();
    let (mut sink, mut incoming) = socket.split();
    let mut observing = Observing::default();
    let mut action_events = observable.invocations.events();
    loop {
        let outgoing = tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => handle(&observable, &text, &mut observing),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
            Some((name, value)) = observing.properties.next() => {
                vec![ServerMessage::PropertyStatus { data: Map::from_iter([(name, value)]) }]
            }
            event = action_events.recv() => match event {
                Ok(event) if event.thing == observable.thing
                    && observing.actions.contains(&event.action) => {
                    vec![action_status(&event, &root)]
                }
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            Some(delivery) = next_event(&mut observing.event_stream) => match delivery {
                Delivery::Event(record) if observing.events.contains(&*record.name) => {
                    let data: Value = serde_json::from_str(&record.data).unwrap_or(Value::Null);
                    vec![ServerMessage::Event {
                        data: Map::from_iter([(record.name.to_string(), data)]),
                        timestamp: Some(record.time),
                    }]
                }
                Delivery::Event(_) => continue,
                Delivery::Lost(missed) => {
                    vec![ServerMessage::EventsLost { data: EventsLost { missed } }]
                }
            },
            () = observable.shutdown.cancelled() => {
                // A clean end: the client learns why (1001 Going Away) rather than seeing the
                // connection drop.
                let close = CloseFrame {
                    code: close_code::AWAY,
                    reason: "the server is shutting down".into(),
                };
                let _ = sink.send(Message::Close(Some(close))).await;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    // Wait for the client's answering close frame, briefly.
                    while let Some(Ok(message)) = incoming.next().await {
                        if matches!(message, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                return;
            }
        };
        for message in outgoing {
            if sink
                .send(Message::Text(message.to_text().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

fn action_status(event: &ActionEvent, root: &str) -> ServerMessage {
    ServerMessage::ActionStatus {
        data: ActionStatusData {
            action: event.action.clone(),
            status: event.status.as_str().to_owned(),
            id: Some(event.id.clone()),
            href: Some(format!(
                "{root}{}",
                layout::relative(&layout::invocation(&event.id))
            )),
        },
    }
}

/// What one connection observes.
#[derive(Default)]
struct Observing {
    /// Each observed property's changes, by name.
    properties: StreamMap<String, BoxStream<'static, Value>>,
    actions: HashSet<String>,
    events: HashSet<String>,
    /// The Thing's events from when the first was observed; none while no event is, so that a
    /// connection observing no event does no work when one is emitted.
    event_stream: Option<BoxStream<'static, Delivery>>,
}

/// The next event for a connection that observes some; never, for one that observes none.
async fn next_event(stream: &mut Option<BoxStream<'static, Delivery>>) -> Option<Delivery> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Applies one message; returns the replies (errors) to send.
fn handle(observable: &Observable, text: &str, observing: &mut Observing) -> Vec<ServerMessage> {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return vec![bad_request("the message is not JSON")];
    };
    let kind = message["messageType"].as_str().unwrap_or_default();
    if !CLIENT_MESSAGE_TYPES.contains(&kind) {
        return vec![bad_request(&format!(
            "unknown messageType `{}`; use {}",
            kind.chars().take(64).collect::<String>(),
            CLIENT_MESSAGE_TYPES.join(", ")
        ))];
    }
    let Ok(message) = serde_json::from_value::<ClientMessage>(message) else {
        return vec![bad_request(
            "`data` must be an object whose keys are the names to observe",
        )];
    };
    let (observed, add, names) = message.into_parts();
    let names: Vec<String> = names.into_iter().map(|(name, _)| name).collect();
    if names.len() > MAX_NAMES {
        return vec![bad_request(&format!(
            "`data` names {} affordances; a message may name at most {MAX_NAMES}",
            names.len()
        ))];
    }
    let mut replies = Vec::new();
    match observed {
        Observed::Property => {
            for name in names {
                let Some(property) = observable.properties.iter().find(|p| p.name == name) else {
                    replies.push(error(
                        "observeproperty",
                        &name,
                        "404",
                        "not-found",
                        "Not Found",
                        format!("No property found with the name '{name}'."),
                    ));
                    continue;
                };
                if !property.observable {
                    replies.push(error(
                        "observeproperty",
                        &name,
                        "403",
                        "not-observable",
                        "Not Observable",
                        format!("Property '{name}' is not observable."),
                    ));
                    continue;
                }
                if add {
                    observing.properties.insert(name, (property.subscribe)());
                } else {
                    observing.properties.remove(&name);
                }
            }
        }
        Observed::Action => {
            for name in names {
                if !observable.actions.contains(&name) {
                    replies.push(error(
                        "observeaction",
                        &name,
                        "404",
                        "not-found",
                        "Not Found",
                        format!("No action found with the name '{name}'."),
                    ));
                    continue;
                }
                if add {
                    observing.actions.insert(name);
                } else {
                    observing.actions.remove(&name);
                }
            }
        }
        Observed::Event => {
            for name in names {
                if !observable.events.contains(&name) {
                    replies.push(error(
                        "subscribeevent",
                        &name,
                        "404",
                        "not-found",
                        "Not Found",
                        format!("No event found with the name '{name}'."),
                    ));
                    continue;
                }
                if add {
                    observing.events.insert(name);
                } else {
                    observing.events.remove(&name);
                }
            }
            if observing.events.is_empty() {
                observing.event_stream = None;
            } else if observing.event_stream.is_none() {
                let log = &observable.event_log;
                observing.event_stream = Some(log.subscribe(log.newest(), None).boxed());
            }
        }
    }
    if replies.len() > MAX_ERROR_REPLIES {
        let more = replies.len() - MAX_ERROR_REPLIES;
        replies.truncate(MAX_ERROR_REPLIES);
        replies.push(bad_request(&format!(
            "{more} more names in this message were not found or not observable"
        )));
    }
    replies
}

fn error(
    operation: &str,
    name: &str,
    status: &str,
    kind: &str,
    title: &str,
    detail: String,
) -> ServerMessage {
    ServerMessage::Response {
        operation: Some(operation.to_owned()),
        name: Some(name.to_owned()),
        error: ErrorData {
            status: status.to_owned(),
            type_uri: format!("{ERRORS}#{kind}"),
            title: title.to_owned(),
            detail,
        },
    }
}

fn bad_request(detail: &str) -> ServerMessage {
    ServerMessage::Response {
        operation: None,
        name: None,
        error: ErrorData {
            status: "400".to_owned(),
            type_uri: format!("{ERRORS}#bad-request"),
            title: "Bad Request".to_owned(),
            detail: detail.to_owned(),
        },
    }
}

/// A subscription to a property of a Thing held by the server.
fn subscriber<T: Send + Sync + 'static>(thing: Arc<T>, access: PropertyAccess<T>) -> Subscribe {
    Box::new(move || access(&thing).changes())
}
