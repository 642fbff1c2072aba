//! `labthings::client`: MjpegClient against quirky test servers and ours; ThingClient against
//! the microscope example.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use labthings::client::{ClientError, Frame, MjpegClient, Reconnect, ThingClient};
use labthings::stream::MjpegStream;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{eventually, fake_jpeg, spawn_server};

/// How a test server writes its parts.
#[derive(Clone, Copy)]
struct Quirks {
    content_type: &'static str,
    delimiter: &'static str,
    newline: &'static str,
    content_length: bool,
    preamble: bool,
    closing: bool,
}

const RFC: Quirks = Quirks {
    content_type: "multipart/x-mixed-replace; boundary=frame",
    delimiter: "--frame",
    newline: "\r\n",
    content_length: true,
    preamble: false,
    closing: false,
};

/// Part `tag` of a stream: delimiter, headers, blank line, body, line break.
fn part(quirks: Quirks, tag: u64, len: usize) -> Vec<u8> {
    let nl = quirks.newline;
    let body = fake_jpeg(tag, len);
    let mut out = format!("{}{nl}content-TYPE: image/jpeg{nl}", quirks.delimiter).into_bytes();
    if quirks.content_length {
        out.extend(format!("Content-Length: {}{nl}", body.len()).into_bytes());
    }
    out.extend(nl.as_bytes());
    out.extend(body);
    out.extend(nl.as_bytes());
    out
}

fn head(quirks: Quirks) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
        quirks.content_type
    )
    .into_bytes();
    if quirks.preamble {
        out.extend(format!("Some cameras say hello first.{}", quirks.newline).into_bytes());
    }
    out
}

fn tail(quirks: Quirks) -> Vec<u8> {
    let close = if quirks.closing { "--" } else { "" };
    format!("{}{close}{}", quirks.delimiter, quirks.newline).into_bytes()
}

type Handler = Arc<dyn Fn(usize, TcpStream) -> BoxFuture<'static, ()> + Send + Sync>;

/// A raw TCP server: reads each request's head, then hands the connection (and its number,
/// from 0) to `handler`.
async fn serve_raw(listener: TcpListener, handler: Handler) {
    let mut count = 0;
    while let Ok((mut socket, _)) = listener.accept().await {
        let handler = handler.clone();
        let number = count;
        count += 1;
        tokio::spawn(async move {
            read_request_head(&mut socket).await;
            handler(number, socket).await;
        });
    }
}

async fn spawn_raw(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve_raw(listener, handler));
    address
}

async fn read_request_head(socket: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
}

/// Writes `bytes` in small pieces, flushing each, so parts arrive split at odd places.
async fn trickle(socket: &mut TcpStream, bytes: &[u8]) {
    for piece in bytes.chunks(997) {
        if socket.write_all(piece).await.is_err() {
            return;
        }
        let _ = socket.flush().await;
        tokio::task::yield_now().await;
    }
}

fn tag(frame: &Frame) -> u64 {
    u64::from_be_bytes(frame.data[2..10].try_into().unwrap())
}

/// Reads frames until the client ends or `count` arrived; the end's error, if any, too.
async fn collect(client: &mut MjpegClient, count: usize) -> (Vec<Frame>, Option<ClientError>) {
    let mut frames = Vec::new();
    while frames.len() < count {
        match tokio::time::timeout(Duration::from_secs(20), client.next_frame()).await {
            Ok(Some(Ok(frame))) => frames.push(frame),
            Ok(Some(Err(error))) => return (frames, Some(error)),
            Ok(None) => return (frames, None),
            Err(_) => panic!("no frame in 20 s; {}", client.stats()),
        }
    }
    (frames, None)
}

