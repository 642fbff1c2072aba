//! A lab of many instruments: stable Thing ids, registration with a Thing Description
//! Directory (a directory double here; the real domus-tdd-api runs in `tests/lab/run.sh`),
//! and the lab view's routes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use labthings::server::{DirectoryOptions, LabOptions};
use labthings::{Property, Thing};
use serde_json::{Value, json};

use crate::support::{
    Captured, builder, eventually, json_of, metrics_text, problem, sample, spawn_server,
    spawn_thing_server,
};

/// A thermometer.
#[derive(Thing)]
struct Thermometer {
    /// The temperature, in degrees Celsius.
    #[property(read_only)]
    temperature: Property<f64>,
}

fn thermometer() -> Thermometer {
    Thermometer {
        temperature: Property::new(21.5),
    }
}

/// One request the directory double received.
#[derive(Debug, Clone)]
struct Received {
    method: &'static str,
    id: String,
    body: Option<Value>,
    content_type: Option<String>,
    authorization: Option<String>,
}

/// A directory double: records registrations, lists what it holds two at a time (with
/// `Link: rel=next`), and answers 503 to everything while `failing`.
#[derive(Clone, Default)]
struct Directory {
    received: Arc<Mutex<Vec<Received>>>,
    held: Arc<Mutex<Vec<Value>>>,
    failing: Arc<AtomicBool>,
}

impl Directory {
    async fn start(self) -> String {
        let router = Router::new()
            .route("/things", get(list))
            .route("/things/{id}", put(register).delete(remove))
            .with_state(self);
        format!("http://{}", spawn_server(router).await)
    }

    fn received(&self, method: &str, id: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.id == id)
            .cloned()
            .collect()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn register(
    State(directory): State<Directory>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    if directory.failing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    directory.received.lock().unwrap().push(Received {
        method: "PUT",
        id,
        body: serde_json::from_str(&body).ok(),
        content_type: header(&headers, "content-type"),
        authorization: header(&headers, "authorization"),
    });
    StatusCode::CREATED
}

async fn remove(State(directory): State<Directory>, Path(id): Path<String>) -> StatusCode {
    directory.received.lock().unwrap().push(Received {
        method: "DELETE",
        id,
        body: None,
        content_type: None,
        authorization: None,
    });
    StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize)]
struct Page {
    offset: usize,
    limit: usize,
}

async fn list(
    State(directory): State<Directory>,
    Query(page): Query<Page>,
) -> axum::response::Response {
    if directory.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "KeyError: 'td:urn:x'").into_response();
    }
    let held = directory.held.lock().unwrap().clone();
    let limit = page.limit.min(2);
    let end = (page.offset + limit).min(held.len());
    let mut link = "</things>; rel=\"canonical\"".to_owned();
    if end < held.len() {
        link.push_str(&format!(
            ",</things?offset={end}&limit={}>; rel=\"next\"",
            page.limit
        ));
    }
    (
        [
            ("link", link),
            ("content-type", "application/ld+json".into()),
        ],
        axum::Json(held[page.offset.min(end)..end].to_vec()),
    )
        .into_response()
}

