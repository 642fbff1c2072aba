//! H.264 beside MJPEG over real HTTP: both forms, their TD links and OpenAPI operations, what
//! is encoded when, a stalled viewer, and the units decoded back (OpenH264's decoder).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use labthings::stream::{self, H264Options, H264Stream, MjpegStream};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource as _;

use crate::example_things as things;
use crate::sim;
use crate::support::{MjpegReader, metrics_text, sample, spawn_server, spawn_thing_server};

const PATIENCE: Duration = Duration::from_secs(10);

/// The size of the pictures decoded from Annex B `bytes` (every unit, in order).
fn decode_sizes(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut decoder = Decoder::new().unwrap();
    let mut sizes = Vec::new();
    for packet in openh264::nal_units(bytes) {
        if let Ok(Some(picture)) = decoder.decode(packet) {
            sizes.push(picture.dimensions());
        }
    }
    sizes
}

async fn h264_viewers(http: &reqwest::Client, base: &str) -> f64 {
    sample(
        &metrics_text(http, base).await,
        "labthings_h264_viewers{thing=\"camera\",stream=\"mjpeg_stream\"}",
    )
}

async fn h264_units(http: &reqwest::Client, base: &str) -> f64 {
    sample(
        &metrics_text(http, base).await,
        "labthings_h264_units_total{thing=\"camera\",stream=\"mjpeg_stream\"}",
    )
}

