//! Routes and OpenAPI operations of a Thing's properties and streams.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::json;

use super::problems;
use crate::Problem;
use crate::openapi::{self, RouteDoc};
use crate::property::PropertyError;
use crate::thing::{Thing, ThingDescriptor};

/// `GET` (and `PUT` unless read-only) for one property.
pub(crate) fn property_routes<T: Thing>(
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    index: usize,
) -> MethodRouter {
    let property = &descriptor.properties[index];
    let (name, access, read_only) = (property.name, property.access, property.read_only);
    let reader = thing.clone();
    let routes = get(move || {
        let thing = reader.clone();
        async move {
            match access(&thing).read_json() {
                Ok(value) => axum::Json(value).into_response(),
                Err(error) => problems::internal(&format!("reading property {name}"), &error),
            }
        }
    });
    if read_only {
        return routes.fallback(move |method: Method| async move {
            let detail = if method == Method::PUT {
                format!("Property `{name}` is read-only.")
            } else {
                format!("Method {method} is not allowed on property `{name}`; it can only be read.")
            };
            Problem::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_detail(detail)
                .with_header(header::ALLOW, HeaderValue::from_static("GET, HEAD"))
                .into_response()
        });
    }
    let writer = thing.clone();
    routes.put(move |headers: HeaderMap, body: Bytes| {
        let thing = writer.clone();
        async move {
            let value = match problems::json_body(&headers, &body) {
                Ok(value) => value,
                Err(problem) => return problem.into_response(),
            };
            match access(&thing).write_json(value).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(error) => property_problem(name, &error),
            }
        }
    })
}

pub(crate) fn property_problem(name: &str, error: &PropertyError) -> Response {
    let status = error.status();
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
        _ => {}
    }
    problem.into_response()
}

pub(crate) fn property_docs<T>(
    thing: &str,
    property: &crate::thing::PropertyDescriptor<T>,
    path: &str,
) -> Vec<RouteDoc> {
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
                    "500": openapi::problem("The value was applied but could not be saved"),
                    "503": openapi::problem("The instrument cannot take the value now"),
                },
            }),
        ));
    }
    docs
}

pub(crate) fn stream_docs(
    thing: &str,
    name: &str,
    description: Option<&str>,
    path: &str,
) -> Vec<RouteDoc> {
    vec![
        RouteDoc::get(
            path.to_owned(),
            json!({
                "operationId": format!("{thing}_{name}"),
                "summary": format!("Live MJPEG stream {name}"),
                "description": description.unwrap_or("A live stream of JPEG frames."),
                "tags": [thing],
                "parameters": [{"name": "fps", "in": "query", "required": false,
                    "description": "The highest frame rate this viewer wants",
                    "schema": {"type": "number", "exclusiveMinimum": 0}}],
                "responses": {
                    "200": {"description": "multipart/x-mixed-replace, one JPEG per part",
                        "content": {crate::stream::STREAM_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                    "400": openapi::problem("An invalid or unknown query parameter"),
                },
            }),
        ),
        RouteDoc::get(
            format!("{path}/snapshot"),
            json!({
                "operationId": format!("{thing}_{name}_snapshot"),
                "summary": format!("The newest frame of {name}"),
                "tags": [thing],
                "responses": {
                    "200": {"description": "A JPEG, with X-Timestamp and X-Frame-Index headers",
                        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                    "503": openapi::problem("No frame yet"),
                },
            }),
        ),
        RouteDoc::get(
            format!("{path}/viewer"),
            json!({
                "operationId": format!("{thing}_{name}_viewer"),
                "summary": format!("A web page showing {name}"),
                "tags": [thing],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }),
        ),
    ]
}
