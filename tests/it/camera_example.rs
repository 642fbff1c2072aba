//! The simulated camera of `examples/camera.rs`, served as the example serves it.

#[path = "../../examples/support/camera_app.rs"]
mod camera_app;
#[path = "../../examples/support/sim.rs"]
mod sim;

use std::time::{Duration, Instant};

use crate::support::{MjpegReader, spawn_server};

/// Decodes a JPEG into (width, height, RGB pixels).
fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut decoder = zune_jpeg::JpegDecoder::new(jpeg);
    let pixels = decoder.decode().expect("a valid JPEG");
    let (width, height) = decoder.dimensions().unwrap();
    (width, height, pixels)
}

async fn snapshot(address: std::net::SocketAddr, stream: &str) -> bytes::Bytes {
    let url = format!("http://{address}/camera/{stream}/snapshot");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = reqwest::get(&url).await.unwrap();
        if response.status() == 200 {
            return response.bytes().await.unwrap();
        }
        assert_eq!(response.status(), 503, "only 'no frame yet' is expected");
        assert!(Instant::now() < deadline, "the camera produced no frame");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_camera_serves_real_moving_jpegs_on_both_streams() {
    let app = camera_app::CameraApp::start(sim::CameraSettings::default());
    let address = spawn_server(app.router()).await;

    let first = snapshot(address, "mjpeg_stream").await;
    let (width, height, before) = decode(&first);
    assert_eq!((width, height), (640, 480));
    let (width, height, _) = decode(&snapshot(address, "lores_mjpeg_stream").await);
    assert_eq!((width, height), (320, 240));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, _, after) = decode(&snapshot(address, "mjpeg_stream").await);
    let changed = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.abs_diff(**b) > 32)
        .count();
    assert!(
        changed > before.len() / 50,
        "the pattern moves: {changed} of {} samples changed",
        before.len()
    );

    let mut reader = MjpegReader::connect(&format!("http://{address}/camera/mjpeg_stream")).await;
    let mut last = None;
    for _ in 0..3 {
        let part = reader.next_part(Duration::from_secs(10)).await.unwrap();
        let (width, height, _) = decode(&part.body);
        assert_eq!((width, height), (640, 480));
        assert!(last.is_none_or(|last| part.index() > last));
        last = Some(part.index());
    }
    app.stop_streams();
    assert!(reader.next_part(Duration::from_secs(10)).await.is_none());
}

#[test]
fn the_test_pattern_draws_the_caption() {
    let mut pattern = sim::TestPattern::new(320, 240);
    let blank = pattern.render(0.0, "", 0).to_vec();
    let captioned = pattern.render(0.0, "12:34", 0).to_vec();
    assert_ne!(blank, captioned, "the caption changes pixels");
}
