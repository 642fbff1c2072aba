//! The invocation routes every server has: `/action_invocations` (all), `/{id}` (one, and
//! `DELETE` to cancel), `/{id}/output`, and `/blob/{id}` for binary outputs; with their
//! OpenAPI operations.

use super::forwarded::Reached;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::base::Base;
use super::route_table::RouteTable;
use crate::Problem;
use crate::action::{
    ActionOutput, Blob, Cancel, Invocation, InvocationBody, InvocationStatus, Invocations,
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
    let (parameters, page) = page_docs(invocation.clone());
    routes.route(
        &path,
        get(all).with_state(state.clone()),
        [RouteDoc::get(
            path.clone(),
            json!({"operationId": "list_invocations", "summary": "The invocations kept, oldest first, a page at a time",
                "tags": ["actions"], "parameters": parameters,
                "responses": {"200": page, "400": openapi::problem("`limit` or `after` is not valid")}}),
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
                    "409": openapi::problem("The invocation has already finished, or it is running and its action cannot be cancelled"),
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
async fn all(State(routes): Routes, reached: Reached, RawQuery(query): RawQuery) -> Response {
    list_page(
        &routes.invocations,
        None,
        query.as_deref(),
        &routes.base.url(&reached),
        &layout::invocations(),
    )
}

/// The most invocations one page lists, unless the client asks for fewer (or more, up to
/// [`MAX_PAGE`]).
pub(crate) const DEFAULT_PAGE: usize = 100;
/// The most a client may ask one page to list.
pub(crate) const MAX_PAGE: usize = 1000;

/// One page of invocations (`?limit=` of them, after the cursor `?after=`), oldest first, as
/// the LabThings JSON array; when more follow, a `Link: <...>; rel="next"` header (RFC 8288)
/// gives the next page's URL. `path` is the list's route.
pub(crate) fn list_page(
    invocations: &Invocations,
    of: Option<(&str, &str)>,
    query: Option<&str>,
    base: &str,
    path: &str,
) -> Response {
    let (after, limit) = match page_query(query) {
        Ok(page) => page,
        Err(problem) => return problem.into_response(),
    };
    let (page, more) = invocations.page(of, after, limit);
    let body: Vec<InvocationBody> = page
        .iter()
        .map(|invocation| invocation.body(base))
        .collect();
    let mut response = axum::Json(body).into_response();
    if more && let Some(last) = page.last() {
        let next = format!(
            "<{base}{}?after={}&limit={limit}>; rel=\"next\"",
            layout::relative(path),
            last.seq
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// `?after=<cursor>&limit=<n>`; other parameters are ignored.
fn page_query(query: Option<&str>) -> Result<(u64, usize), Box<Problem>> {
    let (mut after, mut limit) = (0, DEFAULT_PAGE);
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let invalid = |must: &str| super::problems::invalid_query(&name, &value, must);
        match name.as_ref() {
            "after" => {
                after = value
                    .parse()
                    .map_err(|_| invalid("must be a cursor from a `Link: rel=\"next\"` header"))?;
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid("must be a whole number from 1 to 1000"))?;
            }
            _ => {}
        }
    }
    Ok((after, limit))
}

/// The OpenAPI parameters and response of a paged list of invocations.
pub(crate) fn page_docs(item: Value) -> (Value, Value) {
    let parameters = json!([
        {"name": "limit", "in": "query", "required": false,
         "description": "How many invocations to list (default 100).",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
        {"name": "after", "in": "query", "required": false,
         "description": "Where to go on from: the cursor in the previous page's `Link: <...>; rel=\"next\"` header.",
         "schema": {"type": "integer", "minimum": 0}},
    ]);
    let mut ok = openapi::json_response(
        "Oldest first, at most `limit`; a `Link` header with `rel=\"next\"` gives the next page when more follow",
        json!({"type": "array", "items": item}),
    );
    ok["headers"] = json!({"Link": {"description": "The next page, when there is one (RFC 8288)",
        "schema": {"type": "string"}}});
    (parameters, ok)
}

/// `GET /action_invocations/{id}`.
async fn one(State(routes): Routes, Path(id): Path<String>, reached: Reached) -> Response {
    match routes.invocations.get(&id) {
        Some(invocation) => axum::Json(invocation.body(&routes.base.url(&reached))).into_response(),
        None => unknown(&id),
    }
}

/// `DELETE /action_invocations/{id}`: asks the action to stop.
async fn cancel(State(routes): Routes, Path(id): Path<String>) -> Response {
    let Some(invocation) = routes.invocations.get(&id) else {
        return unknown(&id);
    };
    match invocation.cancel() {
        Cancel::Requested => StatusCode::NO_CONTENT.into_response(),
        Cancel::Finished(status) => Problem::new(StatusCode::CONFLICT)
            .with_detail(format!(
                "Invocation {id} has already finished (status {status}); there is nothing to \
                 cancel."
            ))
            .into_response(),
        Cancel::NotCancellable => Problem::new(StatusCode::CONFLICT)
            .with_title("Not cancellable")
            .with_detail(format!(
                "Invocation {id} of `{}` cannot be cancelled while it runs: the action is a \
                 blocking function that does not take an `ActionContext`, so nothing can stop \
                 it. It runs to its end; its Thing Description offers no `cancelaction`.",
                invocation.action
            ))
            .into_response(),
    }
}

/// `GET /action_invocations/{id}/output`.
async fn output(State(routes): Routes, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match routes.invocations.get(&id) {
        None => unknown(&id),
        Some(invocation) => output_response(&invocation, &headers).await,
    }
}

/// `GET /blob/{id}`.
async fn blob(State(routes): Routes, Path(id): Path<String>, headers: HeaderMap) -> Response {
    // An array's link takes `.npy` or `.tiff` appended, for clients that cannot set `Accept`.
    let (id, extension) = match id.rsplit_once('.') {
        Some((id, extension)) => (id.to_owned(), Some(extension.to_ascii_lowercase())),
        None => (id, None),
    };
    let invocation = routes.invocations.get(&id);
    if let Some(invocation) = invocation.as_ref().filter(|i| i.output_dropped()) {
        return dropped(invocation);
    }
    match invocation.and_then(|i| i.output()) {
        Some(ActionOutput::Blob(blob)) if extension.is_none() => {
            blob_response(&blob, &headers).await
        }
        Some(ActionOutput::Array(array)) => array_response(&array, &headers, extension.as_deref()),
        _ => Problem::new(StatusCode::NOT_FOUND)
            .with_detail(format!(
                "No blob {id}: it never existed, or its invocation has expired."
            ))
            .into_response(),
    }
}

/// `410 Gone` for an output dropped to keep retained outputs within the server's budget.
fn dropped(invocation: &Invocation) -> Response {
    Problem::new(StatusCode::GONE)
        .with_title("Output dropped")
        .with_detail(format!(
            "The output of invocation {} of `{}` was dropped to keep the outputs the server \
             holds within its memory budget (`invocation_output_budget`); newer outputs took \
             its place. Fetch outputs soon after the invocation completes, or raise the budget.",
            invocation.id, invocation.action
        ))
        .into_response()
}

async fn output_response(invocation: &Invocation, headers: &HeaderMap) -> Response {
    if invocation.output_dropped() {
        return dropped(invocation);
    }
    match (invocation.status(), invocation.output()) {
        (InvocationStatus::Completed, Some(ActionOutput::Json(value))) => {
            axum::Json(value).into_response()
        }
        (InvocationStatus::Completed, Some(ActionOutput::Blob(blob))) => {
            blob_response(&blob, headers).await
        }
        (InvocationStatus::Completed, Some(ActionOutput::Array(array))) => {
            array_response(&array, headers, None)
        }
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

/// A blob's bytes, with its media type; from its file if it has one (with range requests,
/// as tower-http serves files).
pub(crate) async fn blob_response(blob: &Blob, headers: &HeaderMap) -> Response {
    use tower::ServiceExt as _;
    let media_type = HeaderValue::from_str(&blob.media_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let Some(path) = blob.file() else {
        return ([(header::CONTENT_TYPE, media_type)], blob.data.clone()).into_response();
    };
    let mut request = axum::http::Request::new(axum::body::Body::empty());
    for name in [
        header::IF_RANGE,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ] {
        if let Some(value) = headers.get(&name) {
            request.headers_mut().insert(name, value.clone());
        }
    }
    // Byte ranges as RFC 9110 has them read (an unknown unit ignored, an end past any file
    // clamped), which the file service underneath does not.
    if let Some(range) = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(super::negotiate::byte_ranges)
        .and_then(|range| HeaderValue::from_str(&range).ok())
    {
        request.headers_mut().insert(header::RANGE, range);
    }
    let served = tower_http::services::ServeFile::new(path)
        .oneshot(request)
        .await;
    match served {
        Ok(response) if response.status() == StatusCode::NOT_FOUND => {
            Problem::new(StatusCode::NOT_FOUND)
                .with_detail(format!(
                    "The output's file is gone: {} was moved or deleted.",
                    path.display()
                ))
                .into_response()
        }
        Ok(response) => {
            let mut response = response.map(axum::body::Body::new);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, media_type);
            response
        }
        Err(error) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
            .with_detail(format!("The output's file cannot be read: {error}."))
            .into_response(),
    }
}

/// An array as `.npy` (the default) or TIFF, as `Accept` or the link's extension asks: `406`
/// for a representation it cannot have (a 1-D array as TIFF, or TIFF without the feature).
pub(crate) fn array_response(
    array: &crate::action::NdArray,
    headers: &HeaderMap,
    extension: Option<&str>,
) -> Response {
    use crate::action::array::{NPY_MEDIA_TYPE, TIFF_MEDIA_TYPE};
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let tiff = match extension {
        Some("tif" | "tiff") => true,
        Some("npy") => false,
        Some(other) => {
            return Problem::new(StatusCode::NOT_FOUND)
                .with_detail(format!(
                    "An array is served as `.npy` or `.tiff`, not `.{}`.",
                    other.chars().take(20).collect::<String>()
                ))
                .into_response();
        }
        None => {
            super::negotiate::preferred(accept, &[NPY_MEDIA_TYPE, TIFF_MEDIA_TYPE])
                == Some(TIFF_MEDIA_TYPE)
        }
    };
    if !tiff {
        return (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(NPY_MEDIA_TYPE),
            )],
            array.to_npy(),
        )
            .into_response();
    }
    #[cfg(feature = "tiff")]
    match array.to_tiff() {
        Some(Ok(bytes)) => {
            return (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(TIFF_MEDIA_TYPE),
                )],
                bytes,
            )
                .into_response();
        }
        Some(Err(error)) => {
            return Problem::new(StatusCode::NOT_ACCEPTABLE)
                .with_detail(format!("This array cannot be a TIFF image: {error}."))
                .into_response();
        }
        None => {}
    }
    Problem::new(StatusCode::NOT_ACCEPTABLE)
        .with_detail(format!(
            "A {}-D array is served as `.npy`{}.",
            array.shape().len(),
            if cfg!(feature = "tiff") {
                "; only 2-D and 3-D arrays are images (TIFF)"
            } else {
                " only: this server was built without TIFF (feature `tiff`)"
            }
        ))
        .into_response()
}

fn unknown(id: &str) -> Response {
    Problem::new(StatusCode::NOT_FOUND)
        .with_detail(format!(
            "No invocation {id}: it never existed, or it finished and has expired."
        ))
        .into_response()
}
