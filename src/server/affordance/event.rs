//! Events: `GET /{thing}/{event}` (Server-Sent Events of one event) and `GET /{thing}/events`
//! (every event of the Thing), their OpenAPI operations, and the TD's event affordances and
//! `subscribeallevents` form.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value};

use super::{Affordance, Context, Serving};
use crate::event::EventLog;
use crate::event::binding::Sink;
use crate::layout;
use crate::server::error::ServerError;
use crate::server::route_table::RouteTable;
use crate::server::sse::{self, SseScope, Subscription};
use crate::td::ThingDescription;
use crate::thing::{EventDescriptor, ThingDescriptor};

/// Events: `GET /{thing}/{event}` and `GET /{thing}/events` as Server-Sent Events, and the
/// TD's `events`.
pub(crate) struct Events;

impl Affordance for Events {
    fn names<T>(descriptor: &ThingDescriptor<T>) -> Vec<&'static str> {
        descriptor.events.iter().map(|e| e.name).collect()
    }

    fn serve<T: Send + Sync + 'static>(at: &mut Serving<'_, T>) -> Result<(), ServerError> {
        for event in &at.descriptor.events {
            serve_one(
                at.name,
                at.thing,
                event,
                &at.events,
                at.context,
                &mut at.routes,
                &mut at.td,
            )
            .map_err(|_| ServerError::AlreadyAdded {
                thing: at.name.to_owned(),
            })?;
        }
        if !at.descriptor.events.is_empty() {
            serve_all(at.name, &at.events, at.context, &mut at.routes, &mut at.td);
        }
        Ok(())
    }
}

/// Serves one event: binds it to the Thing's event log, adds its route, documentation and TD
/// affordance.
///
/// # Errors
///
/// If the event already belongs to a server.
fn serve_one<T: Send + Sync + 'static>(
    thing_name: &str,
    thing: &Arc<T>,
    event: &EventDescriptor<T>,
    log: &Arc<EventLog>,
    context: &Context,
    routes: &mut RouteTable,
    td: &mut ThingDescription,
) -> Result<(), crate::bound::AlreadyBound> {
    let name: Arc<str> = event.name.into();
    (event.access)(thing).bind(Sink {
        log: log.clone(),
        name: name.clone(),
    })?;
    let path = layout::affordance(thing_name, event.name);
    let state = Arc::new(EventRoute {
        log: log.clone(),
        name: Some(name),
        sse: context.sse.clone(),
    });
    routes.route(
        &path,
        get(subscribe).with_state(state),
        [sse::doc(
            &path,
            format!("{thing_name}_subscribe_{}", event.name),
            format!(
                "Subscribe to {}: {}",
                event.name,
                event.title.unwrap_or(event.name)
            ),
            event.description.unwrap_or_default(),
            thing_name,
        )],
    );
    td.events
        .insert(event.name.to_owned(), affordance(event, &path));
    Ok(())
}

/// Serves `GET /{thing}/events`, every event of the Thing, and adds the TD's
/// `subscribeallevents` form.
fn serve_all(
    thing_name: &str,
    log: &Arc<EventLog>,
    context: &Context,
    routes: &mut RouteTable,
    td: &mut ThingDescription,
) {
    let path = layout::all_events(thing_name);
    let state = Arc::new(EventRoute {
        log: log.clone(),
        name: None,
        sse: context.sse.clone(),
    });
    routes.route(
        &path,
        get(subscribe).with_state(state),
        [sse::doc(
            &path,
            format!("{thing_name}_subscribe_all_events"),
            format!("Subscribe to every event of {thing_name}"),
            "Each message's event type is the event's name.",
            thing_name,
        )],
    );
    td.forms.push(sse::form(
        &path,
        ["subscribeallevents", "unsubscribeallevents"],
    ));
}

/// What an event route needs.
struct EventRoute {
    log: Arc<EventLog>,
    /// One event, or every event of the Thing.
    name: Option<Arc<str>>,
    sse: SseScope,
}

/// `GET`: the events as Server-Sent Events, resuming after `Last-Event-ID`.
async fn subscribe(State(route): State<Arc<EventRoute>>, headers: HeaderMap) -> Response {
    let subscription = Subscription {
        log: route.log.clone(),
        name: route.name.clone(),
        current: Vec::new(),
    };
    sse::respond(&route.sse, &headers, subscription)
}

/// The TD event affordance: the data schema, docs, and the SSE form
/// ([TD 1.1 §5.3.1.5](https://www.w3.org/TR/wot-thing-description11/#eventaffordance)).
fn affordance<T>(event: &EventDescriptor<T>, path: &str) -> Value {
    let mut affordance = Map::new();
    if let Some(title) = event.title {
        affordance.insert("title".to_owned(), title.into());
    }
    if let Some(description) = event.description {
        affordance.insert("description".to_owned(), description.into());
    }
    let mut data = crate::schema::to_td(&(event.schema)());
    if let Some(data) = data.as_object_mut() {
        // The type's own title (a Rust type name) is not the event's.
        data.remove("title");
        if let Some(unit) = event.unit {
            data.insert("unit".to_owned(), unit.into());
        }
    }
    affordance.insert("data".to_owned(), data);
    affordance.insert(
        "forms".to_owned(),
        Value::Array(vec![sse::form(
            path,
            ["subscribeevent", "unsubscribeevent"],
        )]),
    );
    Value::Object(affordance)
}
