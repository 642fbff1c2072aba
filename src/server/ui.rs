//! The web UI: plain HTML, CSS and a JavaScript module from `static/`, embedded in the binary
//! so an installed server needs no files on disk; or a folder of the user's own.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, get_service};
use serde_json::json;

use super::error::ServerError;
use super::options::Ui;
use super::route_table::RouteTable;
use crate::layout;
use crate::openapi::RouteDoc;

const INDEX: &str = include_str!("../../static/index.html");
const APP: &str = include_str!("../../static/app.js");
const STYLE: &str = include_str!("../../static/style.css");
const H264_PLAYER: &str = include_str!("../../static/h264-player.js");
/// uPlot 1.6.32 (MIT, `static/uplot.LICENSE`), as published on npm: the trend plots. Loaded by
/// the page only when a Thing has a property with a history.
const UPLOT: &str = include_str!("../../static/uplot.min.js");
const UPLOT_STYLE: &str = include_str!("../../static/uplot.min.css");

/// Adds the UI's files and the extra served folders to `routes`, and returns its page, which
/// the caller mounts at `<prefix>/` (with the slash, so that relative URLs work; the page is
/// recorded and documented here).
///
/// # Errors
///
/// [`ServerError::InvalidPrefix`] for a served folder's path that is not `/name`.
pub(crate) fn serve(
    source: &Ui,
    extra: &BTreeMap<String, PathBuf>,
    routes: &mut RouteTable,
) -> Result<Option<MethodRouter>, ServerError> {
    let page = match source {
        Ui::BuiltIn => {
            routes.served_elsewhere("/", [page("/", "ui", "The web UI: every Thing, live")]);
            let statics = layout::static_files();
            let script = format!("{statics}/app.js");
            let style = format!("{statics}/style.css");
            let player = format!("{statics}/h264-player.js");
            routes.route(
                &script,
                get(app_js),
                [file(&script, "ui_script", "text/javascript")],
            );
            routes.route(
                &player,
                get(h264_player_js),
                [file(&player, "ui_h264_player", "text/javascript")],
            );
            routes.route(
                &style,
                get(style_css),
                [file(&style, "ui_style", "text/css")],
            );
            let plot = format!("{statics}/uplot.min.js");
            let plot_style = format!("{statics}/uplot.min.css");
            routes.route(
                &plot,
                get(|| async { asset(UPLOT, "text/javascript; charset=utf-8") }),
                [file(&plot, "ui_plot_script", "text/javascript")],
            );
            routes.route(
                &plot_style,
                get(|| async { asset(UPLOT_STYLE, "text/css; charset=utf-8") }),
                [file(&plot_style, "ui_plot_style", "text/css")],
            );
            Some(get(index_html))
        }
        Ui::Folder(folder) => {
            routes.served_elsewhere(
                "/",
                [page("/", "ui", "The web UI (from the configured folder)")],
            );
            let statics = layout::static_files();
            routes.nest_folder(
                &statics,
                &folder.join("static"),
                [folder_doc(&statics, "ui_static")],
            );
            let index = tower_http::services::ServeFile::new(folder.join("index.html"));
            Some(get_service(index))
        }
        Ui::None => None,
    };
    for (index, (path, folder)) in extra.iter().enumerate() {
        if !path.starts_with('/') || path.ends_with('/') || path.len() < 2 {
            return Err(ServerError::InvalidPrefix(path.clone()));
        }
        routes.nest_folder(
            path,
            folder,
            [folder_doc(path, &format!("static_folder_{index}"))],
        );
    }
    Ok(page)
}

async fn index_html() -> impl IntoResponse {
    asset(INDEX, "text/html; charset=utf-8")
}

async fn app_js() -> impl IntoResponse {
    asset(APP, "text/javascript; charset=utf-8")
}

async fn h264_player_js() -> impl IntoResponse {
    asset(H264_PLAYER, "text/javascript; charset=utf-8")
}

async fn style_css() -> impl IntoResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(body: &'static str, media_type: &'static str) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
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
