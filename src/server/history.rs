//! `GET /{thing}/{property}/history`: a property's kept past, as JSON (for plots and scripts)
//! or CSV (for a download that pandas, numpy or a spreadsheet opens), its OpenAPI operation and
//! its TD link.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::negotiate;
use crate::Problem;
use crate::layout;
use crate::openapi::{self, RouteDoc};
use crate::property::history::{self, History};
use crate::property::{HistoryOptions, HistorySample, LogStatus};
use crate::server::route_table::RouteTable;
use crate::td::Link;
use crate::thing::PropertyDescriptor;

/// The media type of the CSV form.
const CSV: &str = "text/csv";

/// The JSON form: what is kept, and the samples, oldest first.
#[derive(Serialize, schemars::JsonSchema)]
struct HistoryBody<'a> {
    /// The property.
    property: &'a str,
    /// The unit of its values, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    /// The most samples kept.
    max_samples: usize,
    /// How long samples are kept, in seconds (`null`: as long as `max_samples` allows).
    max_age: Option<f64>,
    /// Changes closer than this (seconds) are merged into one sample with the newest value.
    min_interval: f64,
    /// The disk log (`history_log`): its file in the data folder, what it wrote and dropped,
    /// and its last error; absent when the history is not logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<LogStatus>,
    /// The samples, oldest first: only those after `since` when it is given.
    samples: Vec<HistorySample>,
}

/// What the history route needs.
struct HistoryRoute {
    thing: String,
    property: &'static str,
    unit: Option<&'static str>,
    history: Arc<History>,
}

/// Serves the history of a property of the Thing `thing` and adds its TD link.
pub(crate) fn serve<T>(
    thing: &str,
    property: &PropertyDescriptor<T>,
    history: Arc<History>,
    routes: &mut RouteTable,
    links: &mut Vec<Link>,
) {
    let path = layout::affordance(thing, property.name);
    let route = layout::history(&path);
    let value_schema = openapi::value_schema((property.schema)(), &property.constraints);
    let state = Arc::new(HistoryRoute {
        thing: thing.to_owned(),
        property: property.name,
        unit: property.unit,
        history,
    });
    routes.route(
        &route,
        get(read).with_state(state),
        [docs(thing, property.name, &route, value_schema)],
    );
    links.push(Link {
        href: layout::relative(&route).to_owned(),
        media_type: "application/json".to_owned(),
        rel: "history".to_owned(),
        anchor: Some(layout::relative(&path).to_owned()),
    });
}

/// `GET`: `?since=<RFC 3339>` for only newer samples; `?format=csv` or `Accept: text/csv` for
/// CSV.
async fn read(
    State(route): State<Arc<HistoryRoute>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (since, mut csv) = match parse_query(query.as_deref()) {
        Ok(query) => query,
        Err(problem) => return problem.into_response(),
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if negotiate::preferred(accept, &["application/json", CSV]) == Some(CSV) {
        csv = true;
    }
    let samples = route.history.since(since);
    if csv {
        let body = history::to_csv(route.property, route.unit, &samples);
        let file = format!(
            "attachment; filename=\"{}_{}_history.csv\"",
            route.thing, route.property
        );
        let mut response =
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
        if let Ok(value) = HeaderValue::from_str(&file) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
        return response;
    }
    let options: &HistoryOptions = &route.history.options;
    axum::Json(HistoryBody {
        property: route.property,
        unit: route.unit,
        max_samples: options.max_samples,
        max_age: options.max_age.map(|age| age.as_secs_f64()),
        min_interval: options.interval().as_secs_f64(),
        log: route.history.log_status(),
        samples,
    })
    .into_response()
}

/// `since` and `format`; other parameters are ignored.
fn parse_query(query: Option<&str>) -> Result<(Option<DateTime<Utc>>, bool), Box<Problem>> {
    let (mut since, mut csv) = (None, false);
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let invalid = |must: &str| super::problems::invalid_query(&name, &value, must);
        match name.as_ref() {
            "since" => {
                let time = DateTime::parse_from_rfc3339(&value).map_err(|_| {
                    invalid("must be an RFC 3339 time such as 2026-12-06T14:00:00Z")
                })?;
                since = Some(time.with_timezone(&Utc));
            }
            "format" => {
                csv = match value.as_ref() {
                    "csv" => true,
                    "json" => false,
                    _ => return Err(invalid("must be `json` or `csv`")),
                };
            }
            _ => {}
        }
    }
    Ok((since, csv))
}

/// The OpenAPI operation: the JSON form with the property's own value schema, and the CSV form.
fn docs(thing: &str, property: &str, path: &str, value_schema: Value) -> RouteDoc {
    // Subschemas inlined: the document has no `$defs` for a `$ref` to point into.
    let mut body = crate::schema::json_schema_of::<HistoryBody<'static>>();
    if let Some(object) = body.as_object_mut() {
        object.remove("title");
    }
    body["properties"]["samples"]["items"] = json!({
        "type": "object",
        "required": ["timestamp", "value"],
        "properties": {
            "timestamp": {"type": "string", "format": "date-time",
                "description": "When the value was stored, by the server's clock (RFC 3339, UTC)"},
            "value": value_schema,
        },
    });
    let mut ok = openapi::json_response(
        "The samples kept, oldest first, with what the history keeps",
        body,
    );
    ok["content"][CSV] = json!({
        "schema": {"type": "string"},
        "example": format!("timestamp,{property}\r\n2026-12-06T14:00:00.000000Z,21.5\r\n"),
    });
    let operation = json!({
        "operationId": format!("{thing}_{property}_history"),
        "summary": format!("The history of {property}"),
        "description": "Every kept change of the property with the server's timestamp, oldest first. `Accept: text/csv` or `?format=csv` gives CSV: a `timestamp` column, then one column per number, string or boolean in the value.",
        "tags": [thing],
        "parameters": [
            {"name": "since", "in": "query", "required": false,
             "description": "Only samples after this time (RFC 3339): what a plot already has is not sent again.",
             "schema": {"type": "string", "format": "date-time"}},
            {"name": "format", "in": "query", "required": false,
             "description": "`csv` for CSV whatever `Accept` says; `json` (default) for JSON.",
             "schema": {"type": "string", "enum": ["json", "csv"]}},
        ],
        "responses": {
            "200": ok,
            "400": openapi::problem("`since` is not an RFC 3339 time, or `format` is neither `json` nor `csv`"),
        },
    });
    RouteDoc::get(path.to_owned(), operation)
}