#[tokio::test]
async fn quirky_servers_give_exactly_the_frames_they_sent() {
    let cases = [
        RFC,
        Quirks {
            content_length: false,
            newline: "\n",
            preamble: true,
            closing: true,
            ..RFC
        },
        Quirks {
            content_type: "multipart/x-mixed-replace;boundary=\"--x\"",
            delimiter: "--x",
            content_length: false,
            ..RFC
        },
        Quirks {
            content_type: "multipart/x-mixed-replace; boundary=\"--x\"",
            delimiter: "----x",
            newline: "\n",
            closing: true,
            ..RFC
        },
        Quirks {
            content_type: "Multipart/X-Mixed-Replace; BOUNDARY=myboundary",
            delimiter: "--myboundary",
            preamble: true,
            ..RFC
        },
    ];
    for (case, quirks) in cases.into_iter().enumerate() {
        let sizes: Vec<usize> = (0..12).map(|i| 200 + i * 1013).collect();
        let sent = sizes.clone();
        let address = spawn_raw(Arc::new(move |_, mut socket| {
            let sizes = sent.clone();
            Box::pin(async move {
                let mut out = head(quirks);
                for (tag, len) in sizes.iter().enumerate() {
                    out.extend(part(quirks, tag as u64, *len));
                }
                out.extend(tail(quirks));
                trickle(&mut socket, &out).await;
            })
        }))
        .await;
        let mut client = MjpegClient::builder(format!("http://{address}/stream"))
            .reconnect(Reconnect::never())
            .queue_capacity(100)
            .connect();
        let (frames, error) = collect(&mut client, usize::MAX).await;
        assert!(error.is_none(), "case {case}: {error:?}");
        let got: Vec<Bytes> = frames.iter().map(|frame| frame.data.clone()).collect();
        let want: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(tag, len)| fake_jpeg(tag as u64, *len).into())
            .collect();
        assert_eq!(got, want, "case {case}");
        assert!(
            frames
                .iter()
                .enumerate()
                .all(|(i, f)| f.sequence == i as u64)
        );
        let stats = client.stats();
        assert_eq!((stats.frames, stats.discarded, stats.too_large), (12, 0, 0));
        assert_eq!(stats.bytes, sizes.iter().sum::<usize>() as u64);
    }
}

#[tokio::test]
async fn too_large_frames_are_skipped_and_counted() {
    let sizes = [
        (500, true),
        (5000, true),
        (600, false),
        (50_000, false),
        (700, true),
    ];
    let address = spawn_raw(Arc::new(move |_, mut socket| {
        Box::pin(async move {
            let mut out = head(RFC);
            for (tag, (len, content_length)) in sizes.iter().enumerate() {
                let quirks = Quirks {
                    content_length: *content_length,
                    ..RFC
                };
                out.extend(part(quirks, tag as u64, *len));
            }
            out.extend(tail(RFC));
            trickle(&mut socket, &out).await;
        })
    }))
    .await;
    let mut client = MjpegClient::builder(format!("http://{address}/"))
        .reconnect(Reconnect::never())
        .max_frame_size(1000)
        .queue_capacity(10)
        .connect();
    let (frames, error) = collect(&mut client, usize::MAX).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(frames.iter().map(tag).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(client.stats().too_large, 2);
}

#[tokio::test]
async fn a_slow_consumer_gets_the_newest_frames_and_the_oldest_are_counted_as_discarded() {
    let address = spawn_raw(Arc::new(|_, mut socket| {
        Box::pin(async move {
            let mut out = head(RFC);
            for tag in 0..50 {
                out.extend(part(RFC, tag, 300));
            }
            trickle(&mut socket, &out).await;
        })
    }))
    .await;
    let mut client = MjpegClient::builder(format!("http://{address}/"))
        .reconnect(Reconnect::never())
        .queue_capacity(4)
        .connect();
    // Consume nothing until every frame has arrived.
    eventually(|| client.stats().frames == 50).await;
    let stats = client.stats();
    assert_eq!((stats.discarded, stats.queued), (46, 4));
    let (frames, error) = collect(&mut client, usize::MAX).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(frames.iter().map(tag).collect::<Vec<_>>(), [46, 47, 48, 49]);
    assert_eq!(
        frames.iter().map(|f| f.sequence).collect::<Vec<_>>(),
        [46, 47, 48, 49]
    );
}

/// Binds `address` again after a restart (the old socket may linger in TIME_WAIT).
async fn rebind(address: SocketAddr) -> TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(address).unwrap();
    socket.listen(128).unwrap()
}

