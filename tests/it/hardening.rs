//! Operating the server: request logs, metrics, limits, access control, crash safety.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use labthings::client::{MjpegClient, Reconnect};
use serde_json::json;

use crate::example_things as things;
use crate::support::spawn_thing_server;

/// Log lines written while the guard lives, on this thread (tests here run on a
/// current-thread runtime, so that is every task of the server).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("labthings=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

async fn microscope() -> SocketAddr {
    let config = labthings::ServerConfig::from_json(things::MICROSCOPE_CONFIG).unwrap();
    let server = things::registry()
        .builder(&config)
        .unwrap()
        .build()
        .unwrap();
    let (address, stop, _task) = spawn_thing_server(server).await;
    std::mem::forget(stop);
    address
}

/// The value of one sample line of a Prometheus text exposition.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn requests_and_stream_viewers_are_logged_and_counted_in_metrics() {
    let (logs, _guard) = Captured::start();
    let address = microscope().await;
    let base = format!("http://{address}");

    let mut viewer = MjpegClient::builder(format!("{base}/camera/mjpeg_stream"))
        .reconnect(Reconnect::never())
        .connect();
    for _ in 0..3 {
        viewer.next_frame().await.unwrap().unwrap();
    }
    let http = reqwest::Client::new();
    let moved = http
        .post(format!("{base}/stage/move_relative?wait=10"))
        .json(&json!({"x": 1, "y": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let missing = http.get(format!("{base}/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    // Every line is a comment or `name{labels} value`.
    let line =
        regex_lite::Regex::new(r#"^[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? [0-9.e+-]+$"#).unwrap();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.is_match(l), "not a Prometheus sample: {l}");
    }
    assert_eq!(
        sample(
            &text,
            r#"labthings_http_requests_total{method="GET",status="404"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"labthings_http_requests_total{method="POST",status="200"}"#
        ),
        1.0
    );
    let stream = r#"{thing="camera",stream="mjpeg_stream"}"#;
    assert_eq!(
        sample(&text, &format!("labthings_stream_viewers{stream}")),
        1.0
    );
    assert!(
        sample(
            &text,
            &format!("labthings_stream_frames_sent_total{stream}")
        ) >= 3.0
    );
    assert!(
        sample(
            &text,
            &format!("labthings_stream_frames_added_total{stream}")
        ) >= 3.0
    );
    sample(
        &text,
        &format!("labthings_stream_frames_dropped_total{stream}"),
    );
    assert_eq!(
        sample(&text, r#"labthings_invocations{status="completed"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"labthings_invocations{status="running"}"#),
        0.0
    );
    assert_eq!(sample(&text, "labthings_invocations_started_total"), 1.0);

    drop(viewer);
    crate::support::eventually(|| logs.text().contains("stream viewer disconnected")).await;
    let logs = logs.text();
    let request = logs
        .lines()
        .find(|l| l.contains("request") && l.contains("path=/nothing"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        request.contains("method=GET") && request.contains("status=404"),
        "{request}"
    );
    assert!(request.contains("latency_ms="), "{request}");
    let connected = logs
        .lines()
        .find(|l| l.contains("stream viewer connected"))
        .unwrap();
    assert!(
        connected.contains("stream=/camera/mjpeg_stream"),
        "{connected}"
    );
    let disconnected = logs
        .lines()
        .find(|l| l.contains("stream viewer disconnected"))
        .unwrap();
    assert!(
        disconnected.contains("frames_sent=") && disconnected.contains("frames_skipped="),
        "{disconnected}"
    );
}
