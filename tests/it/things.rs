//! Things over HTTP: properties of every kind, settings, lifecycle, names and errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use labthings::stream::MjpegStream;
use labthings::{
    JsonSchema, Property, Thing, ThingServer, property::SetError, server::ServerError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::support::{eventually, problem, spawn_thing_server};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    Auto,
    Manual,
}

/// A region of interest on the sensor.
#[labthings::data]
#[derive(Debug, Clone, PartialEq)]
pub struct Roi {
    pub x: u32,
    pub y: u32,
}

/// A Thing with one property of each kind.
#[derive(Thing)]
#[thing(title = "Everything")]
pub struct Everything {
    /// A number with a range.
    #[property(min = 0.1, max = 1000.0)]
    pub number: Property<f64>,
    /// An integer in steps of five.
    #[property(exclusive_min = 0, multiple_of = 5)]
    pub integer: Property<i32>,
    /// Counted by the instrument.
    #[property(read_only)]
    pub counter: Property<u64>,
    #[property]
    pub flag: Property<bool>,
    /// Lower-case letters.
    #[property(min_length = 2, max_length = 8, pattern = "^[a-z]+$")]
    pub label: Property<String>,
    #[property]
    pub mode: Property<Mode>,
    #[property(observable = false)]
    pub roi: Property<Option<Roi>>,
    #[property]
    pub position: Property<[i64; 3]>,
    /// Kept across restarts.
    #[setting(min = 1.0, max = 16.0)]
    pub gain: Property<f64>,
    /// Goes to the hardware first, which refuses 13.
    #[property(rename = "hardware-value")]
    pub hooked: Property<i32>,
    #[stream]
    pub camera: MjpegStream,
}

impl Everything {
    pub fn new() -> Self {
        Self {
            number: Property::new(10.0),
            integer: Property::new(5),
            counter: Property::new(0),
            flag: Property::new(false),
            label: Property::new("abc".to_owned()),
            mode: Property::new(Mode::Auto),
            roi: Property::new(None),
            position: Property::new([0, 0, 0]),
            gain: Property::new(1.0),
            hooked: Property::new(0).with_setter(|value: i32| async move {
                if value == 13 {
                    Err(SetError::unavailable("the hardware refuses 13"))
                } else {
                    Ok(())
                }
            }),
            camera: MjpegStream::new(),
        }
    }
}

