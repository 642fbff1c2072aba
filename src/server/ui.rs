//! The web UI: plain HTML, CSS and a JavaScript module from `static/`, embedded in the binary
//! so an installed server needs no files on disk; or a folder of the user's own.

use std::path::PathBuf;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, get_service};
use serde_json::json;

use crate::openapi::RouteDoc;

const INDEX: &str = include_str!("../../static/index.html");
const APP: &str = include_str!("../../static/app.js");
const STYLE: &str = include_str!("../../static/style.css");

/// Where the UI comes from.
#[derive(Debug, Clone, Default)]
pub(crate) enum UiSource {
    /// The UI built into the binary.
    #[default]
    Embedded,
    /// A folder with `index.html` and a `static/` folder, instead of the built-in UI.
    Folder(PathBuf),
    /// No UI.
    None,
}

/// The UI: its page (to mount at `<prefix>/`, with the slash, so relative URLs work), its other
/// routes (relative to the API prefix), and their documentation.
pub(crate) fn routes(
    source: &UiSource,
    extra: &[(String, PathBuf)],
) -> (Option<MethodRouter>, Router, Vec<RouteDoc>) {
    let mut router = Router::new();
    let mut docs = Vec::new();
    let asset = |body: &'static str, media_type: &'static str| {
        get(move || async move {
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
                body,
            )
                .into_response()
        })
    };
    let mut page_route = None;
    match source {
        UiSource::Embedded => {
            page_route = Some(asset(INDEX, "text/html; charset=utf-8"));
            router = router
                .route(
                    "/static/app.js",
                    asset(APP, "text/javascript; charset=utf-8"),
                )
                .route("/static/style.css", asset(STYLE, "text/css; charset=utf-8"));
            docs.push(page("/", "ui", "The web UI: every Thing, live"));
            docs.push(file("/static/app.js", "ui_script", "text/javascript"));
            docs.push(file("/static/style.css", "ui_style", "text/css"));
        }
        UiSource::Folder(folder) => {
            let index = tower_http::services::ServeFile::new(folder.join("index.html"));
            page_route = Some(get_service(index));
            router = router.nest_service(
                "/static",
                tower_http::services::ServeDir::new(folder.join("static")),
            );
            docs.push(page("/", "ui", "The web UI (from the configured folder)"));
            docs.push(folder_doc("/static", "ui_static"));
        }
        UiSource::None => {}
    }
    for (index, (path, folder)) in extra.iter().enumerate() {
        router = router.nest_service(path, tower_http::services::ServeDir::new(folder));
        docs.push(folder_doc(path, &format!("static_folder_{index}")));
    }
    (page_route, router, docs)
}

fn page(path: &str, id: &str, summary: &str) -> RouteDoc {
    RouteDoc::get(
        path.to_owned(),
        json!({"operationId": id, "summary": summary, "tags": ["ui"],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}),
    )
}

fn file(path: &str, id: &str, media_type: &str) -> RouteDoc {
    RouteDoc::get(
        path.to_owned(),
        json!({"operationId": id, "summary": format!("Part of the web UI ({media_type})"), "tags": ["ui"],
            "responses": {"200": {"description": media_type, "content": {media_type: {}}}}}),
    )
}

fn folder_doc(path: &str, id: &str) -> RouteDoc {
    RouteDoc::get(
        format!("{path}/{{file}}"),
        json!({"operationId": id, "summary": "A file from a served folder", "tags": ["ui"],
        "parameters": [{"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The file, with its media type (HTML, CSS, JavaScript, images)",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
            "404": crate::openapi::problem("No such file"),
        }}),
    )
}
