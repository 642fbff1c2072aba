//! Property history (issue 30): bounded by construction at any rate of change, with increasing
//! server timestamps; served as JSON and CSV, in the TD and the OpenAPI document; set by the
//! attribute or the configuration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use labthings::property::HistoryOptions;
use labthings::{Property, Thing};
use serde_json::Value;

use crate::support::{json_of, spawn_thing_server};

/// A logger whose readings change as fast as a test makes them.
#[derive(Thing)]
struct Logger {
    /// A fast reading: its last two seconds.
    #[property(read_only, unit = "mV", history = "2 s")]
    reading: Property<f64>,
    /// The last 50 changes.
    #[property(read_only, history = 50)]
    counter: Property<u64>,
    /// At most one sample per 200 ms.
    #[property(history = 1000, history_interval = "200 ms")]
    slow: Property<u32>,
    /// A position, kept as columns in CSV.
    #[property(history = 10)]
    position: Property<[i64; 3]>,
    /// No history.
    #[property]
    plain: Property<u32>,
}

fn logger() -> Logger {
    Logger {
        reading: Property::new(0.0),
        counter: Property::new(0),
        slow: Property::new(0),
        position: Property::new([0, 0, 0]),
        plain: Property::new(0),
    }
}

fn timestamps(body: &Value) -> Vec<DateTime<Utc>> {
    body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| sample["timestamp"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_changing_a_thousand_times_a_second_keeps_a_bounded_increasing_history() {
    let thing = Arc::new(logger());
    let server = crate::support::builder()
        .add_thing("logger", thing.clone())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}/logger");
    let http = reqwest::Client::new();

    // 1,000 changes a second for 10 s, from a thread as an instrument's driver would.
    let writer = {
        let (reading, counter) = (thing.reading.clone(), thing.counter.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < Duration::from_secs(10) {
                n += 1;
                reading.publish(n as f64).unwrap();
                counter.publish(n).unwrap();
                // Paced at one change per millisecond of elapsed time.
                let due = start + Duration::from_millis(n);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            n
        })
    };
    let mut seen = 0;
    let mut longest = 0;
    while !writer.is_finished() {
        let body = json_of(http.get(format!("{base}/reading/history"))).await;
        let samples = body["samples"].as_array().unwrap();
        longest = longest.max(samples.len());
        assert!(samples.len() <= body["max_samples"].as_u64().unwrap() as usize);
        let times = timestamps(&body);
        assert!(times.windows(2).all(|w| w[0] < w[1]), "timestamps increase");
        // Nothing older than two seconds before the newest sample.
        let span = *times.last().unwrap() - times[0];
        assert!(span <= chrono::TimeDelta::seconds(2), "{span}");
        let counter = json_of(http.get(format!("{base}/counter/history"))).await;
        assert!(counter["samples"].as_array().unwrap().len() <= 50);
        seen += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let written = writer.join().unwrap();
    assert!(
        seen >= 10,
        "the history was read while it grew ({seen} times)"
    );
    assert!(written > 1000, "{written} changes");

    let body = json_of(http.get(format!("{base}/reading/history"))).await;
    assert_eq!(body["unit"], "mV");
    assert_eq!(body["max_age"], 2.0);
    let samples = body["samples"].as_array().unwrap();
    assert_eq!(
        samples.last().unwrap()["value"],
        Value::from(written as f64),
        "the newest value is the last sample"
    );
    assert!(
        longest > 100,
        "two seconds of changes were kept ({longest})"
    );
    let counter = json_of(http.get(format!("{base}/counter/history"))).await;
    let counts: Vec<u64> = counter["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, ((written - 49)..=written).collect::<Vec<_>>());

    // The same from Rust.
    assert_eq!(thing.counter.history().unwrap().len(), 50);
    assert!(thing.plain.history().is_none());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn changes_within_the_interval_are_merged_and_since_gives_only_newer_samples() {
    let thing = Arc::new(logger());
    let server = crate::support::builder()
        .add_thing("logger", thing.clone())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}/logger");
    let http = reqwest::Client::new();

    // 20 writes over HTTP in about 0.5 s: at most one sample per 200 ms, the newest kept.
    for value in 1..=20u32 {
        let response = http
            .put(format!("{base}/slow"))
            .json(&value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let body = json_of(http.get(format!("{base}/slow/history"))).await;
    let values: Vec<u64> = body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_u64().unwrap())
        .collect();
    assert!(values.len() <= 6, "{values:?}");
    assert_eq!(values[0], 0, "the history starts with the value served");
    assert_eq!(*values.last().unwrap(), 20, "{values:?}");
    assert!((body["min_interval"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    let times = timestamps(&body);
    assert!(
        times
            .windows(2)
            .rev()
            .skip(1)
            .all(|w| w[1] - w[0] >= chrono::TimeDelta::milliseconds(200)),
        "{times:?}"
    );

    // `since`: only what came after.
    let since = times[times.len() - 2].to_rfc3339();
    let newer = json_of(
        http.get(format!("{base}/slow/history"))
            .query(&[("since", &since)]),
    )
    .await;
    assert_eq!(newer["samples"].as_array().unwrap().len(), 1, "{newer}");

    // Bad queries name the parameter.
    let response = http
        .get(format!("{base}/slow/history?since=yesterday"))
        .send()
        .await
        .unwrap();
    let problem = crate::support::problem(response, 400).await;
    assert_eq!(problem["invalid-params"][0]["name"], "since", "{problem}");
    let response = http
        .get(format!("{base}/slow/history?format=xlsx"))
        .send()
        .await
        .unwrap();
    let problem = crate::support::problem(response, 400).await;
    assert_eq!(problem["invalid-params"][0]["name"], "format", "{problem}");

    // A property without history has no history route.
    let response = http
        .get(format!("{base}/plain/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_history_downloads_as_csv_with_a_column_per_number() {
    let thing = Arc::new(logger());
    let server = crate::support::builder()
        .add_thing("logger", thing.clone())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let base = format!("http://{address}/logger");
    let http = reqwest::Client::new();
    thing.position.publish([1, -2, 3]).unwrap();
    thing.position.publish([4, 5, -6]).unwrap();

    for request in [
        http.get(format!("{base}/position/history?format=csv")),
        http.get(format!("{base}/position/history"))
            .header("Accept", "text/csv"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/csv; charset=utf-8"
        );
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"logger_position_history.csv\""
        );
        let text = response.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "timestamp,position[0],position[1],position[2]");
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].ends_with(",0,0,0"), "{text}");
        assert!(lines[3].ends_with(",4,5,-6"), "{text}");
        let stamp = lines[3].split(',').next().unwrap();
        assert!(stamp.parse::<DateTime<Utc>>().is_ok(), "{stamp}");
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_history_is_in_the_td_and_the_openapi_document() {
    let server = crate::support::builder()
        .add_thing("logger", Arc::new(logger()))
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    let http = reqwest::Client::new();
    let td = json_of(http.get(format!("http://{address}/logger/"))).await;
    let links = td["links"].as_array().unwrap();
    let history: Vec<&Value> = links.iter().filter(|l| l["rel"] == "history").collect();
    assert_eq!(history.len(), 4, "{links:?}");
    let reading = history
        .iter()
        .find(|l| l["anchor"] == "logger/reading")
        .expect("a link anchored at the property");
    assert_eq!(reading["href"], "logger/reading/history");
    assert_eq!(reading["type"], "application/json");

    let api = json_of(http.get(format!("http://{address}/openapi.json"))).await;
    let get = &api["paths"]["/logger/reading/history"]["get"];
    assert_eq!(get["operationId"], "logger_reading_history");
    let ok = &get["responses"]["200"]["content"];
    assert_eq!(
        ok["application/json"]["schema"]["properties"]["samples"]["items"]["properties"]["value"]["type"],
        "number"
    );
    assert!(ok["text/csv"].is_object());
    assert!(
        !api.to_string().contains("#/$defs/"),
        "every reference resolves within the document"
    );
    assert!(api["paths"]["/logger/plain/history"].is_null());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_configuration_sets_a_history_and_names_what_it_does_not_know() {
    let thing = Arc::new(logger());
    let server = crate::support::builder()
        .history("logger", "plain", HistoryOptions::samples(3))
        .add_thing("logger", thing.clone())
        .build()
        .unwrap();
    for value in 1..=5 {
        thing.plain.publish(value).unwrap();
    }
    let kept: Vec<Value> = thing
        .plain
        .history()
        .unwrap()
        .into_iter()
        .map(|s| s.value)
        .collect();
    assert_eq!(kept, [Value::from(3), Value::from(4), Value::from(5)]);
    drop(server);

    let error = crate::support::builder()
        .history("logger", "plian", HistoryOptions::samples(3))
        .add_thing("logger", Arc::new(logger()))
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("no property \"plian\"; did you mean `plain`?"),
        "{error}"
    );
    let error = crate::support::builder()
        .history("loger", "plain", HistoryOptions::samples(3))
        .add_thing("logger", Arc::new(logger()))
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("\"loger\""), "{error}");

    // The file form: seconds, and unknown keys refused.
    let config = labthings::server::ServerConfig::from_json(
        r#"{"things": {}, "history": {"logger": {"plain": {"max_age": 60, "min_interval": 0.5}}}}"#,
    )
    .unwrap();
    let options = config.options.history["logger"]["plain"];
    assert_eq!(options.max_age, Some(Duration::from_secs(60)));
    assert_eq!(options.interval(), Duration::from_millis(500));
    let error = labthings::server::ServerConfig::from_json(
        r#"{"things": {}, "history": {"logger": {"plain": {"max_samples": 10, "max_ag": 60}}}}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("did you mean `max_age`"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_log_survives_a_sigkill_with_every_written_line_whole() {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let mut config: Value = serde_json::from_str(crate::example_things::MICROSCOPE_CONFIG).unwrap();
    config["data_folder"] = Value::from(data.to_str().unwrap());
    config["history"] = serde_json::json!({
        "camera": {"sensor_temperature": {"max_age": 600, "log": true}}
    });
    let path = folder.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut process = crate::support::MicroscopeProcess::start(&path).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", process.address);

    // The temperature changes ten times a second; the log is written once a second.
    let log = data.join("history/camera/sensor_temperature.csv");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count();
        if lines > 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the log grows ({lines} lines)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = json_of(http.get(format!("{base}/camera/sensor_temperature/history"))).await;
    assert_eq!(body["log"]["path"], "history/camera/sensor_temperature.csv");
    assert_eq!(body["log"]["error"], Value::Null);
    assert_eq!(body["log"]["dropped"], 0);

    // Killed at once, as by a power cut of the process (no shutdown, no flush).
    process.child.start_kill().unwrap();
    process.child.wait().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with("\r\n"), "the file ends at a line's end");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,sensor_temperature [°C]"));
    let mut previous: Option<DateTime<Utc>> = None;
    let mut count = 0;
    for line in lines {
        let (stamp, value) = line.split_once(',').expect("two fields");
        let stamp: DateTime<Utc> = stamp.parse().expect("an RFC 3339 timestamp");
        let value: f64 = value.parse().expect("a number");
        assert!((0.0..100.0).contains(&value), "{line}");
        assert!(previous.is_none_or(|p| p < stamp), "increasing: {line}");
        previous = Some(stamp);
        count += 1;
    }
    assert!(count >= 20, "{count} samples were flushed before the kill");
    // The JSON history said what was written; the file has at least that many lines.
    assert!(count as u64 >= body["log"]["written"].as_u64().unwrap());
}