#[tokio::test]
async fn the_client_reconnects_within_the_backoff_bound_after_a_server_restart() {
    let max_backoff = Duration::from_millis(200);
    let downtime = Duration::from_millis(1500);
    // The first server life: frames 0..3, then the process "dies" (listener and socket closed).
    let listener = rebind("127.0.0.1:0".parse().unwrap()).await;
    let address = listener.local_addr().unwrap();
    let first_life = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request_head(&mut socket).await;
        let mut out = head(RFC);
        for tag in 0..3 {
            out.extend(part(RFC, tag, 400));
        }
        trickle(&mut socket, &out).await;
    });
    let mut client = MjpegClient::builder(format!("http://{address}/"))
        .reconnect(Reconnect::backoff(Duration::from_millis(20), max_backoff))
        .queue_capacity(100)
        .connect();
    let (before, _) = collect(&mut client, 3).await;
    first_life.await.unwrap();
    tokio::time::sleep(downtime).await;
    assert!(!client.stats().connected);

    // The second life, on the same port: frames 3..6.
    let listener = rebind(address).await;
    let back = chrono::Utc::now();
    tokio::spawn(serve_raw(
        listener,
        Arc::new(|_, mut socket| {
            Box::pin(async move {
                let mut out = head(RFC);
                for tag in 3..6 {
                    out.extend(part(RFC, tag, 400));
                }
                trickle(&mut socket, &out).await;
                // Stay up: hold the connection open.
                tokio::time::sleep(Duration::from_secs(30)).await;
            })
        }),
    ));
    let (after, _) = collect(&mut client, 3).await;
    let reconnected_in = after[0].received - back;
    let tags: Vec<u64> = before.iter().chain(&after).map(tag).collect();
    assert_eq!(tags, [0, 1, 2, 3, 4, 5]);
    let stats = client.stats();
    assert!(stats.reconnects >= 2, "refused attempts count: {stats}");
    // The next attempt comes at most `max_backoff` after the server is back, plus the time to
    // connect and read three frames on a busy machine.
    let bound = max_backoff + Duration::from_secs(1);
    assert!(
        reconnected_in.to_std().unwrap() <= bound,
        "reconnected {reconnected_in} after the restart; bound {bound:?}"
    );
}

