//! HTTP routes of actions and invocations (the labthings-fastapi model).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use super::problems;
use super::things::Base;
use crate::Problem;
use crate::action::{ActionDescriptor, ActionOutput, Invocation, InvocationStatus, Invocations};
use crate::openapi::{self, RouteDoc};
use crate::thing::Thing;

/// The longest `?wait=` a client may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `POST` (invoke) and `GET` (its invocations) for one action.
pub(crate) fn action_routes<T: Thing>(
    thing_name: &str,
    thing: &Arc<T>,
    action: &ActionDescriptor<T>,
    invocations: &Arc<Invocations>,
    base: &Base,
) -> MethodRouter {
    let (prepare, action_name, lock) = (
        action.prepare,
        action.name,
        action.lock.then(|| Arc::new(tokio::sync::Mutex::new(()))),
    );
    let invoke = {
        let (thing, invocations, base, thing_name) = (
            thing.clone(),
            invocations.clone(),
            base.clone(),
            thing_name.to_owned(),
        );
        move |headers: HeaderMap, RawQuery(query): RawQuery, body: Bytes| {
            let (thing, invocations, base, thing_name, lock) = (
                thing.clone(),
                invocations.clone(),
                base.clone(),
                thing_name.clone(),
                lock.clone(),
            );
            async move {
                let wait = match requested_wait(query.as_deref(), &headers) {
                    Ok(wait) => wait,
                    Err(problem) => return problem.into_response(),
                };
                let input = if body.iter().all(u8::is_ascii_whitespace) {
                    Value::Object(Default::default())
                } else {
                    match problems::json_body(&headers, &body) {
                        Ok(value) => value,
                        Err(problem) => return problem.into_response(),
                    }
                };
                let starter = match prepare(thing, input.clone()) {
                    Ok(starter) => starter,
                    Err(error) => {
                        let name = if error.field.is_empty() {
                            "input".to_owned()
                        } else {
                            error.field.clone()
                        };
                        return Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
                            .with_detail(format!(
                                "Invalid input for action `{action_name}`: {error}."
                            ))
                            .with_invalid_param(name, error.reason)
                            .into_response();
                    }
                };
                let invocation = invocations.start(&thing_name, action_name, input, lock, starter);
                let finished = match wait {
                    Some(wait) => invocation.wait(wait).await,
                    None => false,
                };
                let root = base.url(&headers);
                let body = invocation.to_json(&root);
                let location = body["href"].as_str().unwrap_or_default().to_owned();
                let status = if finished {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                let mut response = (status, axum::Json(body)).into_response();
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                if let Some(wait) = wait.filter(|_| headers.contains_key("prefer")) {
                    if let Ok(value) =
                        HeaderValue::from_str(&format!("wait={}", wait.as_secs_f64()))
                    {
                        response.headers_mut().insert("preference-applied", value);
                    }
                }
                response
            }
        }
    };
    let list = {
        let (invocations, base, thing_name) =
            (invocations.clone(), base.clone(), thing_name.to_owned());
        move |headers: HeaderMap| {
            let root = base.url(&headers);
            let list: Vec<Value> = invocations
                .list(Some((&thing_name, action_name)))
                .iter()
                .map(|invocation| invocation.to_json(&root))
                .collect();
            async move { axum::Json(list) }
        }
    };
    post(invoke).get(list)
}

/// `?wait=<seconds>` or `Prefer: wait=<seconds>` (RFC 7240), capped at a minute.
fn requested_wait(
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<Duration>, Box<Problem>> {
    let mut wait = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "wait" {
            return Err(Box::new(
                Problem::new(StatusCode::BAD_REQUEST)
                    .with_detail(format!(
                        "Unknown query parameter `{name}`; actions take `wait`."
                    ))
                    .with_invalid_param(name, "is not known"),
            ));
        }
        wait = Some(value.into_owned());
    }
    if wait.is_none() {
        wait = headers
            .get_all("prefer")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .find_map(|preference| preference.trim().strip_prefix("wait=").map(str::to_owned));
    }
    let Some(wait) = wait else { return Ok(None) };
    let seconds: f64 = wait
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            Box::new(
                Problem::new(StatusCode::BAD_REQUEST)
                    .with_detail(format!("`wait` must be a number of seconds, got `{wait}`."))
                    .with_invalid_param("wait", "must be a non-negative number of seconds"),
            )
        })?;
    // Capped before conversion: a huge number of seconds does not fit a `Duration`.
    Ok(Some(Duration::from_secs_f64(
        seconds.min(MAX_WAIT.as_secs_f64()),
    )))
}

