//! Actions over HTTP: the invocation lifecycle, inputs, outputs, cancellation and failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use labthings::{ActionContext, Blob, Cancelled, Property, Thing, thing_actions};
use serde_json::{Value, json};

use crate::support::{problem, spawn_thing_server};

/// A Thing whose actions exercise every path of the invocation model.
#[derive(Thing)]
pub struct Lab {
    #[property]
    pub counter: Property<i64>,
    active: AtomicUsize,
    most_active: AtomicUsize,
}

impl Lab {
    pub fn new() -> Self {
        Self {
            counter: Property::new(0),
            active: AtomicUsize::new(0),
            most_active: AtomicUsize::new(0),
        }
    }
}

#[thing_actions]
impl Lab {
    /// Add two numbers.
    fn add(&self, a: i64, b: Option<i64>) -> i64 {
        a + b.unwrap_or(2)
    }

    /// Zero, a falsy output.
    async fn zero(&self) -> i32 {
        0
    }

    /// The empty string, a falsy output.
    async fn empty(&self) -> String {
        String::new()
    }

    /// Waits, noticing cancellation.
    async fn cooperative(&self, ctx: ActionContext, seconds: f64) -> Result<(), Cancelled> {
        ctx.info("starting");
        ctx.sleep(Duration::from_secs_f64(seconds)).await?;
        Ok(())
    }

    /// Waits, ignoring cancellation.
    async fn stubborn(&self, seconds: f64) {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    }

    /// Fails.
    fn fail(&self) -> Result<(), String> {
        Err("deliberate failure".to_owned())
    }

    /// Panics.
    async fn explode(&self) -> i32 {
        panic!("the hardware exploded")
    }

    /// A tiny JPEG.
    async fn picture(&self) -> Blob {
        Blob::new(vec![0xFF, 0xD8, 0xFF, 0xD9], "image/jpeg")
    }

    /// Only one at a time.
    #[action(lock)]
    async fn exclusive(&self) -> usize {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_active.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.active.fetch_sub(1, Ordering::SeqCst);
        now
    }

    /// Increments the counter property.
    fn increment(&self, ctx: ActionContext) -> i64 {
        let value = self.counter.get() + 1;
        self.counter.publish(value).unwrap();
        ctx.info(format!("counter is now {value}"));
        value
    }

    /// Blocks its thread, and cannot be stopped: it takes no context.
    fn blocking_plain(&self, seconds: f64) -> f64 {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        seconds
    }

    /// Blocks its thread, checking for cancellation as it goes.
    fn blocking_checks(&self, ctx: ActionContext, seconds: f64) -> Result<f64, Cancelled> {
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        while Instant::now() < end {
            ctx.check()?;
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(seconds)
    }

    /// Not an action: a helper.
    #[action(skip)]
    fn helper(&self) -> i64 {
        41
    }
}

struct Served {
    address: std::net::SocketAddr,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    async fn start(builder: labthings::server::ThingServerBuilder) -> Self {
        let server = builder.add_thing("lab", Lab::new()).build().unwrap();
        let (address, stop, _task) = spawn_thing_server(server).await;
        Self {
            address,
            client: reqwest::Client::new(),
            _stop: stop,
        }
    }

    async fn default() -> Self {
        Self::start(crate::support::builder().cancellation_grace(Duration::from_millis(300))).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A path on this server, or a URL the server gave.
    fn resolve(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.url(path_or_url)
        }
    }

    async fn get(&self, path_or_url: impl AsRef<str>) -> reqwest::Response {
        let url = self.resolve(path_or_url.as_ref());
        self.client.get(url).send().await.unwrap()
    }

    async fn delete(&self, path_or_url: impl AsRef<str>) -> reqwest::Response {
        let url = self.resolve(path_or_url.as_ref());
        self.client.delete(url).send().await.unwrap()
    }

    /// GETs a server path (or a full URL) and parses the JSON body.
    async fn get_json(&self, path_or_url: &str) -> Value {
        self.get(path_or_url).await.json().await.unwrap()
    }

