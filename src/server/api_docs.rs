//! The API description: `GET /openapi.json` (the OpenAPI 3.1 document) and, with the
//! `swagger-ui` feature, `GET /docs/` (an API browser, Swagger UI served from the binary, so it
//! works with no internet).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use utoipa::openapi::OpenApi;

use super::route_table::RouteTable;
use crate::layout;
use crate::openapi::{self, RouteDoc};

/// Records and documents the two routes; [`router`] serves them once the document is complete.
pub(crate) fn document(routes: &mut RouteTable) {
    // `additionalProperties: true` said outright: generators read a bare `object` as an empty one.
    let object = json!({"type": "object", "additionalProperties": true});
    let path = layout::openapi();
    routes.served_elsewhere(
        &path,
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["server"],
                "responses": {"200": openapi::json_response("OpenAPI 3.1", object)},
            }),
        )],
    );
    #[cfg(feature = "swagger-ui")]
    let path = format!("{}/", layout::docs());
    #[cfg(feature = "swagger-ui")]
    routes.served_elsewhere(
        &path,
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": "docs",
                "summary": "An API browser for this document (works offline)",
                "tags": ["server"],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }),
        )],
    );
}

/// `GET /openapi.json`, to nest under the API prefix.
pub(crate) fn document_route(document: &OpenApi) -> Router {
    Router::new().route(
        &layout::openapi(),
        get(serve_document).with_state(Arc::new(document.clone())),
    )
}

/// The API browser at `<prefix>/docs/`, reading `<prefix>/openapi.json`. Its paths include the
/// prefix (its redirect from `<prefix>/docs` must), so it is merged beside the nested API.
#[cfg(feature = "swagger-ui")]
pub(crate) fn browser(prefix: &str) -> Router {
    let docs = format!("{prefix}{}", layout::docs());
    let openapi_url = format!("{prefix}{}", layout::openapi());
    Router::from(
        utoipa_swagger_ui::SwaggerUi::new(docs)
            .config(utoipa_swagger_ui::Config::new([openapi_url]).validator_url("none")),
    )
}

/// Without the `swagger-ui` feature: no API browser.
#[cfg(not(feature = "swagger-ui"))]
pub(crate) fn browser(_prefix: &str) -> Router {
    Router::new()
}

/// `GET /openapi.json`.
async fn serve_document(State(document): State<Arc<OpenApi>>) -> Response {
    axum::Json(document.as_ref()).into_response()
}
