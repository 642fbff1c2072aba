//! `stop_all`: every Thing with actions has it; one call stops every unfinished invocation of
//! that Thing (running or waiting for its lock), and no other Thing's.

use serde_json::{Value, json};
use std::sync::Arc;

use crate::example_things as things;
use crate::support::spawn_thing_server;

async fn status(http: &reqwest::Client, base: &str, invocation: &Value) -> String {
    let href = invocation["href"].as_str().unwrap();
    let url = reqwest::Url::parse(&format!("{base}/"))
        .unwrap()
        .join(href)
        .unwrap();
    let now: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    now["status"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_stops_every_invocation_of_its_thing_and_no_other_things() {
    let server = crate::support::builder()
        .add_thing("stage_a", Arc::new(things::Stage::new()))
        .add_thing("stage_b", Arc::new(things::Stage::new()))
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let invoke = |path: &'static str| {
        let request = http.post(format!("{base}/{path}")).json(&json!({})).send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), 201, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };

    // Stage A homes (about 2 s) with a second homing queued behind it (they share a lock);
    // stage B homes too.
    let running = invoke("stage_a/home").await;
    let waiting = invoke("stage_a/home").await;
    let other = invoke("stage_b/home").await;
    crate::support::eventually_async(|| async {
        status(&http, &base, &running).await == "running"
            && status(&http, &base, &other).await == "running"
    })
    .await;
    assert_eq!(status(&http, &base, &waiting).await, "pending");

    // The one-call form: the output lists what it stopped.
    let response = http
        .post(format!("{base}/stage_a/stop_all/run"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let output: Value = response.json().await.unwrap();
    let mut stopped: Vec<&str> = output["cancelled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    stopped.sort_unstable();
    let mut expected = [
        running["id"].as_str().unwrap(),
        waiting["id"].as_str().unwrap(),
    ];
    expected.sort_unstable();
    assert_eq!(stopped, expected, "{output}");
    assert_eq!(output["not_cancellable"], json!([]));

    // Both of stage A's end as cancelled, long before a homing would have finished; stage B
    // goes on and completes.
    crate::support::eventually_async(|| async {
        status(&http, &base, &running).await == "cancelled"
            && status(&http, &base, &waiting).await == "cancelled"
    })
    .await;
    assert_eq!(status(&http, &base, &other).await, "running");
    crate::support::eventually_async(|| async {
        status(&http, &base, &other).await == "completed"
    })
    .await;

    // Nothing to stop: an empty list, not an error.
    let response = http
        .post(format!("{base}/stage_a/stop_all/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"cancelled": [], "not_cancellable": []})
    );
    // It takes no arguments.
    let response = http
        .post(format!("{base}/stage_a/stop_all"))
        .json(&json!({"now": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);

    // It is in the Thing Description, titled for people.
    let td: Value = http
        .get(format!("{base}/stage_a/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(td["actions"]["stop_all"]["title"], "Stop everything");
    assert_eq!(
        td["actions"]["stop_all"]["forms"][0]["href"],
        "stage_a/stop_all"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_thing_without_actions_has_no_stop_all() {
    use labthings::{Property, Thing};

    /// A thermometer: properties only.
    #[derive(Thing)]
    struct Thermometer {
        /// Degrees Celsius.
        #[property(read_only, unit = "°C")]
        temperature: Property<f64>,
    }
    let thermometer = Thermometer {
        temperature: Property::new(21.5),
    };
    let server = crate::support::builder()
        .add_thing("thermometer", Arc::new(thermometer))
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let td: Value = reqwest::get(format!("http://{address}/thermometer/"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(td["properties"]["temperature"].is_object());
    assert!(td["actions"].get("stop_all").is_none(), "{td}");
    let response = reqwest::Client::new()
        .post(format!("http://{address}/thermometer/stop_all"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
