//! Load and faults against the microscope example's binary, in its own process so that its
//! file descriptors, tasks and memory are measured alone: thousands of viewers and websockets
//! coming and going, and a graceful shutdown in the middle of everything.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use labthings::client::{MjpegClient, Reconnect};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{MicroscopeProcess, metrics_text, sample, sum_of};

/// What the server reports about itself in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Usage {
    fds: f64,
    tasks: f64,
    resident_mib: f64,
    viewers: f64,
    websockets: f64,
}

async fn usage(http: &reqwest::Client, base: &str) -> Usage {
    let text = metrics_text(http, base).await;
    // `sample` fails on a missing series, so none of these can read as a silent 0.
    assert!(text.contains("labthings_stream_viewers{"), "{text}");
    Usage {
        fds: sample(&text, "process_open_fds"),
        tasks: sample(&text, "labthings_tasks"),
        resident_mib: sample(&text, "process_resident_memory_bytes") / (1024.0 * 1024.0),
        viewers: sum_of(&text, "labthings_stream_viewers"),
        websockets: sample(&text, "labthings_websockets"),
    }
}

/// Waits until no viewer or websocket is left and the task count holds still; returns the
/// usage then.
async fn settled(http: &reqwest::Client, base: &str) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = usage(http, base).await;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = usage(http, base).await;
        if now.viewers == 0.0 && now.websockets == 0.0 && now.tasks == last.tasks {
            return now;
        }
        assert!(Instant::now() < deadline, "never settled: {now:?}");
        last = now;
    }
}

/// One stream viewer: connects, reads until its first frame has begun, and leaves, either
/// closing its side first or just dropping the connection.
async fn viewer_cycle(address: &str, polite: bool) {
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(b"GET /camera/lores_mjpeg_stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !seen.windows(9).any(|w| w == b"--frame\r\n") {
        let n = socket.read(&mut buffer).await.unwrap();
        assert!(
            n > 0,
            "the stream ended early: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buffer[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    if polite {
        socket.shutdown().await.unwrap();
    }
}

/// The websocket message that observes the stage's position.
fn observe_position() -> Message {
    let observe = json!({"messageType": "addPropertyObservation", "data": {"position": true}});
    Message::Text(observe.to_string().into())
}

/// One websocket observer: connects, observes the stage's position, and leaves, either with a
/// close handshake or by dropping the connection.
async fn websocket_cycle(address: &str, polite: bool) {
    let (mut socket, response) =
        tokio_tungstenite::connect_async(format!("ws://{address}/stage/ws"))
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    socket.send(observe_position()).await.unwrap();
    if polite {
        socket.close(None).await.unwrap();
        while let Some(Ok(_)) = socket.next().await {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_viewers_and_websockets_come_and_go_and_leave_nothing_behind() {
    let _heavy = crate::support::HEAVY.lock().await;
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("config.json");
    std::fs::write(&config, crate::example_things::MICROSCOPE_CONFIG).unwrap();
    let process = MicroscopeProcess::start(&config).await;
    let address = process.address.clone();
    let base = format!("http://{address}");
    let http = reqwest::Client::new();

    // 2,500 of each, 8 at a time, half of them leaving politely and half by dropping the
    // connection. The first 100 of each warm up (buffers, caches) before the baseline.
    let run = |count: usize, offset: usize| {
        let address = address.clone();
        futures_util::stream::iter(offset..offset + count)
            .map(move |n| {
                let address = address.clone();
                async move {
                    let polite = n % 4 < 2;
                    if n % 2 == 0 {
                        viewer_cycle(&address, polite).await;
                    } else {
                        websocket_cycle(&address, polite).await;
                    }
                }
            })
            .buffer_unordered(8)
            .count()
    };
    assert_eq!(run(200, 0).await, 200);
    let before = settled(&http, &base).await;
    let started = Instant::now();
    assert_eq!(run(5_000, 200).await, 5_000);
    let took = started.elapsed();
    let after = settled(&http, &base).await;
    println!(
        "5,000 connect/disconnect cycles (2,500 viewers, 2,500 websockets) in {took:.1?}: \
         file descriptors {} -> {}, tasks {} -> {}, resident memory {:.1} -> {:.1} MiB",
        before.fds, after.fds, before.tasks, after.tasks, before.resident_mib, after.resident_mib
    );
    // Every one was counted in and out, and what they held was given back.
    assert!(after.fds <= before.fds + 4.0, "{before:?} -> {after:?}");
    assert!(after.tasks <= before.tasks + 4.0, "{before:?} -> {after:?}");
    assert!(
        after.resident_mib <= before.resident_mib + 32.0,
        "{before:?} -> {after:?}"
    );
    let text = metrics_text(&http, &base).await;
    assert!(
        sum_of(&text, "labthings_http_requests_total") >= 5_200.0,
        "every cycle was a request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_viewers_websockets_and_actions_cleanly_and_saves_settings() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("config.json");
    let mut microscope: Value =
        serde_json::from_str(crate::example_things::MICROSCOPE_CONFIG).unwrap();
    microscope["settings_folder"] = json!(folder.path().join("settings"));
    std::fs::write(&config, microscope.to_string()).unwrap();
    let mut process = MicroscopeProcess::start(&config).await;
    let address = process.address.clone();
    let base = format!("http://{address}");
    let http = reqwest::Client::new();

    // A stream viewer, a websocket observer, and a slow action (homing takes 2 s) whose
    // client waits for its end.
    let mut viewer = MjpegClient::builder(format!("{base}/camera/lores_mjpeg_stream"))
        .reconnect(Reconnect::never())
        .connect();
    viewer.next_frame().await.unwrap().unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/stage/ws"))
        .await
        .unwrap();
    socket.send(observe_position()).await.unwrap();
    let waiting = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            let response = http
                .post(format!("{base}/stage/home?wait=30"))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.unwrap()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let invocations: Value = http
            .get(format!("{base}/action_invocations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if invocations
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["status"] == "running")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the action started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server counts what it is serving.
    let serving = usage(&http, &base).await;
    assert_eq!(serving.websockets, 1.0, "{serving:?}");
    assert!(serving.viewers >= 1.0, "{serving:?}");
    // A setting written just before the end.
    let written = http
        .put(format!("{base}/camera/gain"))
        .json(&7.25)
        .send()
        .await
        .unwrap();
    assert!(written.status().is_success());

    let pid = process.child.id().unwrap().to_string();
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    // The action is cancelled, and the client waiting on it hears so.
    let invocation = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the waiting client is answered")
        .unwrap();
    assert_eq!(invocation["status"], "cancelled", "{invocation}");
    // The websocket gets a close frame saying the server is going away.
    let close = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("the websocket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame");
    let close = close.expect("with a code");
    assert_eq!(u16::from(close.code), 1001, "{close:?}");
    // The viewer's stream ends cleanly: frames, then the end, no error.
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(frame) = viewer.next_frame().await {
            frame.expect("no error: a clean end");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended");
    // The process exits, successfully, within the bound.
    let status = tokio::time::timeout(Duration::from_secs(15), process.child.wait())
        .await
        .expect("the server exits within 15 s")
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}\n{}", process.log());
    println!("graceful shutdown took {took:.2?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Settings were saved.
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(folder.path().join("settings/camera/settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["gain"], 7.25);
    let log = process.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        !log.contains("still open"),
        "everything closed in time: {log}"
    );
}