/// `/action_invocations`, `/action_invocations/{id}` (GET, DELETE), `.../output`, `/blob/{id}`.
pub(crate) fn invocation_routes(invocations: &Arc<Invocations>, base: &Base) -> Router {
    let all = {
        let (invocations, base) = (invocations.clone(), base.clone());
        move |headers: HeaderMap| {
            let root = base.url(&headers);
            let list: Vec<Value> = invocations
                .list(None)
                .iter()
                .map(|i| i.to_json(&root))
                .collect();
            async move { axum::Json(list) }
        }
    };
    let one = {
        let (invocations, base) = (invocations.clone(), base.clone());
        move |Path(id): Path<String>, headers: HeaderMap| {
            let response = match invocations.get(&id) {
                Some(invocation) => {
                    axum::Json(invocation.to_json(&base.url(&headers))).into_response()
                }
                None => unknown(&id),
            };
            async move { response }
        }
    };
    let cancel = {
        let invocations = invocations.clone();
        move |Path(id): Path<String>| {
            let response = match invocations.get(&id) {
                None => unknown(&id),
                Some(invocation) if invocation.cancel() => StatusCode::NO_CONTENT.into_response(),
                Some(invocation) => Problem::new(StatusCode::CONFLICT)
                    .with_detail(format!(
                        "Invocation {id} has already finished (status {}); there is nothing to cancel.",
                        status_name(invocation.status())
                    ))
                    .into_response(),
            };
            async move { response }
        }
    };
    let output = {
        let invocations = invocations.clone();
        move |Path(id): Path<String>| {
            let response = match invocations.get(&id) {
                None => unknown(&id),
                Some(invocation) => output_response(&invocation),
            };
            async move { response }
        }
    };
    let blob = {
        let invocations = invocations.clone();
        move |Path(id): Path<String>| {
            let response = match invocations.get(&id).and_then(|i| i.output()) {
                Some(ActionOutput::Blob(blob)) => blob_response(&blob),
                _ => Problem::new(StatusCode::NOT_FOUND)
                    .with_detail(format!(
                        "No blob {id}: it never existed, or its invocation has expired."
                    ))
                    .into_response(),
            };
            async move { response }
        }
    };
    Router::new()
        .route("/action_invocations", get(all))
        .route("/action_invocations/{id}", get(one).delete(cancel))
        .route("/action_invocations/{id}/output", get(output))
        .route("/blob/{id}", get(blob))
}

fn output_response(invocation: &Invocation) -> Response {
    match (invocation.status(), invocation.output()) {
        (InvocationStatus::Completed, Some(ActionOutput::Json(value))) => {
            axum::Json(value).into_response()
        }
        (InvocationStatus::Completed, Some(ActionOutput::Blob(blob))) => blob_response(&blob),
        (status @ (InvocationStatus::Pending | InvocationStatus::Running), _) => {
            // 409, not 503: the server is fine, the invocation is simply not done. A 5xx here
            // would read as a server fault to monitoring and to contract checkers.
            Problem::new(StatusCode::CONFLICT)
                .with_detail(format!(
                    "The invocation has not finished (status {}); poll the invocation and \
                     fetch the output once its status is `completed`.",
                    status_name(status)
                ))
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
                .into_response()
        }
        (status, _) => Problem::new(StatusCode::CONFLICT)
            .with_detail(format!(
                "The invocation ended with status {} and has no output; its `error` says why.",
                status_name(status)
            ))
            .into_response(),
    }
}

fn blob_response(blob: &crate::action::Blob) -> Response {
    let media_type = HeaderValue::from_str(&blob.media_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, media_type)], blob.data.clone()).into_response()
}

fn unknown(id: &str) -> Response {
    Problem::new(StatusCode::NOT_FOUND)
        .with_detail(format!(
            "No invocation {id}: it never existed, or it finished and has expired."
        ))
        .into_response()
}

