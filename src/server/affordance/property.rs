//! Properties: `GET` and `PUT /{thing}/{property}`, their OpenAPI operations, and their TD
//! property affordances.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::{Map, Value, json};

use super::{Affordance, Context, Serving};
use crate::Problem;
use crate::event::EventLog;
use crate::layout;
use crate::openapi::{self, RouteDoc};
use crate::property::{DynProperty, PropertyError};
use crate::server::error::ServerError;
use crate::server::problems;
use crate::server::route_table::RouteTable;
use crate::server::sse::{self, SseScope, Subscription};
use crate::td::ThingDescription;
use crate::thing::{PropertyAccess, PropertyDescriptor, ThingDescriptor};

/// Properties: `GET`/`PUT /{thing}/{property}`, observation over Server-Sent Events, and the
/// TD's `properties`.
pub(crate) struct Properties;

impl Affordance for Properties {
    fn names<T>(descriptor: &ThingDescriptor<T>) -> Vec<&'static str> {
        descriptor.properties.iter().map(|p| p.name).collect()
    }

    fn serve<T: Send + Sync + 'static>(at: &mut Serving<'_, T>) -> Result<(), ServerError> {
        for property in &at.descriptor.properties {
            serve_one(
                at.name,
                at.thing,
                property,
                &at.changes,
                at.context,
                &mut at.routes,
                &mut at.td,
            );
            if let Some(history) = at.histories.get(property.name) {
                crate::server::history::serve(
                    at.name,
                    property,
                    history.clone(),
                    &mut at.routes,
                    &mut at.td.links,
                );
            }
        }
        serve_all(
            at.name,
            at.thing,
            &at.descriptor.properties,
            &at.changes,
            at.context,
            &mut at.routes,
            &mut at.td,
        );
        Ok(())
    }
}

/// Serves one property: its routes (with observation over Server-Sent Events if it is
/// observable), their documentation and its TD affordance.
fn serve_one<T: Send + Sync + 'static>(
    thing_name: &str,
    thing: &Arc<T>,
    property: &PropertyDescriptor<T>,
    changes: &Arc<EventLog>,
    context: &Context,
    routes: &mut RouteTable,
    td: &mut ThingDescription,
) {
    let path = layout::affordance(thing_name, property.name);
    let state = Arc::new(PropertyRoute {
        thing: thing.clone(),
        name: property.name,
        access: property.access.clone(),
    });
    routes.route(
        &path,
        method_router(state, property.read_only),
        docs(thing_name, property, &path),
    );
    if property.observable {
        let observe = layout::observe_property(thing_name, property.name);
        let state = Arc::new(ObserveRoute {
            properties: vec![(
                property.name.into(),
                current_value(thing, property.access.clone()),
            )],
            changes: changes.clone(),
            one: true,
            sse: context.sse.clone(),
        });
        routes.route(
            &observe,
            get(observe_changes).with_state(state),
            [sse::doc(
                &observe,
                format!("{thing_name}_observe_{}", property.name),
                format!(
                    "Observe {}: its value now, then every change",
                    property.name
                ),
                property.title.unwrap_or_default(),
                thing_name,
            )],
        );
    }
    td.properties.insert(
        property.name.to_owned(),
        affordance(thing_name, property, &path),
    );
}

/// Serves `GET /{thing}/observe` (every observable property of the Thing, over Server-Sent
/// Events) and adds the TD's `observeallproperties` form; nothing if none is observable.
fn serve_all<T: Send + Sync + 'static>(
    thing_name: &str,
    thing: &Arc<T>,
    properties: &[PropertyDescriptor<T>],
    changes: &Arc<EventLog>,
    context: &Context,
    routes: &mut RouteTable,
    td: &mut ThingDescription,
) {
    let observable: Vec<_> = properties
        .iter()
        .filter(|property| property.observable)
        .map(|property| {
            (
                property.name.into(),
                current_value(thing, property.access.clone()),
            )
        })
        .collect();
    if observable.is_empty() {
        return;
    }
    let path = layout::observe_all_properties(thing_name);
    let state = Arc::new(ObserveRoute {
        properties: observable,
        changes: changes.clone(),
        one: false,
        sse: context.sse.clone(),
    });
    routes.route(
        &path,
        get(observe_changes).with_state(state),
        [sse::doc(
            &path,
            format!("{thing_name}_observe_all_properties"),
            format!("Observe every observable property of {thing_name}"),
            "Each message's event type is the property's name: first every value now, then every change.",
            thing_name,
        )],
    );
    td.forms.push(sse::form(
        &path,
        ["observeallproperties", "unobserveallproperties"],
    ));
}

