//! The stream routes over real HTTP: wire format, viewers, snapshots, options and errors.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use labthings::stream::{self, MjpegStream};

use crate::support::{MjpegReader, fake_jpeg, spawn_server};

const PATH: &str = "/camera/mjpeg_stream";
const SECOND: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(10);

async fn serve_stream(stream: &MjpegStream) -> SocketAddr {
    spawn_server(Router::new().merge(stream::routes(PATH, stream.clone()))).await
}

fn url(address: SocketAddr, path: &str) -> String {
    format!("http://{address}{path}")
}

async fn wait_for_viewers(stream: &MjpegStream, viewers: usize) {
    let deadline = Instant::now() + PATIENCE;
    while stream.viewers() != viewers {
        assert!(
            Instant::now() < deadline,
            "{} viewers, wanted {viewers}",
            stream.viewers()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn wire_format_parses_back_part_by_part() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;
    let mut reader = MjpegReader::connect(&url(address, PATH)).await;
    wait_for_viewers(&stream, 1).await;
    for tag in 0..5u64 {
        let frame = fake_jpeg(tag, 1000 + 977 * tag as usize);
        let index = stream.add_frame(&frame).unwrap();
        let part = reader.next_part(PATIENCE).await.expect("a part");
        let entry = stream.entry(index).unwrap();

        assert_eq!(part.header("content-type"), Some("image/jpeg"));
        assert_eq!(
            part.header("content-length"),
            Some(&*frame.len().to_string())
        );
        assert_eq!(part.index(), index);
        let timestamp: chrono::DateTime<chrono::Utc> =
            part.header("x-timestamp").unwrap().parse().unwrap();
        assert_eq!(timestamp, entry.timestamp, "to the microsecond");
        assert_eq!(&part.body[..], &frame[..], "exact bytes");
    }
}

#[tokio::test]
async fn a_paused_producers_last_frame_is_fully_delivered() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;
    let mut reader = MjpegReader::connect(&url(address, PATH)).await;
    wait_for_viewers(&stream, 1).await;
    let frame = fake_jpeg(7, 64 * 1024);
    stream.add_frame(&frame).unwrap();
    // No frame follows: the reader only yields a part once its closing delimiter arrived.
    let part = reader.next_part(PATIENCE).await.unwrap();
    assert_eq!(&part.body[..], &frame[..]);
}

#[tokio::test]
async fn a_new_viewer_gets_the_latest_frame_immediately() {
    let stream = MjpegStream::new();
    for tag in 0..5 {
        stream.add_frame(fake_jpeg(tag, 500)).unwrap();
    }
    let address = serve_stream(&stream).await;
    let mut reader = MjpegReader::connect(&url(address, PATH)).await;
    let part = reader.next_part(PATIENCE).await.unwrap();
    assert_eq!(part.index(), 4);
    assert_eq!(&part.body[..], &fake_jpeg(4, 500)[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_does_not_delay_another() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;

    // A viewer that sends its request and then never reads a byte.
    let mut stalled = std::net::TcpStream::connect(address).unwrap();
    write!(stalled, "GET {PATH} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut reader = MjpegReader::connect(&url(address, PATH)).await;
    wait_for_viewers(&stream, 2).await;

    // 300 frames of 200 kB (60 MB in all, far more than the stalled socket can buffer), from a
    // camera thread at about 100 fps.
    let producer = std::thread::spawn({
        let stream = stream.clone();
        move || {
            let mut slowest_add = Duration::ZERO;
            for tag in 0..300 {
                let frame = fake_jpeg(tag, 200_000);
                let started = Instant::now();
                stream.add_frame(frame).unwrap();
                slowest_add = slowest_add.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            slowest_add
        }
    });
    let mut received = Vec::new();
    while received.last() != Some(&299) {
        let part = reader
            .next_part(PATIENCE)
            .await
            .expect("the stream goes on");
        received.push(part.index());
    }
    let slowest_add = producer.join().unwrap();
    assert!(received.windows(2).all(|w| w[0] < w[1]), "indices increase");
    assert!(
        received.len() > 30,
        "the reading viewer kept receiving frames, got {}",
        received.len()
    );
    // add_frame copies 200 kB and never waits on a viewer; a second would mean it blocked.
    assert!(slowest_add < SECOND, "add_frame took {slowest_add:?}");
    assert_eq!(stream.viewers(), 2, "the stalled viewer is still connected");
    drop(stalled);
}

#[tokio::test]
async fn stop_ends_every_viewer_cleanly() {
    let stream = MjpegStream::new();
    stream.add_frame(fake_jpeg(1, 100)).unwrap();
    let address = serve_stream(&stream).await;
    let mut first = MjpegReader::connect(&url(address, PATH)).await;
    let mut capped = MjpegReader::connect(&url(address, &format!("{PATH}?fps=0.1"))).await;
    assert!(first.next_part(PATIENCE).await.is_some());
    assert!(capped.next_part(PATIENCE).await.is_some());
    stream.stop();
    // The body ends (a clean end of the chunked body, not a reset), promptly for both.
    assert!(first.next_part(PATIENCE).await.is_none());
    assert!(capped.next_part(PATIENCE).await.is_none());
    wait_for_viewers(&stream, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_caps_the_viewers_frame_rate() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;
    let capped = MjpegReader::connect(&url(address, &format!("{PATH}?fps=4"))).await;
    let uncapped = MjpegReader::connect(&url(address, PATH)).await;
    wait_for_viewers(&stream, 2).await;
    let producer = std::thread::spawn({
        let stream = stream.clone();
        move || {
            // About 2 s at 100 fps, then stop.
            for tag in 0..200 {
                stream.add_frame(fake_jpeg(tag, 2000)).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            stream.stop();
        }
    });
    let count = |mut reader: MjpegReader| async move {
        let mut frames = 0;
        while reader.next_part(PATIENCE).await.is_some() {
            frames += 1;
        }
        frames
    };
    let (capped, uncapped) = tokio::join!(count(capped), count(uncapped));
    producer.join().unwrap();
    // Over at least 2 s at 4 fps: about 9 frames; never more than one per 250 ms.
    let elapsed_limit = 2.0 * 4.0 + 3.0;
    assert!(
        (2.0..=elapsed_limit).contains(&f64::from(capped)),
        "capped viewer got {capped} frames"
    );
    assert!(
        uncapped > 4 * capped,
        "uncapped {uncapped}, capped {capped}"
    );
}

#[tokio::test]
async fn snapshot_before_the_first_frame_is_a_503_problem() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;
    let response = reqwest::get(url(address, &format!("{PATH}/snapshot")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["retry-after"], "1");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    assert!(problem["detail"].as_str().unwrap().contains("no frame yet"));
}

#[tokio::test]
async fn a_snapshot_of_a_watched_stream_with_no_frame_yet_waits_for_its_first() {
    // A viewer has just come and the producer is still making the first frame (the deploy
    // suite met this: a stream link checked just before the snapshot link).
    let stream = MjpegStream::new();
    let _viewer = stream.frames();
    assert!(stream.is_watched());
    let address = serve_stream(&stream).await;
    let producer = stream.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        producer.add_frame(fake_jpeg(7, 400)).unwrap();
    });
    let response = reqwest::get(url(address, &format!("{PATH}/snapshot")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], &fake_jpeg(7, 400)[..]);
}

#[tokio::test]
async fn snapshot_is_the_latest_frame_with_its_timestamp_and_index() {
    let stream = MjpegStream::new();
    for tag in 0..3 {
        stream
            .add_frame(fake_jpeg(tag, 300 + tag as usize))
            .unwrap();
    }
    let address = serve_stream(&stream).await;
    let response = reqwest::get(url(address, &format!("{PATH}/snapshot")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["x-frame-index"], "2");
    assert_eq!(headers["content-length"], "302");
    let timestamp: chrono::DateTime<chrono::Utc> =
        headers["x-timestamp"].to_str().unwrap().parse().unwrap();
    assert_eq!(timestamp, stream.latest().unwrap().timestamp);
    assert_eq!(&response.bytes().await.unwrap()[..], &fake_jpeg(2, 302)[..]);
}

#[tokio::test]
async fn bad_stream_queries_are_400_problems_naming_the_parameter() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;
    for (query, name) in [
        ("fps=abc", "fps"),
        ("fps=-1", "fps"),
        ("fps=1e-20", "fps"),
        ("t=1700000000&fps=0", "fps"),
    ] {
        let response = reqwest::get(url(address, &format!("{PATH}?{query}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["invalid-params"][0]["name"], name, "{query}");
        assert!(problem["detail"].as_str().unwrap().contains(name));
    }
    assert_eq!(stream.viewers(), 0, "a refused request is not a viewer");
}

#[tokio::test]
async fn a_cache_buster_on_the_stream_is_ignored_as_on_other_routes() {
    let stream = MjpegStream::new();
    stream.add_frame(fake_jpeg(7, 300)).unwrap();
    let address = serve_stream(&stream).await;
    for query in ["t=1700000000", "_=3", "fps=10&t=5"] {
        let mut reader = MjpegReader::connect(&url(address, &format!("{PATH}?{query}"))).await;
        let part = reader
            .next_part(std::time::Duration::from_secs(5))
            .await
            .expect("the newest frame");
        assert_eq!(part.index(), 0, "{query}");
    }
}

#[tokio::test]
async fn head_works_on_stream_snapshot_and_viewer() {
    let stream = MjpegStream::new();
    stream.add_frame(fake_jpeg(0, 1234)).unwrap();
    let address = serve_stream(&stream).await;
    let client = reqwest::Client::new();
    let head = |path: String| client.head(url(address, &path)).send();

    let live = head(PATH.to_owned()).await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(
        live.headers()["content-type"],
        "multipart/x-mixed-replace; boundary=frame"
    );
    assert!(live.headers().get("content-length").is_none());
    assert_eq!(stream.viewers(), 0, "HEAD is not a viewer");

    let snapshot = head(format!("{PATH}/snapshot")).await.unwrap();
    assert_eq!(snapshot.status(), 200);
    assert_eq!(snapshot.headers()["content-type"], "image/jpeg");
    assert_eq!(snapshot.headers()["content-length"], "1234");
    assert_eq!(snapshot.headers()["x-frame-index"], "0");

    let viewer = head(format!("{PATH}/viewer")).await.unwrap();
    assert_eq!(viewer.status(), 200);
    assert!(
        viewer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn viewer_page_embeds_the_stream_and_links_the_snapshot() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;
    let page = reqwest::get(url(address, &format!("{PATH}/viewer")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Relative to /camera/mjpeg_stream/viewer, `../mjpeg_stream` is the stream itself.
    assert!(page.contains(r#"<img src="../mjpeg_stream""#), "{page}");
    assert!(page.contains(r#"href="snapshot""#), "{page}");
}

#[tokio::test]
async fn a_viewer_that_disconnects_is_counted_out() {
    let stream = MjpegStream::new();
    stream.add_frame(fake_jpeg(0, 100)).unwrap();
    let address = serve_stream(&stream).await;
    let mut reader = MjpegReader::connect(&url(address, PATH)).await;
    reader.next_part(PATIENCE).await.unwrap();
    assert_eq!(stream.viewers(), 1);
    drop(reader);
    // The server notices when it next writes to the closed connection.
    let deadline = Instant::now() + PATIENCE;
    while stream.viewers() != 0 {
        assert!(Instant::now() < deadline, "viewer still counted");
        stream.add_frame(fake_jpeg(1, 100)).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The size of the test frame tagged `tag`: varied, so that a torn or mixed-up frame shows.
fn frame_size(tag: u64) -> usize {
    1000 + (tag % 97) as usize * 31
}

/// Checks that a part is exactly the frame its index was given to, and returns its index.
fn intact(part: &crate::support::Part, tags: &std::collections::HashMap<u64, u64>) -> u64 {
    let index = part.index();
    let tag = tags[&index];
    assert_eq!(
        &part.body[..],
        &fake_jpeg(tag, frame_size(tag))[..],
        "frame {index}"
    );
    index
}

/// Reads parts until one with index `last` (or later) arrived; returns the parts.
async fn read_through(
    mut reader: MjpegReader,
    last: u64,
) -> (MjpegReader, Vec<crate::support::Part>) {
    let mut parts = Vec::new();
    loop {
        let part = reader
            .next_part(PATIENCE)
            .await
            .expect("the stream goes on");
        let index = part.index();
        parts.push(part);
        if index >= last {
            return (reader, parts);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_on_several_threads_a_pause_a_stop_and_a_restart_reach_viewers_intact() {
    let stream = MjpegStream::new();
    let address = serve_stream(&stream).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(MjpegReader::connect(&url(address, PATH)).await);
    }
    wait_for_viewers(&stream, 3).await;
    let mut tags = std::collections::HashMap::new();

    // Four camera threads adding frames at once.
    let producers: Vec<_> = (0..4u64)
        .map(|thread| {
            let stream = stream.clone();
            std::thread::spawn(move || {
                (0..100)
                    .map(|n| {
                        let tag = thread * 1000 + n;
                        let index = stream.add_frame(fake_jpeg(tag, frame_size(tag))).unwrap();
                        std::thread::sleep(Duration::from_millis(2));
                        (index, tag)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for producer in producers {
        tags.extend(producer.join().unwrap());
    }
    assert_eq!(tags.len(), 400, "every frame got its own index");
    let last = stream.frames_added() - 1;
    let mut kept = Vec::new();
    for reader in readers {
        let (reader, parts) = read_through(reader, last).await;
        let indices: Vec<u64> = parts.iter().map(|part| intact(part, &tags)).collect();
        assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
        assert_eq!(indices.last(), Some(&last), "the newest frame arrives");
        kept.push(reader);
    }

    // The camera pauses: viewers stay connected and wait; then it goes on, indices too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stream.viewers(), 3);
    for n in 0..5 {
        let tag = 9000 + n;
        tags.insert(
            stream.add_frame(fake_jpeg(tag, frame_size(tag))).unwrap(),
            tag,
        );
    }
    let resumed_last = stream.frames_added() - 1;
    let mut resumed = Vec::new();
    for reader in kept {
        let (reader, parts) = read_through(reader, resumed_last).await;
        assert!(parts.iter().all(|part| intact(part, &tags) > last));
        resumed.push(reader);
    }

    // The camera stops: every viewer's stream ends cleanly. It starts again: new viewers get
    // its new frames, with indices that go on from before (never reused).
    stream.stop();
    for mut reader in resumed {
        assert!(reader.next_part(PATIENCE).await.is_none(), "a clean end");
    }
    wait_for_viewers(&stream, 0).await;
    let reader = MjpegReader::connect(&url(address, PATH)).await;
    for n in 0..5 {
        let tag = 9100 + n;
        tags.insert(
            stream.add_frame(fake_jpeg(tag, frame_size(tag))).unwrap(),
            tag,
        );
    }
    let (_, parts) = read_through(reader, stream.frames_added() - 1).await;
    let indices: Vec<u64> = parts.iter().map(|part| intact(part, &tags)).collect();
    // A new viewer starts with the newest frame there is, here the last one before the stop.
    assert!(indices[0] >= resumed_last, "{indices:?}");
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    assert_eq!(indices.last(), Some(&(resumed_last + 5)));
}
