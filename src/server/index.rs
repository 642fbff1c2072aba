//! Where Thing Descriptions are served: `GET /{thing}/` for each Thing, the indexes
//! `GET /things/` (name to TD URL) and `GET /thing_descriptions/` (name to TD), and
//! `GET /.well-known/wot` for WoT Discovery; with their OpenAPI operations. Each TD gets its `base` from the request (or the public URL).

use super::forwarded::Reached;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::base::Base;
use super::problems;
use super::route_table::RouteTable;
use crate::layout;
use crate::openapi::{self, RouteDoc};
use crate::td::{TD_MEDIA_TYPE, ThingDescription};

/// Every Thing's TD, by name, in the order added, with how to compute `base`.
pub(crate) struct Descriptions {
    pub(crate) things: Vec<(String, Arc<ThingDescription>)>,
    /// The server's own id (the `id` of `/.well-known/wot`).
    pub(crate) id: String,
    pub(crate) base: Base,
    /// The application's name: the title of the `/.well-known/wot` description.
    pub(crate) title: String,
}

/// One Thing's TD route state.
type OneThing = (Arc<ThingDescription>, Base);

/// Adds the TD route of one Thing.
pub(crate) fn serve_thing(
    name: &str,
    td: &Arc<ThingDescription>,
    base: &Base,
    routes: &mut RouteTable,
) {
    let path = layout::thing(name);
    routes.route(
        &path,
        get(one_td).with_state((td.clone(), base.clone())),
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": format!("{name}_thing_description"),
                "summary": format!("The Thing Description of {name}"),
                "tags": [name],
                "responses": {"200": {"description": "W3C WoT Thing Description 1.1",
                    "content": {TD_MEDIA_TYPE: {"schema": {"type": "object", "additionalProperties": true}}}}},
            }),
        )],
    );
}

/// Adds the two indexes of Things.
pub(crate) fn serve_indexes(descriptions: &Arc<Descriptions>, routes: &mut RouteTable) {
    let path = layout::things_index();
    routes.route(
        &path,
        get(things).with_state(descriptions.clone()),
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": "list_things",
                "summary": "The Things on this server, each with the URL of its Thing Description",
                "tags": ["server"],
                "responses": {"200": openapi::json_response("Thing name to TD URL", json!({
                    "type": "object", "additionalProperties": {"type": "string"}
                }))},
            }),
        )],
    );
    let path = layout::well_known_wot();
    routes.route(
        &path,
        get(well_known).with_state(descriptions.clone()),
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": "well_known_wot",
                "summary": "WoT Discovery: a Thing Description of this server, linking to each Thing's",
                "description": "The W3C WoT Discovery introduction at its well-known URI: a TD \
                    with no affordances of its own and one `links` entry (`rel: item`) per Thing.",
                "tags": ["server"],
                "responses": {"200": {"description": "W3C WoT Thing Description 1.1",
                    "content": {TD_MEDIA_TYPE: {"schema": {"type": "object", "additionalProperties": true}}}}},
            }),
        )],
    );
    let path = layout::thing_descriptions_index();
    routes.route(
        &path,
        get(thing_descriptions).with_state(descriptions.clone()),
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": "list_thing_descriptions",
                "summary": "Every Thing's Thing Description",
                "tags": ["server"],
                "responses": {"200": openapi::json_response("Thing name to TD", json!({
                    "type": "object", "additionalProperties": {"type": "object", "additionalProperties": true}
                }))},
            }),
        )],
    );
}

/// `GET /.well-known/wot`: the W3C WoT Discovery introduction for a client that knows only
/// the server's address (found by mDNS, say). A Thing Description of the server itself, as
/// WoT Discovery's "Thing Link" is: no affordances of its own, and a link (`rel: "item"`,
/// `application/td+json`) to each Thing's TD, relative to its `base`.
async fn well_known(State(descriptions): State<Arc<Descriptions>>, reached: Reached) -> Response {
    let root = descriptions.base.url(&reached);
    let links: Vec<Value> = descriptions
        .things
        .iter()
        .map(|(name, td)| {
            json!({
                "rel": "item",
                "href": layout::relative(&layout::thing(name)),
                "type": TD_MEDIA_TYPE,
                "title": td.title,
            })
        })
        .collect();
    let (context, security_definitions, security) = match descriptions.things.first() {
        Some((_, td)) => (
            json!(td.context),
            Value::Object(td.security_definitions.clone()),
            Value::from(td.security.clone()),
        ),
        None => (
            json!([crate::td::TD_1_0_CONTEXT, crate::td::TD_CONTEXT]),
            json!({"no_security": {"scheme": "nosec"}}),
            Value::from("no_security"),
        ),
    };
    let td = json!({
        "@context": context,
        "id": descriptions.id,
        "title": descriptions.title,
        "description": "The Things this server hosts: each `item` link leads to one Thing's \
                        Thing Description.",
        "base": root,
        "securityDefinitions": security_definitions,
        "security": security,
        "links": links,
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(TD_MEDIA_TYPE),
        )],
        axum::Json(td),
    )
        .into_response()
}

/// `GET /{thing}/`: the Thing Description, as `application/td+json`.
async fn one_td(State((td, base)): State<OneThing>, reached: Reached) -> Response {
    td_response(&td.with_base(base.url(&reached)))
}

/// `GET /things/`: Thing name to the URL of its TD.
async fn things(State(descriptions): State<Arc<Descriptions>>, reached: Reached) -> Response {
    let root = descriptions.base.url(&reached);
    let index: Map<String, Value> = descriptions
        .things
        .iter()
        .map(|(name, _)| {
            let url = format!("{root}{}", layout::relative(&layout::thing(name)));
            (name.clone(), Value::from(url))
        })
        .collect();
    axum::Json(index).into_response()
}

/// `GET /thing_descriptions/`: Thing name to its TD.
async fn thing_descriptions(
    State(descriptions): State<Arc<Descriptions>>,
    reached: Reached,
) -> Response {
    let root = descriptions.base.url(&reached);
    let mut index = Map::new();
    for (name, td) in &descriptions.things {
        match serde_json::to_value(td.with_base(root.clone())) {
            Ok(value) => index.insert(name.clone(), value),
            Err(error) => return problems::internal("serialising a Thing Description", &error),
        };
    }
    axum::Json(index).into_response()
}

fn td_response(td: &ThingDescription) -> Response {
    match serde_json::to_vec(td) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(TD_MEDIA_TYPE),
            )],
            body,
        )
            .into_response(),
        Err(error) => problems::internal("serialising a Thing Description", &error),
    }
}