/// The simulated camera (640x480 at 30 fps, offering H.264) on a server of its own: the
/// camera, the server's base URL, its stop signal and its task.
async fn serve_camera() -> (
    Arc<things::Camera>,
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), labthings::server::ServerError>>,
) {
    let camera = Arc::new(things::Camera::new(sim::CameraSettings::default()));
    let server = crate::support::builder()
        .add_thing("camera", camera.clone())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;
    (camera, format!("http://{address}"), stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_offers_h264_in_both_forms_that_decode_to_its_size_and_are_described() {
    let (_camera, base, stop, task) = serve_camera().await;
    let http = reqwest::Client::new();
    let get_json = |path: &str| {
        let request = http.get(format!("{base}{path}")).send();
        async move {
            request
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };

    // The TD lists both forms beside the MJPEG, with their media types; OpenAPI documents them.
    let td = get_json("/camera/").await;
    let links = td["links"].as_array().unwrap();
    let link = |href: &str| links.iter().find(|link| link["href"] == href).cloned();
    assert_eq!(
        link("camera/mjpeg_stream/h264").unwrap()["type"],
        "video/h264"
    );
    assert_eq!(
        link("camera/mjpeg_stream/h264/units").unwrap()["type"],
        "multipart/mixed; boundary=frame"
    );
    assert!(
        link("camera/lores_mjpeg_stream/h264").is_none(),
        "only a stream made with_h264 offers it"
    );
    let openapi = get_json("/openapi.json").await;
    let operation = &openapi["paths"]["/camera/mjpeg_stream/h264/units"]["get"];
    assert!(
        operation["responses"]["200"]["content"]["multipart/mixed; boundary=frame"].is_object(),
        "{operation}"
    );
    assert!(openapi["paths"]["/camera/mjpeg_stream/h264"]["get"]["responses"]["200"]["content"]
        ["video/h264"]
        .is_object());

    // The timed form: a keyframe first, then every unit in order, stamped when captured.
    let response = http
        .get(format!("{base}/camera/mjpeg_stream/h264/units"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "multipart/mixed; boundary=frame"
    );
    let mut reader = MjpegReader::new(response);
    let mut parts = Vec::new();
    for _ in 0..30 {
        parts.push(reader.next_part(PATIENCE).await.expect("units keep coming"));
    }
    drop(reader);
    assert_eq!(parts[0].header("x-keyframe"), Some("true"));
    assert!(
        parts
            .iter()
            .all(|part| part.header("content-type") == Some("video/h264"))
    );
    let indices: Vec<u64> = parts.iter().map(|part| part.index()).collect();
    assert!(indices.windows(2).all(|w| w[1] == w[0] + 1), "{indices:?}");
    let times: Vec<chrono::DateTime<chrono::Utc>> = parts
        .iter()
        .map(|part| part.header("x-timestamp").unwrap().parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "capture times increase"
    );
    let age = chrono::Utc::now() - times[29];
    assert!(
        age < chrono::Duration::seconds(5),
        "stamped at capture: {age}"
    );
    let stream: Vec<u8> = parts.iter().flat_map(|part| part.body.to_vec()).collect();
    let sizes = decode_sizes(&stream);
    assert_eq!(sizes.len(), 30, "every unit decodes to a picture");
    assert!(sizes.iter().all(|size| *size == (640, 480)), "{sizes:?}");

    // The raw form: Annex B from a keyframe (SPS first), which decodes as it comes.
    let mut response = http
        .get(format!("{base}/camera/mjpeg_stream/h264"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "video/h264");
    let mut bytes = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while decode_sizes(&bytes).len() < 10 {
        assert!(Instant::now() < deadline, "ten pictures in time");
        let chunk = tokio::time::timeout(PATIENCE, response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(bytes[..5], [0, 0, 0, 1, 0x67], "starts with the SPS");
    drop(response);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_encoded_to_h264_while_nobody_watches_it_that_way() {
    let (camera, base, stop, task) = serve_camera().await;
    let http = reqwest::Client::new();

    // MJPEG viewers, snapshots and a HEAD of the H.264 form: frames are made, no H.264.
    let mut mjpeg = MjpegReader::connect(&format!("{base}/camera/mjpeg_stream")).await;
    for _ in 0..15 {
        mjpeg.next_part(PATIENCE).await.unwrap();
    }
    let head = http
        .head(format!("{base}/camera/mjpeg_stream/h264"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "video/h264");
    for _ in 0..15 {
        mjpeg.next_part(PATIENCE).await.unwrap();
    }
    assert_eq!(
        h264_units(&http, &base).await,
        0.0,
        "no H.264 viewer, no H.264"
    );
    assert_eq!(camera.mjpeg_stream.h264().unwrap().stats().units, 0);
    drop(mjpeg);

    // One H.264 viewer: encoded, while it watches.
    let response = http
        .get(format!("{base}/camera/mjpeg_stream/h264/units"))
        .send()
        .await
        .unwrap();
    let mut reader = MjpegReader::new(response);
    for _ in 0..10 {
        reader.next_part(PATIENCE).await.unwrap();
    }
    assert_eq!(h264_viewers(&http, &base).await, 1.0);
    assert!(h264_units(&http, &base).await >= 10.0);
    drop(reader);
    crate::support::eventually_async(|| {
        let http = http.clone();
        let base = base.clone();
        async move { h264_viewers(&http, &base).await == 0.0 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = h264_units(&http, &base).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h264_units(&http, &base).await,
        after,
        "encoding stops with the last viewer"
    );

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

const UNITS_PATH: &str = "/camera/mjpeg_stream/h264/units";

/// A stream offering H.264, served alone (its routes on a server of their own).
async fn serve_h264() -> (H264Stream, std::net::SocketAddr) {
    let camera = MjpegStream::new().with_h264(H264Options::default());
    let h264 = camera.h264().unwrap();
    let routes = stream::routes("/camera/mjpeg_stream", camera);
    (h264, spawn_server(Router::new().merge(routes)).await)
}

/// An encoder thread of our own: 300 units of 200 kB (60 MB) at about 100 a second, a
/// keyframe every tenth, each tagged with its index; returns the slowest `add_unit`.
fn produce_big_units(h264: &H264Stream) -> std::thread::JoinHandle<Duration> {
    let h264 = h264.clone();
    std::thread::spawn(move || {
        let mut slowest = Duration::ZERO;
        for n in 0..300u32 {
            let mut unit = vec![0u8; 200_000];
            unit[..4].copy_from_slice(&n.to_be_bytes());
            let started = Instant::now();
            h264.add_unit(unit, chrono::Utc::now(), n % 10 == 0);
            slowest = slowest.max(started.elapsed());
            std::thread::sleep(Duration::from_millis(10));
        }
        slowest
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_h264_viewer_does_not_delay_another() {
    let (h264, address) = serve_h264().await;
    // A viewer that sends its request and never reads a byte.
    let mut stalled = std::net::TcpStream::connect(address).unwrap();
    write!(stalled, "GET {UNITS_PATH} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let response = reqwest::get(format!("http://{address}{UNITS_PATH}"))
        .await
        .unwrap();
    let mut reader = MjpegReader::new(response);
    crate::support::eventually(|| h264.stats().viewers == 2).await;

    // Far more than the stalled socket holds.
    let producer = produce_big_units(&h264);
    let mut received = Vec::new();
    while received.last() != Some(&299) {
        let part = reader
            .next_part(PATIENCE)
            .await
            .expect("the stream goes on");
        let tag = u32::from_be_bytes(part.body[..4].try_into().unwrap());
        assert_eq!(u64::from(tag), part.index());
        received.push(part.index());
    }
    let slowest = producer.join().unwrap();
    assert!(received.windows(2).all(|w| w[0] < w[1]), "indices increase");
    assert!(
        received.len() > 150,
        "the reading viewer kept up, got {} of 300",
        received.len()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "add_unit took {slowest:?}"
    );
    assert_eq!(
        h264.stats().viewers,
        2,
        "the stalled viewer is still connected"
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_h264_viewer_skips_to_the_next_keyframe_and_never_gets_a_delta_frame_out_of_order() {
    let (h264, address) = serve_h264().await;
    let response = reqwest::get(format!("http://{address}{UNITS_PATH}"))
        .await
        .unwrap();
    let mut reader = MjpegReader::new(response);
    crate::support::eventually(|| h264.stats().viewers == 1).await;

    // 20 MB a second, read at a twentieth of that.
    let producer = produce_big_units(&h264);
    let mut received: Vec<(u64, bool)> = Vec::new();
    while received.last().map(|(index, _)| *index) != Some(299) {
        let part = reader
            .next_part(PATIENCE)
            .await
            .expect("the stream goes on");
        received.push((part.index(), part.header("x-keyframe") == Some("true")));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    producer.join().unwrap();
    assert!(received[0].1, "it starts at a keyframe");
    let gaps: Vec<&[(u64, bool)]> = received
        .windows(2)
        .filter(|w| w[1].0 != w[0].0 + 1)
        .collect();
    assert!(!gaps.is_empty(), "a viewer this slow skips: {received:?}");
    for gap in &gaps {
        assert!(gap[0].0 < gap[1].0, "in order: {gap:?}");
        assert!(gap[1].1, "after a skip, a keyframe: {gap:?}");
    }
    assert!(
        received.len() < 200,
        "it skipped rather than queue every unit: {} of 300",
        received.len()
    );
    assert!(h264.stats().skipped > 0);
}

#[tokio::test]
async fn the_viewer_page_offers_the_h264_switch_only_for_a_stream_with_h264() {
    let (_, address) = serve_h264().await;
    let page = reqwest::get(format!("http://{address}/camera/mjpeg_stream/viewer"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<select id="format">"#), "{page}");
    assert!(
        page.contains("class H264Player"),
        "the player is in the page"
    );
    assert!(page.contains(r#"new URL("../mjpeg_stream/h264/units""#));
    let plain = MjpegStream::new();
    let routes = stream::routes("/camera/plain", plain);
    let address = spawn_server(Router::new().merge(routes)).await;
    let page = reqwest::get(format!("http://{address}/camera/plain/viewer"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains(r#"id="format""#) && !page.contains("H264Player"),
        "{page}"
    );
    assert!(!page.contains("{{"), "every placeholder is filled: {page}");
}
