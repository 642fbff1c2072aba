//! Health (issue 30): a watched worker that panics or stops its heartbeat faults its Thing,
//! said in the `state` property and the `fault` event; actions that refuse while faulted get
//! 409 until `clear_fault`; the TD and the UI's header show it.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use labthings::health::Health;
use labthings::{Property, Thing, thing_actions};
use serde_json::{Value, json};

use crate::events::SseReader;
use crate::support::{json_of, spawn_thing_server};

/// An oven whose driver thread does what the test tells it.
#[derive(Thing)]
struct Oven {
    /// Set point.
    #[property(unit = "°C")]
    set_point: Property<f64>,
    /// Whether the oven is OK.
    #[health]
    health: Health,
}

#[thing_actions]
impl Oven {
    /// Heat to the set point: refused while faulted.
    #[action(refuse_while_faulted)]
    async fn heat(&self) -> Result<f64, String> {
        Ok(self.set_point.get())
    }

    /// Read the log: allowed while faulted.
    async fn read_log(&self) -> Result<String, String> {
        Ok("quiet".into())
    }
}

/// What the driver thread is told.
enum Order {
    Panic,
    StopBeating,
}

/// Starts a watched driver with a 300 ms heartbeat; returns where to send orders.
fn driver(health: &Health) -> mpsc::Sender<Order> {
    let (orders, received) = mpsc::channel();
    health
        .spawn_with_heartbeat("oven-driver", Duration::from_millis(300), move |beat| {
            loop {
                beat.beat();
                match received.recv_timeout(Duration::from_millis(20)) {
                    Ok(Order::Panic) => panic!("thermocouple open circuit"),
                    Ok(Order::StopBeating) => {
                        // Hangs (as a driver stuck in a read would), then leaves.
                        std::thread::sleep(Duration::from_secs(2));
                        return;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .unwrap();
    orders
}

fn oven() -> Arc<Oven> {
    Arc::new(Oven {
        set_point: Property::new(150.0),
        health: Health::new(),
    })
}

async fn state(http: &reqwest::Client, base: &str) -> Value {
    json_of(http.get(format!("{base}/oven/state"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_faults_the_thing_and_refused_actions_get_409_until_cleared() {
    let oven = oven();
    let server = crate::support::builder()
        .add_thing("oven", oven.clone())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let orders = driver(&oven.health);
    assert_eq!(state(&http, &base).await["state"], "ok");
    let mut events = SseReader::open(address, "/oven/fault", None).await;

    // The driver panics: faulted, with the panic's message, within a second.
    let panicked = Instant::now();
    orders.send(Order::Panic).unwrap();
    let status = loop {
        let status = state(&http, &base).await;
        if status["state"] == "faulted" {
            break status;
        }
        assert!(
            panicked.elapsed() < Duration::from_secs(1),
            "not faulted within a second: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status["reason"],
        "worker `oven-driver` panicked: thermocouple open circuit"
    );
    let since: chrono::DateTime<chrono::Utc> = status["since"].as_str().unwrap().parse().unwrap();
    assert!((chrono::Utc::now() - since).num_seconds().abs() < 5);
    let fault = events.next().await;
    assert_eq!(
        fault.data,
        json!({"reason": "worker `oven-driver` panicked: thermocouple open circuit",
               "source": "oven-driver"})
    );

    // A refusing action gets 409 naming the fault; the others still run.
    let response = http.post(format!("{base}/oven/heat")).send().await.unwrap();
    let problem = crate::support::problem(response, 409).await;
    assert_eq!(problem["title"], "Instrument faulted");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("thermocouple open circuit"), "{detail}");
    assert!(detail.contains("oven/clear_fault"), "{detail}");
    let response = http
        .post(format!("{base}/oven/heat/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409, "the one-call form is refused too");
    let response = http
        .post(format!("{base}/oven/read_log/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Cleared: OK again, and the refused action runs.
    let response = http
        .post(format!("{base}/oven/clear_fault/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cleared: Value = response.json().await.unwrap();
    assert_eq!(cleared["state"], "ok", "{cleared}");
    assert_eq!(cleared["reason"], Value::Null);
    assert_eq!(state(&http, &base).await["state"], "ok");
    let response = http
        .post(format!("{base}/oven/heat/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<f64>().await.unwrap(), 150.0);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_heartbeat_is_detected_and_the_state_is_observed_over_sse() {
    let oven = oven();
    let server = crate::support::builder()
        .add_thing("oven", oven.clone())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let orders = driver(&oven.health);
    let mut observed = SseReader::open(address, "/oven/state/observe", None).await;
    assert_eq!(observed.next().await.data["state"], "ok", "the value now");

    // Busy and back, from the driver's side of the API.
    oven.health.set_busy("heating to 150 °C");
    let busy = observed.next().await.data;
    assert_eq!(busy["state"], "busy");
    assert_eq!(busy["reason"], "heating to 150 °C");
    oven.health.set_ok();
    assert_eq!(observed.next().await.data["state"], "ok");

    // The driver hangs: its heartbeat (300 ms) stops, and the watch says so.
    orders.send(Order::StopBeating).unwrap();
    let faulted = observed.next().await.data;
    assert_eq!(faulted["state"], "faulted", "{faulted}");
    let reason = faulted["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("`oven-driver` has not reported for"),
        "{reason}"
    );
    assert!(reason.contains("allows 0.3 s"), "{reason}");
    // A fault is latched: the driver saying OK does not end it.
    oven.health.set_ok();
    assert_eq!(state(&http, &base).await["state"], "faulted");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_td_has_the_state_the_fault_event_and_clear_fault() {
    let server = crate::support::builder()
        .add_thing("oven", oven())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let http = reqwest::Client::new();
    let td = json_of(http.get(format!("http://{address}/oven/"))).await;
    let state = &td["properties"]["state"];
    assert_eq!(state["readOnly"], true);
    assert_eq!(state["observable"], true);
    let states: Vec<&Value> = state["properties"]["state"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|one| &one["const"])
        .collect();
    assert_eq!(
        states,
        [
            &json!("ok"),
            &json!("busy"),
            &json!("faulted"),
            &json!("disconnected")
        ],
        "{state}"
    );
    assert!(td["events"]["fault"]["data"]["properties"]["reason"].is_object());
    assert_eq!(td["actions"]["clear_fault"]["title"], "Clear the fault");
    let api = json_of(http.get(format!("http://{address}/openapi.json"))).await;
    assert!(
        api["paths"]["/oven/heat"]["post"]["responses"]["409"].is_object(),
        "the 409 is documented"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// An action that refuses while faulted, on a Thing without `#[health]`.
#[derive(Thing)]
struct NoHealth {}

#[thing_actions]
impl NoHealth {
    /// Refuses while faulted, but nothing can say so.
    #[action(refuse_while_faulted)]
    async fn go(&self) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn refusing_while_faulted_without_a_health_is_refused_at_build() {
    let error = crate::support::builder()
        .add_thing("plain", Arc::new(NoHealth {}))
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("\"go\""), "{error}");
    assert!(error.contains("no `#[health]`"), "{error}");
}
