//! The simulated camera and microscope of `examples/`, served as the examples serve them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::example_things as things;
use crate::sim;
use crate::support::{MjpegReader, spawn_thing_server};

/// Decodes a JPEG into (width, height, RGB pixels).
fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut decoder = zune_jpeg::JpegDecoder::new(jpeg);
    let pixels = decoder.decode().expect("a valid JPEG");
    let (width, height) = decoder.dimensions().unwrap();
    (width, height, pixels)
}

async fn snapshot(address: std::net::SocketAddr, path: &str) -> bytes::Bytes {
    let url = format!("http://{address}{path}/snapshot");
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

/// The newest snapshot taken after `after` frames were captured.
async fn fresh_snapshot(address: std::net::SocketAddr, camera: &things::Camera) -> Vec<u8> {
    // Watched meanwhile: a camera nobody watches renders nothing.
    let _watching = camera.mjpeg_stream.demand();
    let from = camera.frames_captured.get();
    crate::support::eventually(|| camera.frames_captured.get() > from + 1).await;
    // Frames rendered before now may still be in the frame pipeline (one waiting, one per
    // encoding worker): three more encoded frames are surely rendered after.
    let added = camera.mjpeg_stream.frames_added();
    crate::support::eventually(|| camera.mjpeg_stream.frames_added() > added + 2).await;
    let (_, _, pixels) = decode(&snapshot(address, "/camera/mjpeg_stream").await);
    pixels
}

fn changed_fraction(a: &[u8], b: &[u8]) -> f64 {
    // Below the caption (the top 10% of the picture shows the time).
    let skip = a.len() / 10;
    let changed = a[skip..]
        .iter()
        .zip(&b[skip..])
        .filter(|(x, y)| x.abs_diff(**y) > 32)
        .count();
    changed as f64 / (a.len() - skip) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_serves_real_moving_jpegs_on_both_streams_and_counts_frames() {
    let camera = Arc::new(things::Camera::new(sim::CameraSettings::default()));
    let server = crate::support::builder()
        .add_thing("camera", camera.clone())
        .build()
        .unwrap();
    let (address, stop, task) = spawn_thing_server(server).await;

    let (width, height, before) = decode(&snapshot(address, "/camera/mjpeg_stream").await);
    assert_eq!((width, height), (640, 480));
    let (width, height, _) = decode(&snapshot(address, "/camera/lores_mjpeg_stream").await);
    assert_eq!((width, height), (320, 240));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = fresh_snapshot(address, &camera).await;
    assert!(
        changed_fraction(&before, &after) > 0.02,
        "the pattern moves"
    );

    let counted: u64 = reqwest::get(format!("http://{address}/camera/frames_captured"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(counted > 0, "frames_captured counts frames");
    assert_eq!(
        camera.lores_mjpeg_stream.ringbuffer_size(),
        4,
        "#[stream(ringbuffer = 4)]"
    );

    let mut reader = MjpegReader::connect(&format!("http://{address}/camera/mjpeg_stream")).await;
    for _ in 0..3 {
        let part = reader.next_part(Duration::from_secs(10)).await.unwrap();
        assert_eq!(decode(&part.body).0, 640);
    }
    let _ = stop.send(());
    // A frame already on its way may still arrive (found flaky under CI's load); then the
    // body ends, within seconds, not after the frames keep coming.
    let mut after_stop = 0;
    while reader.next_part(Duration::from_secs(10)).await.is_some() {
        after_stop += 1;
        assert!(
            after_stop <= 2,
            "shutdown ends streams: {after_stop} frames after it"
        );
    }
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposure_changes_the_image_brightness() {
    let camera = Arc::new(things::Camera::new(sim::CameraSettings {
        drift: false,
        ..Default::default()
    }));
    let server = crate::support::builder()
        .add_thing("camera", camera.clone())
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let mean =
        |pixels: &[u8]| pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / pixels.len() as f64;
    let normal = mean(&fresh_snapshot(address, &camera).await);
    let response = reqwest::Client::new()
        .put(format!("http://{address}/camera/exposure_ms"))
        .json(&json!(3.0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let darker = mean(&fresh_snapshot(address, &camera).await);
    assert!(
        darker < normal * 0.6,
        "mean brightness {normal:.0} -> {darker:.0}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_stage_moves_the_camera_image() {
    let stage = Arc::new(things::Stage::new());
    let camera = Arc::new(
        things::Camera::new(sim::CameraSettings {
            drift: false,
            ..Default::default()
        })
        .with_stage(&stage),
    );
    let server = crate::support::builder()
        .add_thing("stage", stage.clone())
        .add_thing("camera", camera.clone())
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let still_a = fresh_snapshot(address, &camera).await;
    let still_b = fresh_snapshot(address, &camera).await;
    assert!(
        changed_fraction(&still_a, &still_b) < 0.01,
        "without drift the image stands still"
    );

    let response = reqwest::Client::new()
        .put(format!("http://{address}/stage/position"))
        .json(&json!([120, 40, 0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(stage.position.get(), [120, 40, 0]);
    let moved = fresh_snapshot(address, &camera).await;
    assert!(
        changed_fraction(&still_b, &moved) > 0.05,
        "the image moved with the stage: {:.3}",
        changed_fraction(&still_b, &moved)
    );
}

#[test]
fn the_test_pattern_draws_the_caption() {
    let mut pattern = sim::TestPattern::new(320, 240);
    let blank = pattern.render(0.0, "", 0).to_vec();
    let captioned = pattern.render(0.0, "12:34", 0).to_vec();
    assert_ne!(blank, captioned, "the caption changes pixels");
}

fn config_error(json: &str) -> String {
    let config = labthings::server::ServerConfig::from_json(json).unwrap();
    things::registry().builder(&config).unwrap_err().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_microscope_configuration_serves_a_stage_and_a_camera_that_share_it() {
    let config = labthings::server::ServerConfig::from_json(things::MICROSCOPE_CONFIG).unwrap();
    crate::support::Captured::start();
    let server = things::registry()
        .builder(&config)
        .unwrap()
        .without_settings_folder()
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let listed: serde_json::Value = reqwest::get(format!("http://{address}/things/"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["stage", "camera"]
    );
    let (width, _, _) = decode(&snapshot(address, "/camera/mjpeg_stream").await);
    assert_eq!(width, 640);
}

#[test]
fn configuration_mistakes_are_named() {
    let unknown = config_error(r#"{"things": {"cam": "usb_camera"}}"#);
    assert!(
        unknown.contains("usb_camera") && unknown.contains("simulated_camera"),
        "{unknown}"
    );
    let kwargs = config_error(
        r#"{"things": {"cam": {"class": "simulated_camera", "kwargs": {"fps": "fast"}}}}"#,
    );
    assert!(kwargs.contains("cam") && kwargs.contains("fps"), "{kwargs}");
    let no_stage = config_error(
        r#"{"things": {"cam": {"class": "simulated_camera", "kwargs": {"stage": true}}}}"#,
    );
    assert!(no_stage.contains("slot \"stage\""), "{no_stage}");
    let wrong_slot = config_error(
        r#"{"things": {
            "s": "simulated_stage",
            "cam": {"class": "simulated_camera", "kwargs": {"stage": true}, "thing_slots": {"stage": "nope"}}
        }}"#,
    );
    assert!(wrong_slot.contains("\"nope\""), "{wrong_slot}");
    let two_stages = config_error(
        r#"{"things": {
            "a": "simulated_stage", "b": "simulated_stage",
            "cam": {"class": "simulated_camera", "kwargs": {"stage": true}}
        }}"#,
    );
    assert!(two_stages.contains("thing_slots"), "{two_stages}");
    let named = labthings::server::ServerConfig::from_json(
        r#"{"things": {
            "a": "simulated_stage", "b": "simulated_stage",
            "cam": {"class": "simulated_camera", "kwargs": {"stage": true}, "thing_slots": {"stage": "b"}}
        }, "api_prefix": "/api"}"#,
    )
    .unwrap();
    crate::support::Captured::start();
    let server = things::registry()
        .builder(&named)
        .unwrap()
        .without_settings_folder()
        .build()
        .unwrap();
    assert!(server.openapi()["paths"]["/api/b/position"].is_object());
}

/// A port already in use (issue 15, point 3): the process ends at once with a sentence naming
/// the address and how to choose another, not a structure dump; nothing else was set up to log.
#[tokio::test]
async fn a_port_in_use_is_a_clear_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cwd = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(crate::support::example_binary("microscope"))
        .current_dir(cwd.path())
        .args(["--port", &port.to_string()])
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), output)
        .await
        .expect("it ends at once")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("--port"), "{stderr}");
    assert!(!stderr.contains("Os {"), "no structure dump: {stderr}");
}

/// A camera too large to allocate in the example's configuration (issue 28, point 8): the
/// process ends at once with a one-line configuration error, before serving, not an abort.
#[tokio::test]
async fn a_huge_camera_size_is_a_one_line_configuration_error() {
    let cwd = tempfile::tempdir().unwrap();
    let config = cwd.path().join("huge.json");
    std::fs::write(
        &config,
        r#"{"things": {"camera": {"class": "simulated_camera", "kwargs": {"width": 100000, "height": 100000}}}}"#,
    )
    .unwrap();
    let output = tokio::process::Command::new(crate::support::example_binary("microscope"))
        .current_dir(cwd.path())
        .args(["--port", "0", "--config"])
        .arg(&config)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), output)
        .await
        .expect("it ends at once")
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "an error exit, not an abort");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("kwargs `width` is 100000; a camera's width is 16 to 8192 pixels"),
        "{stderr}"
    );
    assert!(!stderr.contains("serving on"), "{stderr}");
}

