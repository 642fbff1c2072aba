//! The route probe: every route the router serves is documented in `/openapi.json`, and every
//! documented route is served. Here, not in `tests/`, because what the router was given
//! (`ThingServer::served_paths`) is no part of the public API.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde_json::Value;

use crate::prelude::*;
use crate::stream::MjpegStream;

/// One affordance of every kind, with a setting, a blob output and a recordable stream.
#[derive(Thing)]
struct Bench {
    /// A level.
    #[property(min = 0.0, max = 10.0)]
    level: Property<f64>,
    /// Kept across restarts.
    #[setting]
    gain: Property<f64>,
    /// Something happened.
    #[event]
    happened: Event<u32>,
    /// The camera.
    #[stream(record)]
    camera: MjpegStream,
}

#[thing_actions]
impl Bench {
    /// Adds two numbers.
    async fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }

    /// A file.
    async fn capture(&self) -> Blob {
        Blob::new(vec![1, 2, 3], "application/octet-stream")
    }
}

fn bench() -> Bench {
    Bench {
        level: Property::new(1.0),
        gain: Property::new(1.0),
        happened: Event::new(),
        camera: MjpegStream::new(),
    }
}

/// A concrete URL for a route template: ids that do not exist, a file that does not exist.
fn example_url(address: SocketAddr, template: &str) -> String {
    let path = template
        .replace("{id}", "00000000-0000-4000-8000-000000000000")
        .replace("{file}", "no-such-file.txt");
    format!("http://{address}{path}")
}

/// The methods the real router answers at `path`: everything but a 405, or the 404 of the
/// fallback (a 404 from a route, such as an unknown invocation id, still means it is served).
/// Writes carry a body that is not JSON, so no property changes and no action starts.
async fn methods_served(address: SocketAddr, template: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut methods = Vec::new();
    for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
        let response = client
            .request(method.parse().unwrap(), example_url(address, template))
            .body("not json")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 405 {
            continue;
        }
        if status == 404 {
            let problem: Value = response.json().await.unwrap_or_default();
            if problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.starts_with("Nothing is served at"))
            {
                continue;
            }
        }
        methods.push(method.to_owned());
    }
    methods
}

/// (method, path) of every operation of an OpenAPI document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect()
}

async fn serve(router: axum::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, task)
}

#[tokio::test]
async fn every_route_the_router_serves_is_documented_and_every_documented_route_is_served() {
    let settings = tempfile::tempdir().unwrap();
    let server = ThingServer::builder()
        .settings_folder(settings.path())
        .add_thing("bench", bench())
        .build()
        .unwrap();
    let paths = server.served_paths().to_vec();
    assert!(
        paths.iter().any(|p| p == "/bench/camera/snapshot"),
        "{paths:?}"
    );
    let documented = operations(&server.openapi());
    let (address, task) = serve(server.router()).await;
    let mut served = BTreeSet::new();
    for path in &paths {
        for method in methods_served(address, path).await {
            served.insert((method, path.clone()));
        }
    }
    task.abort();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
}

#[tokio::test]
async fn the_probe_finds_a_route_added_without_documentation() {
    // The check above must be able to fail: a route the router serves that no document
    // mentions is found by probing.
    let server = ThingServer::builder()
        .without_settings_folder()
        .add_thing("bench", bench())
        .build()
        .unwrap();
    let router = server.router().route(
        "/bench/undocumented",
        axum::routing::get(|| async { "hidden" }),
    );
    let (address, task) = serve(router).await;
    assert_eq!(
        methods_served(address, "/bench/undocumented").await,
        ["GET"]
    );
    assert!(
        methods_served(address, "/bench/nothing-here")
            .await
            .is_empty()
    );
    task.abort();
}

#[test]
fn every_operation_documents_what_the_layers_may_answer() {
    let server = ThingServer::builder()
        .without_settings_folder()
        .add_thing("bench", bench())
        .build()
        .unwrap();
    let document = server.openapi();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            for (status, _) in super::problems::LAYER_RESPONSES {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
    assert!(operations > 20, "{operations}");
}