/// Reads a property's value as JSON text, for the first message of an observation.
type CurrentValue = Box<dyn Fn() -> Option<String> + Send + Sync>;

fn current_value<T: Send + Sync + 'static>(
    thing: &Arc<T>,
    access: PropertyAccess<T>,
) -> CurrentValue {
    let thing = thing.clone();
    Box::new(move || {
        access(&thing)
            .read_json()
            .ok()
            .map(|value| value.to_string())
    })
}

/// What an observation route needs.
struct ObserveRoute {
    /// The properties observed, each with a way to read it now.
    properties: Vec<(Arc<str>, CurrentValue)>,
    changes: Arc<EventLog>,
    /// One property (untyped messages) or several (typed by name).
    one: bool,
    sse: SseScope,
}

/// `GET .../observe`: the current values, then every change, as Server-Sent Events.
async fn observe_changes(State(route): State<Arc<ObserveRoute>>, headers: HeaderMap) -> Response {
    let current = route
        .properties
        .iter()
        .filter_map(|(name, read)| Some((name.clone(), read()?)))
        .collect();
    let name = match (route.one, route.properties.first()) {
        (true, Some((name, _))) => Some(name.clone()),
        _ => None,
    };
    let subscription = Subscription {
        log: route.changes.clone(),
        name,
        current,
    };
    sse::respond(&route.sse, &headers, subscription)
}

/// What the handlers of one property need.
struct PropertyRoute<T> {
    thing: Arc<T>,
    name: &'static str,
    access: PropertyAccess<T>,
}

impl<T> PropertyRoute<T> {
    fn property(&self) -> &dyn DynProperty {
        (self.access)(&self.thing)
    }
}

fn method_router<T: Send + Sync + 'static>(
    state: Arc<PropertyRoute<T>>,
    read_only: bool,
) -> MethodRouter {
    if read_only {
        get(read::<T>).fallback(refuse_write::<T>).with_state(state)
    } else {
        get(read::<T>).put(write::<T>).with_state(state)
    }
}

/// `GET`: the bare JSON value.
async fn read<T>(State(route): State<Arc<PropertyRoute<T>>>) -> Response {
    match route.property().read_json() {
        Ok(value) => axum::Json(value).into_response(),
        Err(error) => problems::internal(&format!("reading property {}", route.name), &error),
    }
}

/// `PUT`: the body is the bare JSON value; 204 once accepted.
async fn write<T>(
    State(route): State<Arc<PropertyRoute<T>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match problems::json_body(&headers, &body) {
        Ok(value) => value,
        Err(problem) => return problem.into_response(),
    };
    match route.property().write_json(value).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => write_problem(route.name, &error),
    }
}

/// Any method but `GET` on a read-only property: 405, saying it can only be read.
async fn refuse_write<T>(State(route): State<Arc<PropertyRoute<T>>>, method: Method) -> Response {
    let name = route.name;
    let detail = if method == Method::PUT {
        format!("Property `{name}` is read-only.")
    } else {
        format!("Method {method} is not allowed on property `{name}`; it can only be read.")
    };
    Problem::new(StatusCode::METHOD_NOT_ALLOWED)
        .with_detail(detail)
        .with_header(header::ALLOW, HeaderValue::from_static("GET, HEAD"))
        .into_response()
}

/// A refused write as problem JSON naming the property; a fault of the server as a generic 500.
fn write_problem(name: &str, error: &PropertyError) -> Response {
    let status = error.status();
    if let PropertyError::NotSaved(reason) = error {
        tracing::error!(property = name, %reason, "a setting's new value was not saved");
        return Problem::new(status)
            .with_title("Setting not saved")
            .with_detail(format!(
                "`{name}` has the new value, but it could not be saved ({reason}): it will be \
                 lost at restart. Free space or make the settings folder writable, then write \
                 the value again."
            ))
            .into_response();
    }
    if status.is_server_error() && !matches!(error, PropertyError::Rejected(_)) {
        return problems::internal(&format!("writing property {name}"), error);
    }
    let mut problem = Problem::new(status).with_detail(error.to_string());
    match error {
        PropertyError::Invalid { detail, .. } => {
            problem = problem.with_invalid_param(name, detail.clone());
        }
        PropertyError::Constraint { violation, .. } => {
            problem = problem.with_invalid_param(
                name,
                format!("{} ({})", violation.detail, violation.keyword),
            );
        }
        // The instrument found the value unacceptable (a 422 from its setter): the value
        // is what was wrong, so the property is named as the wrong parameter.
        PropertyError::Rejected(rejected) if status == StatusCode::UNPROCESSABLE_ENTITY => {
            problem = problem.with_invalid_param(name, rejected.to_string());
        }
        _ => {}
    }
    problem.into_response()
}