fn status_name(status: InvocationStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// OpenAPI operations for one action.
pub(crate) fn action_docs<T>(
    thing: &str,
    action: &ActionDescriptor<T>,
    path: &str,
) -> Vec<RouteDoc> {
    let summary = action.title.unwrap_or(action.name);
    let invocation = json!({"$ref": "#/components/schemas/Invocation"});
    vec![
        RouteDoc::post(
            path.to_owned(),
            json!({
                "operationId": format!("{thing}_invoke_{}", action.name),
                "summary": format!("Invoke {}: {summary}", action.name),
                "description": action.description.unwrap_or_default(),
                "tags": [thing],
                "parameters": [{"name": "wait", "in": "query", "required": false,
                    "description": "Wait up to this many seconds (at most 60) for the invocation to finish; then answer 200 with it finished. Also as `Prefer: wait=<seconds>`.",
                    "schema": {"type": "number", "minimum": 0}}],
                "requestBody": {"required": false, "content": {"application/json": {"schema": (action.input_schema)()}}},
                "responses": {
                    "200": openapi::json_response("The invocation, finished within `wait`", invocation.clone()),
                    "201": openapi::json_response("The invocation, started; poll its `href`", invocation.clone()),
                    "400": openapi::problem("The body is not JSON, or `wait` is not a number"),
                    "413": openapi::problem("The body is too large"),
                    "415": openapi::problem("The body is not sent as JSON"),
                    "422": openapi::problem("The input does not fit; `invalid-params` names the field"),
                },
            }),
        ),
        RouteDoc::get(
            path.to_owned(),
            json!({
                "operationId": format!("{thing}_list_{}", action.name),
                "summary": format!("Invocations of {}", action.name),
                "tags": [thing],
                "responses": {"200": openapi::json_response("Oldest first", json!({"type": "array", "items": invocation}))},
            }),
        ),
    ]
}

/// OpenAPI operations for the invocation routes.
pub(crate) fn invocation_docs() -> Vec<RouteDoc> {
    let invocation = json!({"$ref": "#/components/schemas/Invocation"});
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let missing = openapi::problem("No such invocation (or it has expired)");
    vec![
        RouteDoc::get(
            "/action_invocations".to_owned(),
            json!({"operationId": "list_invocations", "summary": "Every invocation kept, oldest first",
                "tags": ["actions"],
                "responses": {"200": openapi::json_response("Invocations", json!({"type": "array", "items": invocation.clone()}))}}),
        ),
        RouteDoc::get(
            "/action_invocations/{id}".to_owned(),
            json!({"operationId": "get_invocation", "summary": "One invocation", "tags": ["actions"],
                "parameters": id.clone(),
                "responses": {"200": openapi::json_response("The invocation", invocation), "404": missing.clone()}}),
        ),
        RouteDoc::delete(
            "/action_invocations/{id}".to_owned(),
            json!({"operationId": "cancel_invocation", "summary": "Cancel an invocation", "tags": ["actions"],
            "parameters": id.clone(),
            "responses": {
                "204": {"description": "Cancellation requested; the invocation ends as `cancelled`"},
                "404": missing.clone(),
                "409": openapi::problem("The invocation has already finished"),
            }}),
        ),
        RouteDoc::get(
            "/action_invocations/{id}/output".to_owned(),
            json!({"operationId": "get_invocation_output", "summary": "The output of a completed invocation",
            "tags": ["actions"], "parameters": id.clone(),
            "responses": {
                "200": {"description": "The output: JSON, or a blob's bytes with the media type the action gave them",
                    "content": {"application/json": {}, "*/*": {"schema": {"type": "string", "format": "binary"}}}},
                "404": missing.clone(),
                "409": openapi::problem("No output: the invocation has not finished yet (with `Retry-After`), or it ended with an error or was cancelled"),
            }}),
        ),
        RouteDoc::get(
            "/blob/{id}".to_owned(),
            json!({"operationId": "get_blob", "summary": "A binary action output", "tags": ["actions"],
            "parameters": id,
            "responses": {
                "200": {"description": "The bytes, with the media type the action gave them",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                "404": openapi::problem("No such blob (or its invocation has expired)"),
            }}),
        ),
    ]
}

/// The schema of an invocation, for the OpenAPI components.
pub(crate) fn invocation_schema() -> Value {
    json!({
        "type": "object",
        "description": "One run of an action.",
        "properties": {
            "status": {"type": "string", "enum": ["pending", "running", "completed", "cancelled", "error"]},
            "id": {"type": "string"},
            "action": {"type": "string", "description": "The action's path"},
            "thing": {"type": "string"},
            "href": {"type": "string"},
            "timeRequested": {"type": "string", "format": "date-time"},
            "timeStarted": {"type": ["string", "null"], "format": "date-time"},
            "timeCompleted": {"type": ["string", "null"], "format": "date-time"},
            "links": {"type": "array", "items": {"type": "object", "properties": {
                "href": {"type": "string"}, "rel": {"type": "string"}}}},
            "input": {},
            "output": {},
            "progress": {"type": ["number", "null"]},
            "log": {"type": "array", "items": {"type": "object", "properties": {
                "message": {"type": "string"}, "levelname": {"type": "string"},
                "levelno": {"type": "integer"}, "created": {"type": "string", "format": "date-time"}}}},
            "error": {"oneOf": [{"$ref": "#/components/schemas/Problem"}, {"type": "null"}]},
        },
        "required": ["status", "id", "action", "href", "timeRequested", "links", "log"],
    })
}