#[tokio::test]
async fn a_stalled_server_is_detected_and_the_client_reconnects() {
    let address = spawn_raw(Arc::new(|number, mut socket| {
        Box::pin(async move {
            let mut out = head(RFC);
            for tag in 0..2 {
                out.extend(part(RFC, number as u64 * 10 + tag, 300));
            }
            trickle(&mut socket, &out).await;
            // Then silence, with the connection open.
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
    }))
    .await;
    let mut client = MjpegClient::builder(format!("http://{address}/"))
        .read_timeout(Duration::from_millis(300))
        .reconnect(Reconnect::backoff(
            Duration::from_millis(10),
            Duration::from_millis(50),
        ))
        .queue_capacity(10)
        .connect();
    let (frames, _) = collect(&mut client, 4).await;
    assert_eq!(frames.iter().map(tag).collect::<Vec<_>>(), [0, 1, 10, 11]);
    let stats = client.stats();
    assert!(stats.reconnects >= 1);
    let error = stats.last_error.unwrap();
    assert!(
        error.contains("data from") && error.contains("took longer than"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_trickles_bytes_but_no_frame_is_a_stall_too() {
    let address = spawn_raw(Arc::new(|number, mut socket| {
        Box::pin(async move {
            let mut out = head(RFC);
            out.extend(part(RFC, number as u64, 300));
            trickle(&mut socket, &out).await;
            // A byte every 50 ms: never silent for long, never a frame.
            for _ in 0..600 {
                if socket.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }))
    .await;
    let mut client = MjpegClient::builder(format!("http://{address}/"))
        .read_timeout(Duration::from_secs(10))
        .frame_timeout(Duration::from_millis(400))
        .reconnect(Reconnect::backoff(
            Duration::from_millis(10),
            Duration::from_millis(50),
        ))
        .connect();
    let (frames, _) = collect(&mut client, 2).await;
    assert_eq!(frames.iter().map(tag).collect::<Vec<_>>(), [0, 1]);
    let error = client.stats().last_error.unwrap();
    assert!(error.contains("a frame from"), "{error}");
}

#[tokio::test]
async fn answers_that_retrying_cannot_fix_end_the_stream_with_the_reason() {
    let address = spawn_raw(Arc::new(|number, mut socket| {
        Box::pin(async move {
            let answer = match number {
                0 => {
                    let body = r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"No stream here."}"#;
                    format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                }
                _ => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
                      Connection: close\r\n\r\n{}"
                    .to_owned(),
            };
            let _ = socket.write_all(answer.as_bytes()).await;
        })
    }))
    .await;
    // Reconnection is on (the default): these errors end the stream anyway.
    let mut client = MjpegClient::connect(format!("http://{address}/missing"));
    let (frames, error) = collect(&mut client, 1).await;
    assert!(frames.is_empty());
    let error = error.expect("the stream ends with the error");
    assert_eq!(error.status(), Some(reqwest::StatusCode::NOT_FOUND));
    assert_eq!(error.problem().unwrap().detail, "No stream here.");
    assert!(client.next_frame().await.is_none());

    let mut client = MjpegClient::connect(format!("http://{address}/json"));
    let (_, error) = collect(&mut client, 1).await;
    let error = error.expect("the stream ends with the error");
    assert!(matches!(error, ClientError::Protocol { .. }), "{error}");
    assert!(error.to_string().contains("not a multipart"), "{error}");
    assert_eq!(client.stats().reconnects, 0);
}

#[tokio::test]
async fn our_stream_gives_frame_indices_timestamps_and_counts_frames_the_server_skipped() {
    let stream = MjpegStream::new();
    let address = spawn_server(labthings::stream::routes("/stream", stream.clone())).await;
    let producer = stream.clone();
    let produce = tokio::spawn(async move {
        for tag in 0.. {
            producer.add_frame(fake_jpeg(tag, 2000)).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    // One frame per second asked for: the server skips the rest, and says so by index.
    let mut client = MjpegClient::connect(format!("http://{address}/stream?fps=4"));
    let (frames, _) = collect(&mut client, 3).await;
    produce.abort();
    for pair in frames.windows(2) {
        assert!(pair[1].index.unwrap() > pair[0].index.unwrap() + 1);
    }
    for frame in &frames {
        assert_eq!(tag(frame), frame.index.unwrap());
        assert_eq!(frame.content_type.as_deref(), Some("image/jpeg"));
        let latency = frame.latency().unwrap();
        assert!(latency >= chrono::TimeDelta::zero() && latency < chrono::TimeDelta::seconds(5));
    }
    let stats = client.stats();
    assert!(stats.server_skipped > 0, "{stats}");
    assert!(stats.connected && stats.fps > 0.0, "{stats}");
    assert!(stats.to_string().contains("skipped by the server"));
}

async fn microscope() -> SocketAddr {
    crate::support::spawn_microscope(labthings::serve::ConnectionOptions::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thing_client_reads_and_writes_properties_with_the_servers_problems() {
    let address = microscope().await;
    let camera = ThingClient::connect(format!("http://{address}/camera/"))
        .await
        .unwrap();
    assert_eq!(camera.title(), "Simulated camera");
    assert_eq!(
        camera.properties(),
        [
            "exposure_ms",
            "gain",
            "frames_captured",
            "history_seconds",
            "sensor_temperature",
            "state"
        ]
    );
    assert_eq!(camera.streams(), ["mjpeg_stream", "lores_mjpeg_stream"]);

    camera.set("exposure_ms", &25.0).await.unwrap();
    assert_eq!(camera.get::<f64>("exposure_ms").await.unwrap(), 25.0);

    let error = camera.set("exposure_ms", &5000.0).await.unwrap_err();
    assert_eq!(
        error.status(),
        Some(reqwest::StatusCode::UNPROCESSABLE_ENTITY)
    );
    let problem = error.problem().unwrap();
    assert_eq!(problem.invalid_params[0].name, "exposure_ms");
    assert_eq!(camera.get::<f64>("exposure_ms").await.unwrap(), 25.0);

    let error = camera.set("frames_captured", &3).await.unwrap_err();
    assert!(
        error.to_string().contains("no form for `writeproperty`"),
        "{error}"
    );
    let error = camera.get::<f64>("exposure").await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::NoSuchAffordance {
                kind: "property",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("exposure_ms, gain"), "{error}");
    let error = camera.get::<String>("exposure_ms").await.unwrap_err();
    assert!(matches!(error, ClientError::Json { .. }), "{error}");

    let error = ThingClient::connect(format!("http://{address}/nothing/"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(reqwest::StatusCode::NOT_FOUND));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thing_client_invokes_waits_for_and_cancels_actions() {
    let address = microscope().await;
    let stage = ThingClient::connect(format!("http://{address}/stage/"))
        .await
        .unwrap();
    let position: [i64; 3] = stage
        .invoke("move_relative", &json!({"x": 100, "y": -50}))
        .await
        .unwrap();
    assert_eq!(position, [100, -50, 0]);
    assert_eq!(stage.get::<[i64; 3]>("position").await.unwrap(), position);

    let error = stage
        .invoke::<Value>("move_to", &json!({"x": 1_000_000, "y": 0, "z": 0}))
        .await
        .unwrap_err();
    let ClientError::ActionFailed {
        status, problem, ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(status, "error");
    assert!(
        problem
            .as_ref()
            .unwrap()
            .detail
            .contains("outside the stage's travel")
    );

    let error = stage
        .invoke::<Value>("move_to", &json!({"x": "far"}))
        .await
        .unwrap_err();
    assert_eq!(
        error.status(),
        Some(reqwest::StatusCode::UNPROCESSABLE_ENTITY)
    );

    // `home` takes about 2 s: start it, cancel it, see it end as cancelled.
    let mut homing = stage.start("home", &()).await.unwrap();
    assert!(!homing.is_finished());
    assert!(!homing.id().is_empty());
    homing.cancel().await.unwrap();
    let error = homing.wait(Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(&error, ClientError::ActionFailed { status, .. } if status == "cancelled"));

    // A timeout leaves a started invocation running; `invoke` cancels it.
    let mut homing = stage.start("home", &()).await.unwrap();
    let error = homing.wait(Duration::from_millis(50)).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    homing.refresh().await.unwrap();
    assert!(!homing.is_finished());
    homing.cancel().await.unwrap();

    let impatient = ThingClient::builder(format!("http://{address}/stage/"))
        .action_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let error = impatient.invoke::<Value>("home", &()).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    let invocations: Value = reqwest::get(format!("http://{address}/stage/home"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = invocations.as_array().unwrap().last().unwrap().clone();
    let mut status = last["status"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status != "cancelled" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now: Value = reqwest::get(last["href"].as_str().unwrap())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = now["status"].as_str().unwrap().to_owned();
    }
    assert_eq!(status, "cancelled", "invoke cancels what it gave up on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thing_client_observes_properties_and_actions_and_reads_blobs_and_streams() {
    let address = microscope().await;
    let stage = ThingClient::connect(format!("http://{address}/stage/"))
        .await
        .unwrap();
    let camera = ThingClient::connect(format!("http://{address}/camera/"))
        .await
        .unwrap();

    let mut positions = stage.observe_property("position").await.unwrap();
    let mut moves = stage.observe_action("move_relative").await.unwrap();
    // The server takes the observation requests in its own time: once a first move is seen
    // completing, every status of the next one is observed.
    let _: [i64; 3] = stage
        .invoke("move_relative", &json!({"x": 0, "y": 0}))
        .await
        .unwrap();
    while next(&mut moves).await.status != "completed" {}
    let _: [i64; 3] = stage
        .invoke("move_relative", &json!({"x": 7, "y": 8, "z": 9}))
        .await
        .unwrap();
    let value: Value = loop {
        let value = next(&mut positions).await;
        if value == json!([7, 8, 9]) {
            break value;
        }
    };
    assert_eq!(value, json!([7, 8, 9]));
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("completed") {
        let status = next(&mut moves).await;
        assert_eq!(status.action, "move_relative");
        assert!(status.href.is_some());
        statuses.push(status.status);
    }
    assert!(statuses.contains(&"running".to_owned()), "{statuses:?}");

    let mut exposures = camera.observe_property("exposure_ms").await.unwrap();
    camera.set("exposure_ms", &12.5).await.unwrap();
    // The current value may come first; the new one must follow.
    while next(&mut exposures).await != json!(12.5) {}

    let output: Value = camera.invoke("capture", &()).await.unwrap();
    assert_eq!(output["media_type"], "image/jpeg");
    let jpeg = camera.blob(&output).await.unwrap();
    assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]));

    let mut frames = camera
        .stream("lores_mjpeg_stream")
        .unwrap()
        .reconnect(Reconnect::never())
        .connect();
    let (frames_read, _) = collect(&mut frames, 3).await;
    assert_eq!(frames_read.len(), 3);
    assert!(
        frames_read
            .iter()
            .all(|f| f.index.is_some() && f.timestamp.is_some())
    );
    let error = camera.stream("mjpeg").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("mjpeg_stream, lores_mjpeg_stream"),
        "{error}"
    );
}

/// The next item of an observation, within 10 s.
async fn next<T>(
    stream: &mut futures_util::stream::BoxStream<'static, Result<T, ClientError>>,
) -> T {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a message within 10 s")
        .expect("the observation goes on")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_records_numbered_jpeg_files_and_prints_live_statistics() {
    let address = microscope().await;
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(crate::support::example_binary("probe"))
        .arg(format!("http://{address}/camera/lores_mjpeg_stream"))
        .arg("--save")
        .arg(dir.path())
        .args(["--frames", "40"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("frame-{i:06}.jpg")).collect();
    assert_eq!(files, expected);
    let jpeg = std::fs::read(dir.path().join("frame-000039.jpg")).unwrap();
    let mut decoder = zune_jpeg::JpegDecoder::new(&jpeg);
    decoder.decode().expect("a valid JPEG");
    assert_eq!(decoder.dimensions(), Some((320, 240)));
    // 40 frames at the camera's 30 fps take over a second: at least one live line.
    let live = stdout
        .lines()
        .find(|line| line.contains(" fps "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        live.contains("Mbit/s") && live.contains("latency") && live.contains("reconnects"),
        "{live}"
    );
    assert!(stdout.contains("saved 40 frames"), "{stdout}");

    // A URL that is not a stream: a clear error and a failing exit status.
    let output = tokio::process::Command::new(crate::support::example_binary("probe"))
        .arg(format!("http://{address}/camera/"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a multipart"), "{stderr}");
}
