//! The lab view (`/lab_view/`): one page showing the Things of many servers, read from their Thing
//! Descriptions alone (so any server with valid TDs can be shown), with what it needs:
//! `/lab_view/sources` (the servers and the directory it reads) and, with the `directory` feature,
//! `/lab_view/directory` (a TD of the directory) and `/lab_view/directory/things` (the directory's
//! TDs, read by the server: domus-tdd-api 1.0.2's CORS header is `localhost`, not an origin,
//! so a browser cannot read it from another page).

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
#[cfg(feature = "directory")]
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::error::ServerError;
use super::options::ServerOptions;
use super::route_table::RouteTable;
use crate::layout;
use crate::openapi::{self, RouteDoc};

const PAGE: &str = include_str!("../../static/lab.html");
const SCRIPT: &str = include_str!("../../static/lab.js");

/// What the lab view shows.
#[derive(Debug, Clone)]
pub(crate) struct Lab {
    /// Other servers' URLs, each ending in `/`.
    servers: Vec<String>,
    #[cfg(feature = "directory")]
    directory: Option<super::directory::Directory>,
}

impl Lab {
    /// # Errors
    ///
    /// [`ServerError::Directory`] for a server that is not an `http(s)://` URL.
    pub(crate) fn from_options(options: &ServerOptions) -> Result<Self, ServerError> {
        let mut servers = Vec::new();
        for server in &options.lab.servers {
            let scheme_ok = server.starts_with("http://") || server.starts_with("https://");
            let host_ok = server
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
            if !scheme_ok || !host_ok || server.chars().any(char::is_whitespace) {
                return Err(ServerError::Directory(format!(
                    "the lab view's server {server:?} is not an http:// or https:// URL with a \
                     host, such as http://stage.lab:5000/"
                )));
            }
            let mut server = server.clone();
            if !server.ends_with('/') {
                server.push('/');
            }
            servers.push(server);
        }
        Ok(Self {
            servers,
            #[cfg(feature = "directory")]
            directory: None,
        })
    }

    /// The directory the lab view lists.
    #[cfg(feature = "directory")]
    pub(crate) fn set_directory(&mut self, directory: Option<super::directory::Directory>) {
        self.directory = directory;
    }

    /// Adds the page and its routes.
    pub(crate) fn serve(self, routes: &mut RouteTable) {
        let page = layout::lab();
        routes.route(
            &page,
            get(|| async { html(PAGE) }),
            [RouteDoc::get(
                page.clone(),
                json!({"operationId": "lab_view", "summary": "The lab view: every Thing of this server, of the configured servers and of the directory, live",
                    "tags": ["ui"],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}),
            )],
        );
        let script = format!("{}/lab.js", layout::static_files());
        routes.route(
            &script,
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/javascript; charset=utf-8"),
                    )],
                    SCRIPT,
                )
            }),
            [RouteDoc::get(
                script.clone(),
                json!({"operationId": "lab_script", "summary": "Part of the lab view (text/javascript)", "tags": ["ui"],
                    "responses": {"200": {"description": "text/javascript", "content": {"text/javascript": {}}}}}),
            )],
        );
        let sources = layout::lab_sources();
        let body = self.sources();
        routes.route(
            &sources,
            get(move || {
                let body = body.clone();
                async move { axum::Json(body) }
            }),
            [RouteDoc::get(
                sources.clone(),
                json!({"operationId": "lab_sources", "summary": "What the lab view shows: other servers, and the directory",
                    "tags": ["ui"],
                    "responses": {"200": openapi::json_response("The servers (URLs ending in `/`) and the directory (its URL, or null)", json!({
                        "type": "object",
                        "properties": {
                            "servers": {"type": "array", "items": {"type": "string", "format": "uri"}},
                            "directory": {"type": ["string", "null"], "format": "uri"},
                        },
                        "required": ["servers", "directory"],
                    }))}}),
            )],
        );
        #[cfg(feature = "directory")]
        self.serve_directory(routes);
    }

    fn sources(&self) -> Value {
        #[cfg(feature = "directory")]
        let directory = self.directory.as_ref().map(|d| d.url().to_owned());
        #[cfg(not(feature = "directory"))]
        let directory: Option<String> = None;
        json!({"servers": self.servers, "directory": directory})
    }

    /// `/lab_view/directory` and `/lab_view/directory/things`, when there is a directory.
    #[cfg(feature = "directory")]
    fn serve_directory(&self, routes: &mut RouteTable) {
        let Some(directory) = self.directory.clone() else {
            return;
        };
        let path = layout::lab_directory();
        let td = directory_td(directory.url());
        routes.route(
            &path,
            get(move || {
                let td = td.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(crate::td::TD_MEDIA_TYPE),
                        )],
                        axum::Json(td),
                    )
                }
            }),
            [RouteDoc::get(
                path.clone(),
                json!({"operationId": "lab_directory", "summary": "A Thing Description of the directory this server registers with",
                    "description": "Its `things` property reads the directory's own `/things` (W3C WoT Discovery). \
                        For WoT consumers such as node-wot's `exploreDirectory`: the TD names the TD 1.0 context first, which they validate against.",
                    "tags": ["ui"],
                    "responses": {
                        "200": {"description": "W3C WoT Thing Description 1.1",
                            "content": {crate::td::TD_MEDIA_TYPE: {"schema": {"type": "object", "additionalProperties": true}}}},
                    }}),
            )],
        );
        let path = layout::lab_directory_things();
        routes.route(
            &path,
            get(move || {
                let directory = directory.clone();
                async move { list(&directory).await }
            }),
            [RouteDoc::get(
                path.clone(),
                json!({"operationId": "lab_directory_things", "summary": "Every Thing Description the directory lists, read by this server",
                    "tags": ["ui"],
                    "responses": {
                        "200": openapi::json_response("The directory's Thing Descriptions, as it gave them", json!({
                            "type": "array", "items": {"type": "object", "additionalProperties": true}})),
                        "502": openapi::problem("The directory cannot be reached, or answered with an error"),
                    }}),
            )],
        );
    }
}