    async fn invoke(&self, action: &str, body: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url(&format!("/lab/{action}")));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        request.send().await.unwrap()
    }

    /// Invokes and returns the 201 body.
    async fn start_action(&self, action: &str, body: &str) -> Value {
        let response = self.invoke(action, Some(body)).await;
        assert_eq!(response.status(), 201, "POST {action}");
        response.json().await.unwrap()
    }

    /// Polls an invocation (as the Python client does) until it finishes.
    async fn finished(&self, invocation: &Value) -> Value {
        let href = invocation["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|link| link["rel"] == "self")
            .unwrap()["href"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now: Value = self.get_json(&href).await;
            if !["pending", "running"].contains(&now["status"].as_str().unwrap()) {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "still {} after 10 s",
                now["status"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn timestamp(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp"))
        .expect("RFC 3339 with a timezone")
}

#[tokio::test]
async fn an_invocation_goes_from_pending_to_completed_with_timestamps() {
    let served = Served::default().await;
    let response = served.invoke("add", Some(r#"{"a": 3, "b": 4}"#)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert!(["pending", "running"].contains(&created["status"].as_str().unwrap()));
    assert_eq!(created["action"], "/lab/add");
    assert_eq!(created["input"], json!({"a": 3, "b": 4}));
    assert_eq!(created["href"], location);
    assert_eq!(created["links"][1]["rel"], "output");
    assert!(created["timeCompleted"].is_null());

    let done = served.finished(&created).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], 7);
    assert!(done["error"].is_null());
    let (requested, started, completed) = (
        timestamp(&done["timeRequested"]),
        timestamp(&done["timeStarted"]),
        timestamp(&done["timeCompleted"]),
    );
    assert!(requested <= started && started <= completed);
    let output: Value = reqwest::get(format!("{location}/output"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(output, 7);
}

#[tokio::test]
async fn actions_without_arguments_take_an_empty_body_an_empty_object_or_null() {
    let served = Served::default().await;
    for body in [None, Some("{}"), Some("null"), Some("  ")] {
        let response = served.invoke("zero", body).await;
        assert_eq!(response.status(), 201, "{body:?}");
        // Recorded as no arguments, which fits the action's input schema (an object).
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["input"], json!({}), "{body:?}");
    }
}

#[tokio::test]
async fn falsy_outputs_are_outputs() {
    let served = Served::default().await;
    for (action, expected) in [("zero", json!(0)), ("empty", json!(""))] {
        let done = served
            .finished(&served.start_action(action, "{}").await)
            .await;
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"], expected);
        let output = served
            .get(format!("{}/output", done["href"].as_str().unwrap()))
            .await;
        assert_eq!(output.status(), 200);
        assert_eq!(output.json::<Value>().await.unwrap(), expected);
    }
}

#[tokio::test]
async fn wait_returns_the_finished_invocation_in_one_round_trip() {
    let served = Served::default().await;
    let response = served
        .client
        .post(served.url("/lab/add?wait=5"))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let done: Value = response.json().await.unwrap();
    assert_eq!(
        (done["status"].as_str(), done["output"].as_i64()),
        (Some("completed"), Some(3))
    );

    let response = served
        .client
        .post(served.url("/lab/zero"))
        .header("prefer", "wait=5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["preference-applied"], "wait=5");

    // Too slow to finish within the wait: 201 and still running.
    let response = served
        .client
        .post(served.url("/lab/cooperative?wait=0.1"))
        .json(&json!({"seconds": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body = problem(
        served
            .client
            .post(served.url("/lab/zero?wait=soon"))
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(body["invalid-params"][0]["name"], "wait");
}

#[tokio::test]
async fn bad_inputs_are_422_problems_naming_the_field() {
    let served = Served::default().await;
    for (body, field) in [
        (r#"{"b": 1}"#, "a"),
        (r#"{"a": "three"}"#, "a"),
        (r#"{"a": 1, "c": 2}"#, "c"),
        ("[1, 2]", "input"),
        ("7", "input"),
    ] {
        let body = problem(served.invoke("add", Some(body)).await, 422).await;
        assert_eq!(body["invalid-params"][0]["name"], field, "{body}");
    }
    let response = served
        .client
        .post(served.url("/lab/add"))
        .header("content-type", "text/plain")
        .body("a=1")
        .send()
        .await
        .unwrap();
    problem(response, 415).await;
    problem(served.invoke("add", Some("{\"a\": ")).await, 400).await;
    problem(served.invoke("helper", Some("{}")).await, 404).await;
    let listed: Value = served.get_json("/action_invocations").await;
    assert_eq!(listed, json!([]), "refused requests make no invocation");
}

#[tokio::test]
async fn a_cooperative_action_is_cancelled_promptly() {
    // A long grace period: an action that ends well before it noticed the cancellation itself.
    let served =
        Served::start(crate::support::builder().cancellation_grace(Duration::from_secs(120))).await;
    let started = served
        .start_action("cooperative", r#"{"seconds": 30}"#)
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cancelled_at = Instant::now();
    let response = served.delete(started["href"].as_str().unwrap()).await;
    assert_eq!(response.status(), 204);
    let done = served.finished(&started).await;
    // Far from the grace period, however loaded the machine.
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(60),
        "it waited for the grace period"
    );
    assert_eq!(done["status"], "cancelled");
    // labthings-fastapi's URI and title, which its Python client turns into
    // `InvocationCancelledError`.
    assert_eq!(
        done["error"]["type"],
        "https://labthings-fastapi.readthedocs.io/en/latest/autoapi/labthings_fastapi/exceptions/index.html#labthings_fastapi.exceptions.InvocationCancelledError"
    );
    assert_eq!(done["error"]["title"], "InvocationCancelledError");
    assert_eq!(done["log"][0]["message"], "starting");
    assert_eq!(done["log"][0]["levelname"], "INFO");
    assert!(timestamp(&done["timeCompleted"]) >= timestamp(&done["timeStarted"]));
}

#[tokio::test]
async fn an_action_that_ignores_cancellation_is_stopped_at_its_await_point() {
    let served = Served::default().await;
    let started = served.start_action("stubborn", r#"{"seconds": 30}"#).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // No output yet: a 409 with a hint to retry, not a 5xx (the server is not at fault).
    let early = served
        .get(format!("{}/output", started["href"].as_str().unwrap()))
        .await;
    assert_eq!(early.headers()["retry-after"], "1");
    let early = problem(early, 409).await;
    assert!(
        early["detail"]
            .as_str()
            .unwrap()
            .contains("has not finished"),
        "{early}"
    );
    let response = served.delete(started["href"].as_str().unwrap()).await;
    assert_eq!(response.status(), 204);
    let done = served.finished(&started).await;
    assert_eq!(done["status"], "cancelled");
    assert!(
        done["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
    // Cancelling again, or something unknown, is a clear error.
    let again = served.delete(started["href"].as_str().unwrap()).await;
    problem(again, 409).await;
    let unknown = served
        .delete(served.url("/action_invocations/00000000-0000-4000-8000-000000000000"))
        .await;
    problem(unknown, 404).await;
}

#[tokio::test]
async fn errors_and_panics_end_as_error_and_the_server_keeps_serving() {
    let served = Served::default().await;
    let failed = served
        .finished(&served.start_action("fail", "{}").await)
        .await;
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["error"]["detail"], "deliberate failure");
    assert_eq!(
        failed["error"]["title"], "ActionError",
        "not the type `String`"
    );
    let last_log = failed["log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last_log["levelname"], "ERROR");
    let output = served
        .get(format!("{}/output", failed["href"].as_str().unwrap()))
        .await;
    problem(output, 409).await;

    let exploded = served
        .finished(&served.start_action("explode", "{}").await)
        .await;
    assert_eq!(exploded["status"], "error");
    assert!(
        exploded["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("the hardware exploded")
    );

    let response = served.get(served.url("/lab/counter")).await;
    assert_eq!(response.status(), 200, "still serving");
    let done = served
        .finished(&served.start_action("increment", "{}").await)
        .await;
    assert_eq!(done["output"], 1);
    assert_eq!(done["log"][0]["message"], "counter is now 1");
}

#[tokio::test]
async fn finished_invocations_expire_after_the_retention_time() {
    let served =
        Served::start(crate::support::builder().invocation_retention(Duration::from_secs(2))).await;
    let done = served
        .finished(&served.start_action("zero", "{}").await)
        .await;
    let href = done["href"].as_str().unwrap().to_owned();
    assert_eq!(served.get(&href).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    problem(served.get(&href).await, 404).await;
    let listed: Value = served.get_json("/lab/zero").await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn a_blob_output_round_trips() {
    let served = Served::default().await;
    let done = served
        .finished(&served.start_action("picture", "{}").await)
        .await;
    assert_eq!(done["output"]["media_type"], "image/jpeg");
    assert_eq!(done["output"]["rel"], "output");
    let blob = served.get(done["output"]["href"].as_str().unwrap()).await;
    assert_eq!(blob.status(), 200);
    assert_eq!(blob.headers()["content-type"], "image/jpeg");
    assert_eq!(&blob.bytes().await.unwrap()[..], &[0xFF, 0xD8, 0xFF, 0xD9]);
    let output = served
        .get(format!("{}/output", done["href"].as_str().unwrap()))
        .await;
    assert_eq!(output.headers()["content-type"], "image/jpeg");
    problem(served.get(served.url("/blob/nope")).await, 404).await;
}

#[tokio::test]
async fn locked_actions_run_one_at_a_time_and_invocations_are_listed() {
    let served = Served::default().await;
    let first = served.start_action("exclusive", "{}").await;
    let second = served.start_action("exclusive", "{}").await;
    let (first, second) = (
        served.finished(&first).await,
        served.finished(&second).await,
    );
    assert_eq!(
        (first["output"].as_u64(), second["output"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        timestamp(&second["timeStarted"]) >= timestamp(&first["timeCompleted"]),
        "queued"
    );

    let of_action: Value = served.get_json("/lab/exclusive").await;
    assert_eq!(of_action.as_array().unwrap().len(), 2);
    assert_eq!(of_action[0]["id"], first["id"], "oldest first");
    let all: Value = served.get_json("/action_invocations").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[test]
fn a_thing_with_actions_describes_them() {
    let descriptor = <Lab as Thing>::descriptor();
    let names: Vec<&str> = descriptor.actions.iter().map(|a| a.name).collect();
    assert_eq!(
        names,
        [
            "add",
            "zero",
            "empty",
            "cooperative",
            "stubborn",
            "fail",
            "explode",
            "picture",
            "exclusive",
            "increment",
            "blocking_plain",
            "blocking_checks"
        ]
    );
    let add = &descriptor.actions[0];
    let input = (add.input_schema)();
    assert_eq!(input["additionalProperties"], false);
    assert_eq!(input["required"], json!(["a"]));
    assert_eq!(add.title, Some("Add two numbers"));
    assert_eq!(descriptor.actions[8].lock, Some("exclusive"));
    assert_eq!(Arc::new(Lab::new()).helper(), 41);
}

/// The one-call form (`POST /{thing}/{action}/run`, the TD's second `invokeaction` form):
/// the output itself once the action finishes, for clients that cannot poll.
#[tokio::test]
async fn run_answers_with_the_output_once_the_action_finishes() {
    let served = Served::default().await;
    let response = served.invoke("add/run", Some(r#"{"a": 40}"#)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!(42));

    // A blob output is its bytes, with its media type.
    let response = served.invoke("picture/run", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        [0xFF, 0xD8, 0xFF, 0xD9]
    );

    // The invocation is kept like any other.
    let listed = served.get_json("/lab/add").await;
    assert_eq!(listed[0]["output"], 42);
    assert_eq!(listed[0]["input"], json!({"a": 40}));
}

#[tokio::test]
async fn run_answers_a_failed_action_with_its_problem_and_bad_input_with_422() {
    let served = Served::default().await;
    let response = served.invoke("fail/run", None).await;
    assert_eq!(
        response.status(),
        409,
        "a failed action is not a server error"
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["detail"], "deliberate failure");
    let invocation = served.get_json(&location).await;
    assert_eq!(invocation["status"], "error");

    let response = served.invoke("add/run", Some(r#"{"a": "one"}"#)).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["invalid-params"][0]["name"], "a");
}

#[tokio::test]
async fn run_answers_the_invocation_when_the_wait_ends_first() {
    let served = Served::default().await;
    let response = served
        .invoke("cooperative/run?wait=0.05", Some(r#"{"seconds": 30}"#))
        .await;
    assert_eq!(response.status(), 201);
    let invocation: Value = response.json().await.unwrap();
    assert_eq!(invocation["status"], "running");
    let cancelled = served.delete(invocation["href"].as_str().unwrap()).await;
    assert_eq!(cancelled.status(), 204);
}

/// `GET /action_invocations` and `GET /{thing}/{action}` list a page at a time (issue 19,
/// point 15): the LabThings JSON array, at most `limit`, and a `Link` to the next page.
#[tokio::test]
async fn invocation_lists_come_a_page_at_a_time() {
    let served = Served::default().await;
    for n in 0..7 {
        let response = served
            .invoke("add?wait=5", Some(&format!(r#"{{"a": {n}}}"#)))
            .await;
        assert_eq!(response.status(), 200);
    }
    served.invoke("zero?wait=5", None).await;
    let mut outputs = Vec::new();
    let mut next = Some(served.url("/lab/add?limit=3"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        let response = served.get(&url).await;
        assert_eq!(response.status(), 200);
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with(r#">; rel="next""#), "{link}");
            link[1..link.find('>').unwrap()].to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 3);
        outputs.extend(
            page.iter()
                .map(|invocation| invocation["output"].as_i64().unwrap()),
        );
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(
        outputs,
        [2, 3, 4, 5, 6, 7, 8],
        "every invocation once, oldest first"
    );

    // All actions: the default page holds them all; bad parameters are a 400 naming them.
    let all = served.get("/action_invocations").await;
    assert!(all.headers().get("link").is_none());
    assert_eq!(all.json::<Vec<Value>>().await.unwrap().len(), 8);
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("after=x", "after"),
    ] {
        let body = crate::support::problem(
            served.get(format!("/action_invocations?{query}")).await,
            400,
        )
        .await;
        assert_eq!(body["invalid-params"][0]["name"], name, "{query}");
    }
}

/// Cancelling tells the truth (issue 15, point 4): a blocking action that takes no context
/// cannot be stopped, says so (409), and its TD offers no `cancelaction`; one that checks its
/// context stops and ends `cancelled`.
#[tokio::test]
async fn only_actions_that_can_stop_are_cancelled() {
    let served = Served::default().await;
    let td = served.get_json("/lab/").await;
    let ops = |action: &str| -> Vec<String> {
        td["actions"][action]["forms"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|form| form["op"].as_array().unwrap().clone())
            .map(|op| op.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!ops("blocking_plain").contains(&"cancelaction".to_owned()));
    assert!(ops("blocking_checks").contains(&"cancelaction".to_owned()));
    assert!(
        ops("stubborn").contains(&"cancelaction".to_owned()),
        "async: always"
    );

    let plain = served
        .start_action("blocking_plain", r#"{"seconds": 2}"#)
        .await;
    let href = plain["href"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while served.get_json(href).await["status"] != "running" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = crate::support::problem(served.delete(href).await, 409).await;
    assert_eq!(refused["title"], "Not cancellable");
    let done = served.finished(&plain).await;
    assert_eq!(
        done["status"], "completed",
        "it ran to its end, as the 409 said"
    );

    let checks = served
        .start_action("blocking_checks", r#"{"seconds": 600}"#)
        .await;
    let started = Instant::now();
    let href = checks["href"].as_str().unwrap();
    assert_eq!(served.delete(href).await.status(), 204);
    let done = served.finished(&checks).await;
    assert_eq!(done["status"], "cancelled");
    // Far from the 600 s it would have run, however loaded the machine.
    assert!(started.elapsed() < Duration::from_secs(120));
}