#[test]
fn a_servers_error_reads_as_a_sentence_in_main() {
    let error = labthings::server::ServerError::Bind {
        address: "127.0.0.1:5000".parse().unwrap(),
        error: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    };
    // What `main() -> Result<(), ServerError>` prints.
    let printed = format!("{error:?}");
    assert!(
        printed.starts_with("cannot listen on 127.0.0.1:5000"),
        "{printed}"
    );
    assert!(printed.contains("AirPlay"), "{printed}");
}

/// A server whose application set up no logging still says where it serves and logs each
/// request (issue 15, point 2): the examples set none up.
#[tokio::test]
async fn a_server_logs_to_the_terminal_without_being_told_to() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("config.json");
    std::fs::write(&config, crate::example_things::MICROSCOPE_CONFIG).unwrap();
    let process = crate::support::MicroscopeProcess::start(&config).await;
    assert!(process.log().contains("serving on http://"));
    let url = format!("http://{}/stage/position", process.address);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    crate::support::eventually(|| process.log().contains("/stage/position")).await;
}

/// `/openapi.json` names the application, not the framework (issue 15, point 9): from the
/// configuration file (the microscope's), or from the builder.
#[tokio::test]
async fn the_openapi_document_names_the_application() {
    let address = crate::support::spawn_configured(
        crate::example_things::MICROSCOPE_CONFIG,
        Default::default(),
    )
    .await;
    let document: serde_json::Value = reqwest::get(format!("http://{address}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["info"]["title"], "Simulated microscope");
    assert_eq!(document["info"]["version"], "1.0.0");
    assert!(
        document["info"]["description"]
            .as_str()
            .unwrap()
            .contains("stage")
    );

    let server = crate::support::builder()
        .title("Spectrometer")
        .version("2.3.4")
        .description("Ocean optics, on the bench.")
        .build()
        .unwrap();
    let document = server.openapi();
    let info = &document["info"];
    assert_eq!(
        (&info["title"], &info["version"], &info["description"]),
        (
            &"Spectrometer".into(),
            &"2.3.4".into(),
            &"Ocean optics, on the bench.".into()
        )
    );
}

/// The configuration files the suites and the deployment use are read as strictly as a user's
/// (issue 23): each loads, and each Thing's `kwargs` are ones its type reads.
#[test]
fn every_configuration_file_in_the_repository_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut loaded = 0;
    for folder in ["tests/browser", "tests/deploy", "deploy"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let is_config = path.extension().is_some_and(|e| e == "json")
                && std::fs::read_to_string(&path).is_ok_and(|text| text.contains("\"things\""));
            if !is_config {
                continue;
            }
            let config = labthings::server::ServerConfig::from_file(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let builder = crate::example_things::registry()
                .builder(&config)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            drop(builder);
            loaded += 1;
        }
    }
    assert!(loaded >= 3, "{loaded} configuration files");
}