/// The directory's TDs, or a 502 problem naming it and what went wrong.
#[cfg(feature = "directory")]
async fn list(directory: &super::directory::Directory) -> Response {
    match directory.list().await {
        Ok(tds) => axum::Json(tds).into_response(),
        Err(reason) => crate::Problem::new(axum::http::StatusCode::BAD_GATEWAY)
            .with_title("The directory did not answer as expected")
            .with_detail(format!(
                "reading the directory at {}: {reason}",
                directory.url()
            ))
            .into_response(),
    }
}

fn html(body: &'static str) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
}

/// A TD of a directory at `url`: its `things` property is the directory's listing.
#[cfg(feature = "directory")]
fn directory_td(url: &str) -> Value {
    json!({
        "@context": [crate::td::TD_1_0_CONTEXT, crate::td::TD_CONTEXT, "https://www.w3.org/2022/wot/discovery"],
        "@type": "ThingDirectory",
        "title": "Thing Description Directory",
        "description": "The directory this labthings server registers its Things with.",
        "base": format!("{url}/"),
        "securityDefinitions": {"no_security": {"scheme": "nosec"}},
        "security": "no_security",
        "properties": {
            "things": {
                "description": "Every Thing Description the directory lists",
                "type": "array",
                "items": {"type": "object"},
                "readOnly": true,
                "forms": [{
                    "href": "things",
                    "op": ["readproperty"],
                    "contentType": "application/json",
                    "htv:methodName": "GET",
                }],
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_servers_must_be_urls_and_end_with_a_slash() {
        let lab = |servers: &[&str]| {
            let mut options = ServerOptions::default();
            options.lab.servers = servers.iter().map(|s| (*s).to_owned()).collect();
            Lab::from_options(&options)
        };
        let ok = lab(&["http://stage.lab:5000", "https://scope.lab/api/"]).unwrap();
        assert_eq!(
            ok.sources()["servers"],
            json!(["http://stage.lab:5000/", "https://scope.lab/api/"])
        );
        for bad in ["stage.lab:5000", "http://", "ftp://x/", "http://a b/"] {
            let error = lab(&[bad]).unwrap_err().to_string();
            assert!(error.contains("is not an http://"), "{bad}: {error}");
        }
    }
}
