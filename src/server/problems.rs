//! Every error as RFC 9457 problem JSON: request bodies, unknown routes, methods, and
//! anything axum answers on its own.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::Problem;
use crate::problem::PROBLEM_JSON;

/// What the layers around every route (`ThingServerBuilder::layers`) and the connection
/// underneath may answer, whatever the route: added to every operation of the OpenAPI document
/// by [`document`], where the route does not already say more.
///
/// Each line is produced by one place: the body limit ([`limit_body`]: 400, 408, 413), the
/// request-head timeout and the connection limits of `serve` (408, 503), the `Host` and
/// `Origin` checks (`hosts::check`: 403) and the panic handler ([`panicked`]: 500).
pub(crate) const LAYER_RESPONSES: [(&str, &str); 6] = [
    ("400", "The request body could not be read"),
    (
        "403",
        "The `Host` is not one of this server's names (the defence against DNS rebinding), or a page of another site asked for a write or a websocket",
    ),
    (
        "408",
        "The request head or body took longer than the server waits for it",
    ),
    ("413", "The request body is larger than the server accepts"),
    (
        "500",
        "A fault in the server (its log has the details); the server keeps serving",
    ),
    (
        "503",
        "Too many connections, in all or from this client: try again after `Retry-After`",
    ),
];

/// Documents [`LAYER_RESPONSES`] on every operation that does not already describe the status.
pub(crate) fn document(routes: &mut [crate::openapi::RouteDoc]) {
    for route in routes {
        let Some(responses) = route.operation["responses"].as_object_mut() else {
            continue;
        };
        for (status, description) in LAYER_RESPONSES {
            responses
                .entry(status)
                .or_insert_with(|| crate::openapi::problem(description));
        }
    }
}

/// Reads a JSON request body.
///
/// # Errors
///
/// 415 if it is declared as something other than JSON, 400 if it is empty or not JSON.
pub(crate) fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Box<Problem>> {
    let bad = |status, detail: String| Box::new(Problem::new(status).with_detail(detail));
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(bad(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("The body must be JSON (Content-Type: application/json), not `{essence}`."),
            ));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "The body is empty; send the value as JSON, for example `42` or `\"text\"`.".to_owned(),
        ));
    }
    serde_json::from_slice(body).map_err(|error| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("The body is not valid JSON: {error}."),
        )
    })
}

/// 400 for a query parameter `name` whose `value` is not what it `must` be (`"must be a
/// whole number"`), naming the parameter.
pub(crate) fn invalid_query(name: &str, value: &str, must: &str) -> Box<Problem> {
    Box::new(
        Problem::new(StatusCode::BAD_REQUEST)
            .with_detail(format!("`{name}` {must}, got `{value}`."))
            .with_invalid_param(name, must),
    )
}

/// 404 for a path no route serves.
pub(crate) fn not_found(path: &str) -> Response {
    Problem::new(StatusCode::NOT_FOUND)
        .with_detail(format!(
            "Nothing is served at `{path}`. The Things are listed at `/things/`."
        ))
        .into_response()
}

/// A generic 500; the detail goes to the log, not to the client.
pub(crate) fn internal(context: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "{context}");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
        .with_detail("An internal error occurred; the server logged the details.")
        .into_response()
}

/// Turns any error response that is not problem JSON (axum's own 405, 413 and extractor
/// rejections) into problem JSON, keeping its status and headers such as `Allow`.
pub(crate) async fn as_problem(method: Method, uri: Uri, response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .filter(|text| !text.trim().is_empty());
    let detail = match (status, text) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|a| a.to_str().ok())
                .unwrap_or("none");
            format!(
                "Method {method} is not allowed on `{}`; allowed: {allowed}.",
                uri.path()
            )
        }
        (_, Some(text)) => text,
        (status, None) => status.canonical_reason().unwrap_or("Error").to_owned(),
    };
    let mut problem = Problem::new(status).with_detail(detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let (problem_parts, body) = problem.into_parts();
    Response::from_parts(problem_parts, Body::new(body))
}

/// The answer to a request whose handler panicked (a bug): a 500 problem, logged.
pub(crate) fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = message, "a request handler panicked");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
        .with_detail("The server failed while answering this request; the failure is logged.")
        .into_response()
}

/// The largest request body accepted (property values, action inputs): 2 MiB.
pub(crate) const MAX_BODY: usize = 2 * 1024 * 1024;

/// Reads the request body before any route sees it, within limits: a `Content-Length` over
/// [`MAX_BODY`] is refused at once (`413`, before any of the body is read), a body without a
/// length is cut off at the limit (`413`), and a body still arriving `timeout` after the head
/// (see [`ConnectionOptions::body_read_timeout`](crate::serve::ConnectionOptions)) is answered `408`,
/// so that a client trickling a body cannot hold its connection. Each refusal closes the
/// connection, whose unread body makes it unusable.
pub(crate) async fn limit_body(
    State(timeout): State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(length) = length.filter(|length| *length > MAX_BODY as u64) {
        return closing(too_large(&format!("The request body is {length} bytes")));
    }
    // A websocket over HTTP/2 (RFC 8441): its body is the websocket itself, not a request
    // body to read.
    if request.method() == axum::http::Method::CONNECT {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Ok(Err(error)) => {
            let too_long = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_long {
                closing(too_large("The request body is longer than that"))
            } else {
                closing(
                    Problem::new(StatusCode::BAD_REQUEST)
                        .with_detail(format!("The request body could not be read: {error}.")),
                )
            }
        }
        Err(_) => closing(
            Problem::new(StatusCode::REQUEST_TIMEOUT).with_detail(format!(
                "The request body did not arrive within {} s of the request head.",
                timeout.as_secs_f64()
            )),
        ),
    }
}

fn too_large(what: &str) -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
        .with_detail(format!(
            "{what}; this server accepts at most {MAX_BODY} bytes."
        ))
        .with_invalid_param("Content-Length", "over the limit")
}

/// The problem as a response that closes the connection (its request body was not all read).
fn closing(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