struct Served {
    address: SocketAddr,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Served {
    async fn start(server: ThingServer) -> Self {
        let (address, stop, task) = spawn_thing_server(server).await;
        Self {
            address,
            client: reqwest::Client::new(),
            stop,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    async fn put(&self, path: &str, value: Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(&value)
            .send()
            .await
            .unwrap()
    }

    async fn value(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

async fn everything() -> (Served, Arc<Everything>) {
    let thing = Arc::new(Everything::new());
    let server = crate::support::builder()
        .add_thing("things_test", thing.clone())
        .build()
        .unwrap();
    (Served::start(server).await, thing)
}

#[tokio::test]
async fn reads_are_bare_json_values_of_every_kind() {
    let (served, _) = everything().await;
    for (name, expected) in [
        ("number", json!(10.0)),
        ("integer", json!(5)),
        ("counter", json!(0)),
        ("flag", json!(false)),
        ("label", json!("abc")),
        ("mode", json!("Auto")),
        ("roi", Value::Null),
        ("position", json!([0, 0, 0])),
        ("gain", json!(1.0)),
        ("hardware-value", json!(0)),
    ] {
        assert_eq!(
            served.value(&format!("/things_test/{name}")).await,
            expected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn writes_of_every_kind_round_trip_and_reach_rust() {
    let (served, thing) = everything().await;
    for (name, value) in [
        ("number", json!(0.5)),
        ("integer", json!(15)),
        ("flag", json!(true)),
        ("label", json!("xyz")),
        ("mode", json!("Manual")),
        ("roi", json!({"x": 3, "y": 4})),
        ("position", json!([1, -2, 3])),
        ("gain", json!(2.5)),
        ("hardware-value", json!(7)),
    ] {
        let path = format!("/things_test/{name}");
        let response = served.put(&path, value.clone()).await;
        assert_eq!(response.status(), 204, "PUT {name}");
        assert_eq!(served.value(&path).await, value, "{name}");
    }
    assert_eq!(thing.roi.get(), Some(Roi { x: 3, y: 4 }));
    assert_eq!(thing.mode.get(), Mode::Manual);
}

#[tokio::test]
async fn bad_values_are_422_problems_naming_the_property_and_the_rule() {
    let (served, thing) = everything().await;
    for (name, value, reason) in [
        ("number", json!(0.01), "minimum"),
        ("number", json!(1e6), "maximum"),
        ("integer", json!(0), "exclusiveMinimum"),
        ("integer", json!(7), "multipleOf"),
        ("integer", json!(2.5), "invalid type"),
        ("label", json!("a"), "minLength"),
        ("label", json!("abcdefghi"), "maxLength"),
        ("label", json!("ABC"), "pattern"),
        ("flag", json!("yes"), "invalid type"),
        ("mode", json!("Turbo"), "unknown variant"),
        ("roi", json!({"x": 1, "y": "two"}), "at `y`"),
        ("position", json!([1, 2]), "invalid length"),
    ] {
        let response = served
            .put(&format!("/things_test/{name}"), value.clone())
            .await;
        let body = problem(response, 422).await;
        assert_eq!(body["invalid-params"][0]["name"], name, "{name} {value}");
        let reason_text = body["invalid-params"][0]["reason"].as_str().unwrap();
        assert!(
            reason_text.contains(reason),
            "{name} {value}: {reason_text}"
        );
    }
    assert_eq!(thing.number.get(), 10.0, "rejected writes change nothing");
    assert_eq!(thing.label.get(), "abc");
}

#[tokio::test]
async fn writing_a_read_only_property_is_405_allowing_get() {
    let (served, _) = everything().await;
    let response = served.put("/things_test/counter", json!(5)).await;
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let body = problem(response, 405).await;
    assert!(
        body["detail"].as_str().unwrap().contains("read-only"),
        "{body}"
    );
}

#[tokio::test]
async fn bodies_that_are_not_json_get_clear_400_and_415_problems() {
    let (served, _) = everything().await;
    let put = |content_type: &'static str, body: &'static str| {
        served
            .client
            .put(served.url("/things_test/number"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let body = problem(put("text/plain", "5").await.unwrap(), 415).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{body}"
    );
    let body = problem(put("application/json", "{5").await.unwrap(), 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    let body = problem(put("application/json", "").await.unwrap(), 400).await;
    assert!(body["detail"].as_str().unwrap().contains("empty"), "{body}");
    // No Content-Type at all is read as JSON, as curl users expect.
    let response = served
        .client
        .put(served.url("/things_test/number"))
        .body("20")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn a_setter_hook_error_keeps_the_value_and_sets_the_status() {
    let (served, thing) = everything().await;
    let body = problem(
        served.put("/things_test/hardware-value", json!(13)).await,
        503,
    )
    .await;
    assert_eq!(body["detail"], "the hardware refuses 13");
    assert_eq!(thing.hooked.get(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let (served, _) = everything().await;
    problem(served.get("/no_such_thing/").await, 404).await;
    problem(served.get("/things_test/no_such_property").await, 404).await;
    let response = served
        .client
        .delete(served.url("/things_test/number"))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("PUT") && allow.contains("GET"), "{allow}");
    let body = problem(response, 405).await;
    assert!(
        body["detail"].as_str().unwrap().contains("DELETE"),
        "{body}"
    );
}

#[tokio::test]
async fn the_index_routes_list_every_thing() {
    let (served, _) = everything().await;
    let things = served.value("/things/").await;
    assert_eq!(things, json!({"things_test": served.url("/things_test/")}));
    let tds = served.value("/thing_descriptions/").await;
    assert_eq!(tds["things_test"]["title"], "Everything");
    assert_eq!(tds["things_test"]["base"], served.url("/"));
}

#[tokio::test]
async fn an_api_prefix_moves_every_route_and_the_td_base() {
    let server = crate::support::builder()
        .api_prefix("/api/v3")
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let served = Served::start(server).await;
    assert_eq!(
        served.value("/api/v3/things_test/number").await,
        json!(10.0)
    );
    let td = served.value("/api/v3/things_test/").await;
    assert_eq!(td["base"], served.url("/api/v3/"));
    assert_eq!(served.get("/api/v3/docs/").await.status(), 200);
    problem(served.get("/things_test/number").await, 404).await;
}

#[tokio::test]
async fn a_setting_survives_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let build = || {
        crate::support::builder()
            .settings_folder(folder.path())
            .add_thing("things_test", Everything::new())
            .build()
            .unwrap()
    };
    let served = Served::start(build()).await;
    assert_eq!(
        served.put("/things_test/gain", json!(4.5)).await.status(),
        204
    );
    // A plain property is not a setting.
    assert_eq!(
        served
            .put("/things_test/number", json!(42.0))
            .await
            .status(),
        204
    );
    served.shutdown().await.unwrap();

    let file = folder.path().join("things_test").join("settings.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved, json!({"gain": 4.5}));

    let served = Served::start(build()).await;
    assert_eq!(served.value("/things_test/gain").await, json!(4.5));
    assert_eq!(served.value("/things_test/number").await, json!(10.0));
}

#[tokio::test]
async fn a_corrupt_settings_file_is_kept_aside_and_defaults_are_used() {
    let folder = tempfile::tempdir().unwrap();
    let thing_folder = folder.path().join("things_test");
    std::fs::create_dir_all(&thing_folder).unwrap();
    std::fs::write(thing_folder.join("settings.json"), b"{\"gain\": 4.5").unwrap();
    let server = crate::support::builder()
        .settings_folder(folder.path())
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let served = Served::start(server).await;
    assert_eq!(served.value("/things_test/gain").await, json!(1.0));
    let aside: Vec<String> = std::fs::read_dir(&thing_folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("settings.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt file is kept aside");
    let kept = std::fs::read(thing_folder.join(&aside[0])).unwrap();
    assert_eq!(kept, b"{\"gain\": 4.5", "byte for byte");
    // A new write makes a fresh, valid file.
    assert_eq!(
        served.put("/things_test/gain", json!(3.0)).await.status(),
        204
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(thing_folder.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(saved, json!({"gain": 3.0}));
}

#[tokio::test]
async fn saved_values_that_no_longer_fit_keep_their_default_and_the_file_is_copied_aside() {
    let folder = tempfile::tempdir().unwrap();
    let thing_folder = folder.path().join("things_test");
    std::fs::create_dir_all(&thing_folder).unwrap();
    std::fs::write(
        thing_folder.join("settings.json"),
        br#"{"gain": 99.0, "retired_setting": "kept"}"#,
    )
    .unwrap();
    let server = crate::support::builder()
        .settings_folder(folder.path())
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let served = Served::start(server).await;
    assert_eq!(served.value("/things_test/gain").await, json!(1.0));
    let copies = std::fs::read_dir(&thing_folder)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("settings.json.rejected-")
        })
        .count();
    assert_eq!(copies, 1);
    assert_eq!(
        served.put("/things_test/gain", json!(2.0)).await.status(),
        204
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(thing_folder.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved,
        json!({"retired_setting": "kept", "gain": 2.0}),
        "unknown keys are kept"
    );
}

#[test]
fn thing_names_are_checked() {
    let build = |name: &str| {
        crate::support::builder()
            .add_thing(name, Everything::new())
            .build()
    };
    for bad in [
        "",
        "has space",
        "a/b",
        "ümlaut",
        "things",
        "docs",
        "openapi.json",
    ] {
        assert!(
            matches!(build(bad), Err(ServerError::InvalidName { .. })),
            "{bad:?} is refused"
        );
    }
    assert!(build("camera-2_b").is_ok());
    let twice = crate::support::builder()
        .add_thing("a", Everything::new())
        .add_thing("a", Everything::new())
        .build();
    assert!(matches!(twice, Err(ServerError::DuplicateName(name)) if name == "a"));
    let shared = Arc::new(Everything::new());
    let again = crate::support::builder()
        .add_thing("a", shared.clone())
        .add_thing("b", shared)
        .build();
    assert!(matches!(again, Err(ServerError::AlreadyAdded { .. })));
}

/// A stage whose `home` is both a property and an action: each macro sees only its own part,
/// so the server finds the clash when it is built.
#[derive(Thing)]
struct Clash {
    #[property]
    home: Property<bool>,
}

#[labthings::thing_actions]
impl Clash {
    async fn home(&self) {}
}

#[test]
fn two_affordances_with_one_name_are_refused_when_the_server_is_built() {
    let result = crate::support::builder()
        .add_thing(
            "stage",
            Clash {
                home: Property::new(false),
            },
        )
        .build();
    assert!(
        matches!(
            &result,
            Err(ServerError::DuplicateAffordance { thing, affordance })
                if thing == "stage" && affordance == "home"
        ),
        "{result:?}"
    );
}

/// A Thing described by hand, with a stream where the websocket is served.
struct HandMade {
    stream: MjpegStream,
}

impl Thing for HandMade {
    fn descriptor() -> labthings::thing::ThingDescriptor<Self> {
        let mut descriptor = labthings::thing::ThingDescriptor::new("Hand made");
        descriptor
            .streams
            .push(labthings::thing::StreamDescriptor::new(
                "ws",
                |thing: &Self| &thing.stream,
            ));
        descriptor
    }
}

#[test]
fn a_reserved_or_unusable_affordance_name_is_refused_when_the_server_is_built() {
    let result = crate::support::builder()
        .add_thing(
            "camera",
            HandMade {
                stream: MjpegStream::new(),
            },
        )
        .build();
    assert!(
        matches!(
            &result,
            Err(ServerError::InvalidAffordanceName { thing, affordance, .. })
                if thing == "camera" && affordance == "ws"
        ),
        "{result:?}"
    );
}

/// A Thing whose hardware may fail to open.
#[derive(Thing)]
#[thing(on_start = Self::open, on_stop = Self::close)]
struct Fragile {
    #[property]
    value: Property<i32>,
    fail: bool,
    started: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

impl Fragile {
    fn new(fail: bool) -> Self {
        Self {
            value: Property::new(1),
            fail,
            started: Arc::default(),
            stopped: Arc::default(),
        }
    }

    async fn open(&self) -> Result<(), std::io::Error> {
        if self.fail {
            return Err(std::io::Error::other("no camera on /dev/video0"));
        }
        self.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn close(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_failing_start_hook_stops_the_server_with_the_things_name() {
    let healthy = Arc::new(Fragile::new(false));
    let server = crate::support::builder()
        .add_thing("healthy", healthy.clone())
        .add_thing("broken", Fragile::new(true))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = server
        .serve_with(listener, std::future::pending())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("broken") && message.contains("/dev/video0"),
        "{message}"
    );
    assert!(
        healthy.stopped.load(Ordering::SeqCst),
        "Things already started are stopped"
    );
}

#[tokio::test]
async fn start_runs_before_serving_and_stop_at_shutdown_ending_streams() {
    let fragile = Arc::new(Fragile::new(false));
    let everything = Arc::new(Everything::new());
    everything
        .camera
        .add_frame([0xFF, 0xD8, 0xFF, 0xD9])
        .unwrap();
    let server = crate::support::builder()
        .add_thing("fragile", fragile.clone())
        .add_thing("things_test", everything.clone())
        .build()
        .unwrap();
    let served = Served::start(server).await;
    assert_eq!(served.value("/fragile/value").await, json!(1));
    assert!(fragile.started.load(Ordering::SeqCst));
    let mut viewer = served.get("/things_test/camera").await;
    assert!(viewer.chunk().await.unwrap().is_some());
    eventually(|| everything.camera.viewers() == 1).await;
    let (stop, task) = (served.stop, served.task);
    let _ = stop.send(());
    // The stream ends cleanly, so the server can finish.
    while viewer.chunk().await.unwrap().is_some() {}
    task.await.unwrap().unwrap();
    assert!(fragile.stopped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let server = crate::support::builder()
        .allow_origins(["http://lab-ui.local:8080"])
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let served = Served::start(server).await;
    let preflight = |origin: &'static str| {
        served
            .client
            .request(reqwest::Method::OPTIONS, served.url("/things_test/number"))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("http://lab-ui.local:8080").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://lab-ui.local:8080"
    );
    assert!(
        allowed
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let other = preflight("http://elsewhere.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let bad = crate::support::builder().allow_origins(["*"]).build();
    assert!(matches!(bad, Err(ServerError::InvalidOrigin(origin)) if origin == "*"));
    let bad = crate::support::builder()
        .allow_origins(["lab-ui.local"])
        .build();
    assert!(matches!(bad, Err(ServerError::InvalidOrigin(_))));
}

#[tokio::test]
async fn without_cors_other_origins_get_no_access_headers() {
    let (served, _) = everything().await;
    let response = served
        .client
        .get(served.url("/things_test/number"))
        .header("origin", "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn the_web_ui_is_served_from_the_binary_at_the_root_and_under_a_prefix() {
    let (served, _) = everything().await;
    let page = served.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="static/app.js""#), "{html}");
    for (asset, media_type) in [
        ("/static/app.js", "text/javascript"),
        ("/static/style.css", "text/css"),
    ] {
        let response = served.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(media_type)
        );
    }

    let server = crate::support::builder()
        .api_prefix("/api")
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let prefixed = Served::start(server).await;
    let response = prefixed.get("/api/").await;
    assert_eq!(
        response.status(),
        200,
        "the UI is at the prefix with a slash"
    );
    assert_eq!(prefixed.get("/api/static/app.js").await.status(), 200);
}

#[tokio::test]
async fn a_users_own_folders_serve_instead_of_or_beside_the_ui() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(folder.path().join("ui/static")).unwrap();
    std::fs::write(
        folder.path().join("ui/index.html"),
        "<h1>My microscope</h1>",
    )
    .unwrap();
    std::fs::write(
        folder.path().join("ui/static/app.js"),
        "console.log('mine')",
    )
    .unwrap();
    std::fs::create_dir_all(folder.path().join("data")).unwrap();
    std::fs::write(folder.path().join("data/notes.txt"), "calibrated").unwrap();
    let server = crate::support::builder()
        .ui(labthings::server::Ui::Folder(folder.path().join("ui")))
        .serve_folders([("/data", folder.path().join("data"))])
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let served = Served::start(server).await;
    assert_eq!(
        served.get("/").await.text().await.unwrap(),
        "<h1>My microscope</h1>"
    );
    assert_eq!(
        served.get("/static/app.js").await.text().await.unwrap(),
        "console.log('mine')"
    );
    assert_eq!(
        served.get("/data/notes.txt").await.text().await.unwrap(),
        "calibrated"
    );
    problem(served.get("/data/missing.txt").await, 404).await;

    // Symbolic links: one staying inside the folder works; one leading out of it (to a file,
    // or a folder) is as good as missing, percent-encoded or not.
    std::fs::write(folder.path().join("secret.txt"), "private").unwrap();
    let data = folder.path().join("data");
    std::os::unix::fs::symlink(data.join("notes.txt"), data.join("inside.txt")).unwrap();
    std::os::unix::fs::symlink(folder.path().join("secret.txt"), data.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(folder.path(), data.join("up")).unwrap();
    assert_eq!(
        served.get("/data/inside.txt").await.text().await.unwrap(),
        "calibrated"
    );
    for path in ["/data/leak.txt", "/data/up/secret.txt", "/data/%6Ceak.txt"] {
        let response = served.get(path).await;
        let body = problem(response, 404).await;
        assert!(!body.to_string().contains("private"), "{path}");
    }

    let server = crate::support::builder()
        .ui(labthings::server::Ui::None)
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let api_only = Served::start(server).await;
    problem(api_only.get("/").await, 404).await;
}

/// A write the settings file cannot take (issue 19, point 11): the value is in use, and the
/// answer says it was not saved, naming the file and the system's error; a final save that
/// fails makes the server's end an error (the process exits non-zero).
#[tokio::test]
async fn a_setting_that_cannot_be_saved_says_so_and_so_does_shutdown() {
    let folder = tempfile::tempdir().unwrap();
    let server = crate::support::builder()
        .settings_folder(folder.path())
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    let served = Served::start(server).await;
    // Where the Thing's folder should be, a file: nothing can be written under it.
    std::fs::write(folder.path().join("things_test"), b"in the way").unwrap();
    let response = served.put("/things_test/gain", json!(4.5)).await;
    let body = problem(response, 507).await;
    assert_eq!(body["title"], "Setting not saved");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("`gain`") && detail.contains("settings.json"),
        "{detail}"
    );
    assert!(detail.contains("lost at restart"), "{detail}");
    assert_eq!(
        served.value("/things_test/gain").await,
        json!(4.5),
        "in use"
    );
    let error = served.shutdown().await.unwrap_err();
    assert!(matches!(error, ServerError::SettingsNotSaved(_)), "{error}");
}

#[test]
fn unusable_settings_are_errors_at_start_not_hangs() {
    let folder = tempfile::tempdir().unwrap();
    // The settings folder is a file.
    let file = folder.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let error = crate::support::builder()
        .settings_folder(&file)
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap_err();
    assert!(matches!(error, ServerError::Settings { .. }), "{error}");
    assert!(error.to_string().contains("a-file"), "{error}");

    // The settings path is a FIFO, which a read would wait on forever.
    let thing_folder = folder.path().join("settings").join("things_test");
    std::fs::create_dir_all(&thing_folder).unwrap();
    let fifo = thing_folder.join("settings.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let settings = folder.path().join("settings");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = crate::support::builder()
            .settings_folder(settings)
            .add_thing("things_test", Everything::new())
            .build();
        let _ = sender.send(result.map(|_| ()).map_err(|e| e.to_string()));
    });
    let result = receiver
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("building hung on the FIFO");
    let error = result.unwrap_err();
    assert!(error.contains("not a regular file"), "{error}");
}

/// Saves interrupted by SIGKILL leave `.settings.json.<pid>.tmp` files: removed at start.
#[tokio::test]
async fn stale_temporary_files_of_interrupted_saves_are_removed_at_start() {
    let folder = tempfile::tempdir().unwrap();
    let thing_folder = folder.path().join("things_test");
    std::fs::create_dir_all(&thing_folder).unwrap();
    let stale = thing_folder.join(".settings.json.4242.tmp");
    std::fs::write(&stale, b"{\"gain\": 2").unwrap();
    let other = thing_folder.join("notes.txt");
    std::fs::write(&other, b"mine").unwrap();
    let server = crate::support::builder()
        .settings_folder(folder.path())
        .add_thing("things_test", Everything::new())
        .build()
        .unwrap();
    assert!(!stale.exists(), "the stale temporary file is gone");
    assert!(other.exists(), "nothing else is touched");
    drop(server);
}

/// A Thing whose properties are found at run time: one per channel it was made with.
#[derive(Thing)]
#[thing(instance_properties = Self::channel_properties)]
struct Mixer {
    /// A declared property beside the found ones.
    #[property]
    label: Property<String>,
    channels: Vec<(String, Property<i64>)>,
}

impl Mixer {
    fn new(names: &[&str]) -> Self {
        Self {
            label: Property::new("mixer".into()),
            channels: names
                .iter()
                .map(|name| ((*name).to_owned(), Property::new(0)))
                .collect(),
        }
    }

    fn channel_properties(&self) -> Vec<labthings::thing::PropertyDescriptor<Self>> {
        (0..self.channels.len())
            .map(|index| {
                let mut property = labthings::thing::PropertyDescriptor::dynamic(
                    self.channels[index].0.clone(),
                    || json!({"type": "integer"}),
                    move |mixer: &Self| &mixer.channels[index].1,
                );
                property.title = Some("A channel's level");
                property.constraints.minimum = Some(-10.0);
                property.constraints.maximum = Some(10.0);
                property
            })
            .collect()
    }
}

#[tokio::test]
async fn instance_properties_are_served_documented_and_validated() {
    let server = crate::support::builder()
        .add_thing("mixer", Mixer::new(&["left", "right"]))
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let base = format!("http://{address}/mixer");
    let http = reqwest::Client::new();
    let td = crate::support::json_of(http.get(format!("{base}/"))).await;
    crate::documents::assert_valid_td("mixer", &td);
    let names: Vec<&String> = td["properties"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["label", "left", "right"]);
    assert_eq!(td["properties"]["right"]["maximum"], 10);
    assert_eq!(td["properties"]["right"]["title"], "A channel's level");
    let put = http
        .put(format!("{base}/right"))
        .json(&7)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(
        crate::support::json_of(http.get(format!("{base}/right"))).await,
        7
    );
    assert_eq!(
        crate::support::json_of(http.get(format!("{base}/left"))).await,
        0
    );
    let too_loud = http
        .put(format!("{base}/left"))
        .json(&11)
        .send()
        .await
        .unwrap();
    let body = problem(too_loud, 422).await;
    assert_eq!(body["invalid-params"][0]["name"], "left", "{body}");
    let openapi = crate::support::json_of(http.get(format!("http://{address}/openapi.json"))).await;
    assert!(openapi["paths"]["/mixer/right"]["put"].is_object());
}

#[test]
fn an_instance_property_named_like_a_declared_one_is_refused() {
    let Err(error) = crate::support::builder()
        .add_thing("mixer", Mixer::new(&["label"]))
        .build()
    else {
        panic!("a duplicate name was accepted");
    };
    assert!(
        matches!(error, ServerError::DuplicateAffordance { ref affordance, .. } if affordance == "label"),
        "{error}"
    );
}