/// The OpenAPI operations: read, and write unless read-only.
fn docs<T>(thing: &str, property: &PropertyDescriptor<T>, path: &str) -> Vec<RouteDoc> {
    let schema = openapi::value_schema((property.schema)(), &property.constraints);
    let summary = property.title.unwrap_or(property.name);
    let description = property.description.unwrap_or_default();
    let mut docs = vec![RouteDoc::get(
        path.to_owned(),
        json!({
            "operationId": format!("{thing}_read_{}", property.name),
            "summary": format!("Read {}: {summary}", property.name),
            "description": description,
            "tags": [thing],
            "responses": {
                "200": openapi::json_response("The current value", schema.clone()),
                "500": openapi::problem("The value could not be read"),
            },
        }),
    )];
    if !property.read_only {
        docs.push(RouteDoc::put(
            path.to_owned(),
            json!({
                "operationId": format!("{thing}_write_{}", property.name),
                "summary": format!("Write {}: {summary}", property.name),
                "description": description,
                "tags": [thing],
                "requestBody": {"required": true, "content": {"application/json": {"schema": schema}}},
                "responses": {
                    "204": {"description": "The value was accepted"},
                    "400": openapi::problem("The body is not JSON"),
                    "413": openapi::problem("The body is too large"),
                    "415": openapi::problem("The body is not sent as JSON"),
                    "422": openapi::problem("The value is of the wrong type or breaks a constraint; `invalid-params` names the property"),
                    "500": openapi::problem("The value could not be written"),
                    "503": openapi::problem("The instrument cannot take the value now"),
                },
            }),
        ));
        if property.setting
            && let Some(put) = docs.last_mut()
        {
            put.operation["responses"]["507"] = openapi::problem(
                "The value is in use but could not be saved to the settings file: it will be lost at restart. The problem names the file and the system's error",
            );
        }
    }
    docs
}

/// The TD property affordance: the value's DataSchema with constraints, plus docs, access and
/// forms ([TD 1.1 §5.3.1.3](https://www.w3.org/TR/wot-thing-description11/#propertyaffordance)).
fn affordance<T>(thing: &str, property: &PropertyDescriptor<T>, path: &str) -> Value {
    let mut affordance = match crate::schema::to_td(&(property.schema)()) {
        Value::Object(schema) => schema,
        _ => Map::new(),
    };
    // The type's own title (a Rust type name) is not the property's.
    affordance.remove("title");
    property.constraints.write_into(&mut affordance);
    if let Some(title) = property.title {
        affordance.insert("title".to_owned(), title.into());
    }
    if let Some(description) = property.description {
        affordance.insert("description".to_owned(), description.into());
    }
    affordance.insert("readOnly".to_owned(), property.read_only.into());
    affordance.insert("writeOnly".to_owned(), false.into());
    affordance.insert("observable".to_owned(), property.observable.into());
    if let Some(unit) = property.unit {
        affordance.insert("unit".to_owned(), unit.into());
    }
    let ops: &[&str] = if property.read_only {
        &["readproperty"]
    } else {
        &["readproperty", "writeproperty"]
    };
    let mut forms = vec![json!({
        "href": layout::relative(path),
        "op": ops,
        "contentType": "application/json",
    })];
    if property.observable {
        forms.push(sse::form(
            &layout::observe_property(thing, property.name),
            ["observeproperty", "unobserveproperty"],
        ));
        forms.push(json!({
            "href": layout::relative(&layout::websocket(thing)),
            "op": ["observeproperty", "unobserveproperty"],
            // No `subprotocol`: the socket speaks LabThings' messages, not the W3C Web Thing
            // Protocol's, and negotiates none (a browser asking for one would be refused).
            "contentType": "application/json",
        }));
    }
    affordance.insert("forms".to_owned(), Value::Array(forms));
    Value::Object(affordance)
}