#[tokio::test]
async fn things_are_registered_with_absolute_links_refreshed_within_the_ttl_and_removed_at_a_clean_stop()
 {
    let directory = Directory::default();
    let url = directory.clone().start().await;
    let server = builder()
        .add_thing("inside", thermometer())
        .add_thing("outside", thermometer())
        .thing_ids([("outside", "urn:lab:outside-thermometer")])
        .directory(
            DirectoryOptions::new(&url)
                .ttl(Duration::from_secs(2))
                .token("s3cret"),
        )
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let inside = json_of(http.get(format!("{base}/inside/"))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(inside.starts_with("urn:uuid:"), "{inside}");
    let ids = [inside.as_str(), "urn:lab:outside-thermometer"];
    // Registered at start, then again every half ttl: twice within 2.5 s.
    eventually(|| {
        ids.iter()
            .all(|id| directory.received("PUT", id).len() >= 2)
    })
    .await;
    for id in ids {
        let put = directory.received("PUT", id).remove(0);
        assert_eq!(put.content_type.as_deref(), Some("application/td+json"));
        assert_eq!(put.authorization.as_deref(), Some("Bearer s3cret"));
        let td = put.body.expect("a JSON body");
        assert_eq!(td["id"], id);
        assert_eq!(td["registration"]["ttl"], 2);
        assert_eq!(td["base"], format!("{base}/"));
        let href = td["properties"]["temperature"]["forms"][0]["href"]
            .as_str()
            .unwrap();
        assert!(href.starts_with(&format!("{base}/")), "absolute: {href}");
    }
    let metrics = metrics_text(&http, &base).await;
    let series = |name: &str| format!("{name}{{directory=\"{url}\"}}");
    assert_eq!(sample(&metrics, &series("labthings_directory_up")), 1.0);
    assert_eq!(
        sample(&metrics, &series("labthings_directory_registered_things")),
        2.0
    );
    assert!(sample(&metrics, &series("labthings_directory_registrations_total")) >= 2.0);
    assert!(directory.received("DELETE", ids[0]).is_empty());
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    for id in ids {
        assert_eq!(directory.received("DELETE", id).len(), 1, "{id} removed");
    }
}

#[tokio::test]
async fn a_failing_directory_never_delays_serving_is_logged_once_and_gets_the_registrations_when_it_recovers()
 {
    let log = Captured::start();
    let directory = Directory::default();
    directory.failing.store(true, Ordering::SeqCst);
    let url = directory.clone().start().await;
    let server = builder()
        .add_thing("probe", thermometer())
        .directory(DirectoryOptions::new(&url).ttl(Duration::from_secs(20)))
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    // Served at once, whatever the directory does.
    let td = json_of(http.get(format!("{base}/probe/"))).await;
    let id = td["id"].as_str().unwrap().to_owned();
    let failures = format!("labthings_directory_failures_total{{directory=\"{url}\"}}");
    // Tried at once, after 1 s and after 2 s more: three failures.
    let mut failed = 0.0;
    for _ in 0..100 {
        failed = sample(&metrics_text(&http, &base).await, &failures);
        if failed >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failed >= 3.0, "retried: {failed}");
    let up = format!("labthings_directory_up{{directory=\"{url}\"}}");
    assert_eq!(sample(&metrics_text(&http, &base).await, &up), 0.0);
    let said = |needle: &str| {
        log.text()
            .lines()
            .filter(|line| line.contains(&url) && line.contains(needle))
            .count()
    };
    assert_eq!(
        said("cannot register with the directory"),
        1,
        "{}",
        log.text()
    );
    assert!(log.text().contains("503"), "the reason is logged");
    directory.failing.store(false, Ordering::SeqCst);
    eventually(|| !directory.received("PUT", &id).is_empty()).await;
    eventually(|| said("the directory answers again") == 1).await;
    assert_eq!(said("cannot register with the directory"), 1);
    assert_eq!(sample(&metrics_text(&http, &base).await, &up), 1.0);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn ids_are_kept_across_restarts_and_two_servers_never_share_one() {
    let folder = tempfile::tempdir().unwrap();
    let ids_of = |server: labthings::ThingServer| async move {
        let (address, stop, task) = spawn_thing_server(server).await;
        let http = reqwest::Client::new();
        let thing = json_of(http.get(format!("http://{address}/scope/"))).await["id"].clone();
        let own =
            json_of(http.get(format!("http://{address}/.well-known/wot"))).await["id"].clone();
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        (thing, own)
    };
    let first = builder()
        .settings_folder(folder.path())
        .add_thing("scope", thermometer())
        .build()
        .unwrap();
    let second_on_same_folder = builder()
        .settings_folder(folder.path())
        .add_thing("scope", thermometer())
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        second_on_same_folder.contains("another running server uses this settings folder"),
        "{second_on_same_folder}"
    );
    let (thing, own) = ids_of(first).await;
    assert!(thing.as_str().unwrap().starts_with("urn:uuid:"), "{thing}");
    assert!(own.as_str().unwrap().starts_with("urn:uuid:"), "{own}");
    assert_ne!(thing, own);
    let restarted = builder()
        .settings_folder(folder.path())
        .add_thing("scope", thermometer())
        .build()
        .unwrap();
    assert_eq!(ids_of(restarted).await, (thing.clone(), own.clone()));
    let elsewhere = tempfile::tempdir().unwrap();
    let other = builder()
        .settings_folder(elsewhere.path())
        .add_thing("scope", thermometer())
        .build()
        .unwrap();
    let (other_thing, other_own) = ids_of(other).await;
    assert_ne!(other_thing, thing);
    assert_ne!(other_own, own);
    // Set in the configuration instead.
    let configured = builder()
        .id("urn:lab:scope-server")
        .thing_ids([("scope", "urn:lab:scope")])
        .add_thing("scope", thermometer())
        .build()
        .unwrap();
    assert_eq!(
        ids_of(configured).await,
        (json!("urn:lab:scope"), json!("urn:lab:scope-server"))
    );
    let refused = builder()
        .thing_ids([("scoep", "urn:lab:scope")])
        .add_thing("scope", thermometer())
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("not one of this server's Things (scope)"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_lab_view_lists_its_sources_and_reads_the_directory_through_the_server() {
    let directory = Directory::default();
    *directory.held.lock().unwrap() = (0..5)
        .map(|n| json!({"id": format!("urn:x:{n}"), "title": format!("Thing {n}")}))
        .collect();
    let url = directory.clone().start().await;
    let server = builder()
        .add_thing("probe", thermometer())
        .directory(DirectoryOptions::new(&url))
        .lab(LabOptions::servers(["http://stage.lab:5000"]))
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/lab_view/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("lab.js"));
    let script = http
        .get(format!("{base}/static/lab.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        json_of(http.get(format!("{base}/lab_view/sources"))).await,
        json!({"servers": ["http://stage.lab:5000/"], "directory": url})
    );
    // Every page of the directory's listing, in order.
    let listed = json_of(http.get(format!("{base}/lab_view/directory/things"))).await;
    let titles: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|td| td["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["Thing 0", "Thing 1", "Thing 2", "Thing 3", "Thing 4"]
    );
    // The directory described for WoT consumers: its listing is its own `/things`.
    let td = json_of(http.get(format!("{base}/lab_view/directory"))).await;
    assert_eq!(td["base"], format!("{url}/"));
    assert_eq!(td["properties"]["things"]["forms"][0]["href"], "things");
    // A directory that fails is a 502 naming it and what it said.
    directory.failing.store(true, Ordering::SeqCst);
    let failed = problem(
        http.get(format!("{base}/lab_view/directory/things"))
            .send()
            .await
            .unwrap(),
        502,
    )
    .await;
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains(&url) && detail.contains("500"), "{detail}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // Without a directory, there are no directory routes (and the OpenAPI document has none).
    let server = builder().add_thing("probe", thermometer()).build().unwrap();
    assert!(server.openapi()["paths"]["/lab_view/directory/things"].is_null());
    let (address, stop, task) = spawn_thing_server(server).await;
    problem(
        http.get(format!("http://{address}/lab_view/directory/things"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(
        json_of(http.get(format!("http://{address}/lab_view/sources"))).await,
        json!({"servers": [], "directory": null})
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
