//! The invocation routes every server has: `/action_invocations` (all), `/{id}` (one, and
//! `DELETE` to cancel), `/{id}/output`, and `/blob/{id}` for binary outputs; with their
//! OpenAPI operations.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::base::Base;
use super::route_table::RouteTable;
use crate::Problem;
use crate::action::{
    ActionOutput, Blob, Invocation, InvocationBody, InvocationStatus, Invocations,
};
use crate::layout;
use crate::openapi::{self, RouteDoc};

/// What the invocation handlers need.
struct InvocationRoutes {
    invocations: Arc<Invocations>,
    base: Base,
}

type Routes = State<Arc<InvocationRoutes>>;

/// Adds the invocation and blob routes.
pub(crate) fn serve(invocations: &Arc<Invocations>, base: &Base, routes: &mut RouteTable) {
    let state = Arc::new(InvocationRoutes {
        invocations: invocations.clone(),
        base: base.clone(),
    });
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let missing = openapi::problem("No such invocation (or it has expired)");
    let invocation = openapi::component("Invocation");
    let path = layout::invocations();
    routes.route(
        &path,
        get(all).with_state(state.clone()),
        [RouteDoc::get(
            path.clone(),
            json!({"operationId": "list_invocations", "summary": "Every invocation kept, oldest first",
                "tags": ["actions"],
                "responses": {"200": openapi::json_response("Invocations", json!({"type": "array", "items": invocation.clone()}))}}),
        )],
    );
    let path = layout::invocation("{id}");
    routes.route(
        &path,
        get(one).delete(cancel).with_state(state.clone()),
        [
            RouteDoc::get(
                path.clone(),
                json!({"operationId": "get_invocation", "summary": "One invocation", "tags": ["actions"],
                    "parameters": id.clone(),
                    "responses": {"200": openapi::json_response("The invocation", invocation), "404": missing.clone()}}),
            ),
            RouteDoc::delete(
                path.clone(),
                json!({"operationId": "cancel_invocation", "summary": "Cancel an invocation", "tags": ["actions"],
                "parameters": id.clone(),
                "responses": {
                    "204": {"description": "Cancellation requested; the invocation ends as `cancelled`"},
                    "404": missing.clone(),
                    "409": openapi::problem("The invocation has already finished"),
                }}),
            ),
        ],
    );
    let path = layout::invocation_output("{id}");
    routes.route(
        &path,
        get(output).with_state(state.clone()),
        [RouteDoc::get(
            path.clone(),
            json!({"operationId": "get_invocation_output", "summary": "The output of a completed invocation",
            "tags": ["actions"], "parameters": id.clone(),
            "responses": {
                "200": {"description": "The output: JSON, or a blob's bytes with the media type the action gave them",
                    "content": {"application/json": {}, "*/*": {"schema": {"type": "string", "format": "binary"}}}},
                "404": missing,
                "409": openapi::problem("No output: the invocation has not finished yet (with `Retry-After`), or it ended with an error or was cancelled"),
            }}),
        )],
    );
    let path = layout::blob("{id}");
    routes.route(
        &path,
        get(blob).with_state(state),
        [RouteDoc::get(
            path.clone(),
            json!({"operationId": "get_blob", "summary": "A binary action output", "tags": ["actions"],
            "parameters": id,
            "responses": {
                "200": {"description": "The bytes, with the media type the action gave them",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                "404": openapi::problem("No such blob (or its invocation has expired)"),
            }}),
        )],
    );
}

/// `GET /action_invocations`.
async fn all(State(routes): Routes, headers: HeaderMap) -> Response {
    let base = routes.base.url(&headers);
    let list: Vec<InvocationBody> = routes
        .invocations
        .list(None)
        .iter()
        .map(|invocation| invocation.body(&base))
        .collect();
    axum::Json(list).into_response()
}

/// `GET /action_invocations/{id}`.
async fn one(State(routes): Routes, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match routes.invocations.get(&id) {
        Some(invocation) => axum::Json(invocation.body(&routes.base.url(&headers))).into_response(),
        None => unknown(&id),
    }
}

/// `DELETE /action_invocations/{id}`: asks the action to stop.
async fn cancel(State(routes): Routes, Path(id): Path<String>) -> Response {
    match routes.invocations.get(&id) {
        None => unknown(&id),
        Some(invocation) if invocation.cancel() => StatusCode::NO_CONTENT.into_response(),
        Some(invocation) => Problem::new(StatusCode::CONFLICT)
            .with_detail(format!(
                "Invocation {id} has already finished (status {}); there is nothing to cancel.",
                invocation.status()
            ))
            .into_response(),
    }
}

/// `GET /action_invocations/{id}/output`.
async fn output(State(routes): Routes, Path(id): Path<String>) -> Response {
    match routes.invocations.get(&id) {
        None => unknown(&id),
        Some(invocation) => output_response(&invocation),
    }
}

/// `GET /blob/{id}`.
async fn blob(State(routes): Routes, Path(id): Path<String>) -> Response {
    match routes.invocations.get(&id).and_then(|i| i.output()) {
        Some(ActionOutput::Blob(blob)) => blob_response(&blob),
        _ => Problem::new(StatusCode::NOT_FOUND)
            .with_detail(format!(
                "No blob {id}: it never existed, or its invocation has expired."
            ))
            .into_response(),
    }
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
                    "The invocation has not finished (status {status}); poll the invocation and \
                     fetch the output once its status is `completed`."
                ))
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
                .into_response()
        }
        (status, _) => Problem::new(StatusCode::CONFLICT)
            .with_detail(format!(
                "The invocation ended with status {status} and has no output; its `error` says why."
            ))
            .into_response(),
    }
}

pub(crate) fn blob_response(blob: &Blob) -> Response {
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
