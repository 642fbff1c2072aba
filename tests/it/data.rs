//! Data a scientist keeps: N-D array outputs as `.npy` and TIFF.

use std::time::Duration;

use serde_json::Value;

use crate::support::{bytes_of, json_of, spawn_microscope};

/// Reads a `.npy` (version 1.0, as the server writes it): (header, data bytes).
fn parse_npy(bytes: &[u8]) -> (String, &[u8]) {
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"), "not .npy");
    let length = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + length].to_vec()).unwrap();
    (header, &bytes[10 + length..])
}

#[tokio::test]
async fn an_array_output_has_its_shape_and_dtype_and_is_served_as_npy_and_tiff() {
    let address = spawn_microscope(labthings::serve::ConnectionOptions::default()).await;
    let http = reqwest::Client::new();
    let invocation = json_of(
        http.post(format!("http://{address}/camera/capture_array?wait=10"))
            .timeout(Duration::from_secs(20)),
    )
    .await;
    assert_eq!(invocation["status"], "completed", "{invocation}");
    let output = &invocation["output"];
    assert_eq!(output["shape"], serde_json::json!([480, 640]));
    assert_eq!(output["dtype"], "uint16");
    assert_eq!(output["media_type"], "application/x-npy");
    let href = output["href"].as_str().unwrap();

    let npy = http.get(href).send().await.unwrap();
    assert_eq!(npy.headers()["content-type"], "application/x-npy");
    let npy = npy.bytes().await.unwrap();
    let (header, data) = parse_npy(&npy);
    assert!(
        header.contains("'descr': '<u2'") && header.contains("'shape': (480, 640)"),
        "{header}"
    );
    assert_eq!(data.len(), 480 * 640 * 2);
    let values: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    assert!(values.iter().any(|&v| v > 255), "16-bit values, not 8-bit");

    // The same array as TIFF, by Accept and by extension: 16-bit, equal value for value.
    for request in [
        http.get(href).header("accept", "image/tiff"),
        http.get(format!("{href}.tiff")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["content-type"], "image/tiff");
        let tiff = response.bytes().await.unwrap();
        let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(tiff.to_vec())).unwrap();
        assert_eq!(decoder.dimensions().unwrap(), (640, 480));
        match decoder.read_image().unwrap() {
            tiff::decoder::DecodingResult::U16(pixels) => assert_eq!(pixels, values),
            other => panic!("not 16-bit: {other:?}"),
        }
    }
    // Accept as RFC 9110 reads it (issue 28, point 13): media types in any case, and q=0 is
    // "not this one".
    let served_as = |accept: &'static str| {
        let request = http.get(href).header("accept", accept);
        async move {
            let response = request.send().await.unwrap();
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(served_as("IMAGE/TIFF").await, "image/tiff");
    assert_eq!(served_as("image/tiff;q=0").await, "application/x-npy");
    assert_eq!(
        served_as("image/tiff;q=0.3, application/x-npy;q=0.8").await,
        "application/x-npy"
    );
    let explicit = bytes_of(http.get(format!("{href}.npy"))).await;
    assert_eq!(explicit, npy);
    let unknown = http.get(format!("{href}.png")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    // The output route and the one-call form serve the array too.
    let id = invocation["id"].as_str().unwrap();
    let output = http
        .get(format!("http://{address}/action_invocations/{id}/output"))
        .send()
        .await
        .unwrap();
    assert_eq!(output.headers()["content-type"], "application/x-npy");
    let run = http
        .post(format!("http://{address}/camera/capture_array/run"))
        .header("accept", "image/tiff")
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 200);
    assert_eq!(run.headers()["content-type"], "image/tiff");
    // The TD describes the output as an array link.
    let td = json_of(http.get(format!("http://{address}/camera/"))).await;
    let schema = &td["actions"]["capture_array"]["output"];
    assert!(schema["properties"]["shape"].is_object(), "{schema}");
    assert!(schema["properties"]["dtype"].is_object(), "{schema}");
}

#[test]
fn a_one_dimensional_array_is_no_image() {
    let line = labthings::NdArray::new([4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    assert!(line.to_tiff().is_none());
    assert_eq!(line.dtype(), "float32");
}

/// The microscope with its data in a folder of the test's own; its address.
async fn microscope_with_data(folder: &std::path::Path) -> std::net::SocketAddr {
    let mut config: Value = serde_json::from_str(crate::example_things::MICROSCOPE_CONFIG).unwrap();
    config["data_folder"] = Value::from(folder.to_str().unwrap());
    crate::support::spawn_configured(
        &config.to_string(),
        labthings::serve::ConnectionOptions::default(),
    )
    .await
}

/// The frames of an AVI as the server writes it (RIFF, then `00dc` chunks after `movi`).
fn avi_frames(avi: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&avi[..4], b"RIFF");
    assert_eq!(&avi[8..12], b"AVI ");
    let movi = avi
        .windows(4)
        .position(|w| w == b"movi")
        .expect("a movi list")
        + 4;
    let mut frames = Vec::new();
    let mut at = movi;
    while at + 8 <= avi.len() && &avi[at..at + 4] == b"00dc" {
        let size = u32::from_le_bytes(avi[at + 4..at + 8].try_into().unwrap()) as usize;
        frames.push(&avi[at + 8..at + 8 + size]);
        at += 8 + size + size % 2;
    }
    frames
}

/// Runs an action to its end (polling), returns the final invocation.
async fn finished(http: &reqwest::Client, invocation: Value) -> Value {
    let href = invocation["href"].as_str().unwrap().to_owned();
    for _ in 0..600 {
        let now = json_of(http.get(&href)).await;
        if !matches!(now["status"].as_str(), Some("pending" | "running")) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the invocation did not finish");
}

#[tokio::test]
async fn a_recording_keeps_the_frames_before_the_call_at_a_capped_rate_with_an_index() {
    let folder = tempfile::tempdir().unwrap();
    let address = microscope_with_data(folder.path()).await;
    let http = reqwest::Client::new();
    // Arm two seconds of pre-trigger history, and let the ring buffer fill with more than a
    // second of frames.
    let armed = http
        .put(format!("http://{address}/camera/history_seconds"))
        .json(&2.0)
        .send()
        .await
        .unwrap();
    assert!(armed.status().is_success(), "{}", armed.status());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let called = chrono::Utc::now();
    let invocation = json_of(
        http.post(format!("http://{address}/camera/record_mjpeg_stream"))
            .json(&serde_json::json!({"seconds": 2, "max_fps": 10, "pre_seconds": 1})),
    )
    .await;
    let done = finished(&http, invocation).await;
    assert_eq!(done["status"], "completed", "{done}");
    let output = &done["output"];
    assert_eq!(output["media_type"], "video/x-msvideo");
    let href = output["href"].as_str().unwrap();
    let avi = bytes_of(http.get(href)).await;
    // Ranges of the file as RFC 9110 reads them (issue 28, point 12): a last position past
    // any file is clamped (206, to the end), an unknown unit is ignored (200, the whole file).
    let clamped = http
        .get(href)
        .header("range", "bytes=0-99999999999999999999999")
        .send()
        .await
        .unwrap();
    assert_eq!(clamped.status(), 206);
    assert_eq!(clamped.bytes().await.unwrap(), avi);
    let part = http
        .get(href)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), avi.slice(0..100));
    let other_unit = http
        .get(href)
        .header("range", "items=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(other_unit.status(), 200);
    assert_eq!(other_unit.bytes().await.unwrap().len(), avi.len());
    let frames = avi_frames(&avi);
    // Three seconds (one before the call, two after) at most 10 frames a second: the cap
    // holds. How many the camera made in that time depends on the machine's load (a loaded
    // 2-core machine made 18), so only the cap is asserted.
    assert!((2..=31).contains(&frames.len()), "{} frames", frames.len());
    assert!(
        frames
            .iter()
            .all(|f| f.starts_with(&[0xFF, 0xD8]) && f.ends_with(&[0xFF, 0xD9]))
    );

    let recordings = folder.path().join("recordings");
    let file = |extension: &str| {
        std::fs::read_dir(&recordings)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|e| e == extension))
            .unwrap()
    };
    assert_eq!(
        std::fs::read(file("avi")).unwrap(),
        avi.to_vec(),
        "served as written"
    );
    let index = std::fs::read_to_string(file("csv")).unwrap();
    let rows: Vec<Vec<&str>> = index
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        index.lines().next(),
        Some("frame,stream_index,timestamp,bytes")
    );
    assert_eq!(rows.len(), frames.len());
    let indices: Vec<u64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    for (row, frame) in rows.iter().zip(&frames) {
        assert_eq!(row[3].parse::<usize>().unwrap(), frame.len());
    }
    // The recording starts with frames from before the call, within its `pre_seconds`.
    assert!(
        times[0] < called,
        "the first frames are from before the call"
    );
    assert!(
        times[0] >= called - chrono::Duration::milliseconds(1100),
        "no frame older than pre_seconds: {} before the call",
        called - times[0]
    );
    // The instrument's state at the start, beside the video.
    let about: Value =
        serde_json::from_str(&std::fs::read_to_string(file("json")).unwrap()).unwrap();
    assert_eq!(about["frames"], frames.len());
    assert!(
        about["snapshot"]["things"]["stage"]["position"].is_array(),
        "{about}"
    );
    assert!(
        about["snapshot"]["things"]["camera"]["gain"].is_number(),
        "{about}"
    );
}

#[tokio::test]
async fn cancelling_a_recording_keeps_what_was_recorded_and_a_viewer_keeps_its_rate() {
    let folder = tempfile::tempdir().unwrap();
    let address = microscope_with_data(folder.path()).await;
    let http = reqwest::Client::new();
    let invocation = json_of(
        http.post(format!("http://{address}/camera/record_mjpeg_stream"))
            .json(&serde_json::json!({"seconds": null})),
    )
    .await;
    // A viewer watching while the recording runs.
    let mut viewer =
        crate::support::MjpegReader::connect(&format!("http://{address}/camera/mjpeg_stream"))
            .await;
    let mut seen = 0;
    let watching = tokio::time::Instant::now();
    while watching.elapsed() < Duration::from_secs(2) {
        if viewer.next_part(Duration::from_secs(2)).await.is_some() {
            seen += 1;
        }
    }
    let href = invocation["href"].as_str().unwrap();
    let cancel = http.delete(href).send().await.unwrap();
    assert_eq!(cancel.status(), 204);
    let done = finished(&http, invocation.clone()).await;
    assert_eq!(
        done["status"], "completed",
        "stopped early, with its output: {done}"
    );
    let avi = bytes_of(http.get(done["output"]["href"].as_str().unwrap())).await;
    let recorded = avi_frames(&avi).len();
    // The viewer's first frame is the newest one at once; the recording starts with the next
    // (and, on a busy machine, a little later): a few frames of slack.
    assert!(
        recorded + 5 >= seen,
        "recorded {recorded}, the viewer saw {seen} in less time"
    );
    // The viewer kept up with the camera while the recording ran: the recording took every
    // frame of a slightly longer time, the viewer nearly as many.
    assert!(
        seen * 10 >= recorded * 7,
        "the viewer saw {seen} frames, the recording {recorded}"
    );
}

#[tokio::test]
async fn a_recording_with_nowhere_to_go_ends_in_a_clear_error() {
    let folder = tempfile::tempdir().unwrap();
    let blocked = folder.path().join("a-file");
    std::fs::write(&blocked, "not a folder").unwrap();
    let address = microscope_with_data(&blocked).await;
    let http = reqwest::Client::new();
    let invocation = json_of(
        http.post(format!(
            "http://{address}/camera/record_mjpeg_stream?wait=10"
        ))
        .json(&serde_json::json!({"seconds": 1})),
    )
    .await;
    let done = finished(&http, invocation).await;
    assert_eq!(done["status"], "error");
    let detail = done["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("a-file"), "{detail}");
    // Bad arguments are a 422 naming the field, not an error invocation.
    let response = http
        .post(format!("http://{address}/camera/record_mjpeg_stream"))
        .json(&serde_json::json!({"seconds": -3}))
        .send()
        .await
        .unwrap();
    let problem = crate::support::problem(response, 422).await;
    assert!(problem.to_string().contains("seconds"), "{problem}");
}

#[tokio::test]
async fn a_capture_carries_every_thing_s_state_in_its_jpeg_and_its_output() {
    let address = spawn_microscope(labthings::serve::ConnectionOptions::default()).await;
    let http = reqwest::Client::new();
    let moved = http
        .put(format!("http://{address}/stage/position"))
        .json(&serde_json::json!([12, 34, 5]))
        .send()
        .await
        .unwrap();
    assert!(moved.status().is_success());
    let invocation = json_of(http.post(format!("http://{address}/camera/capture?wait=10"))).await;
    assert_eq!(invocation["status"], "completed", "{invocation}");
    let metadata = &invocation["output"]["metadata"];
    assert_eq!(
        metadata["things"]["stage"]["position"],
        serde_json::json!([12, 34, 5])
    );
    assert!(
        metadata["things"]["camera"]["exposure_ms"].is_number(),
        "{metadata}"
    );
    assert!(metadata["timestamp"].is_string());
    let jpeg = bytes_of(http.get(invocation["output"]["href"].as_str().unwrap())).await;
    // The comment segment right after the start marker, holding the same state.
    assert_eq!(&jpeg[..4], &[0xFF, 0xD8, 0xFF, 0xFE]);
    let length = u16::from_be_bytes([jpeg[4], jpeg[5]]) as usize;
    let comment = std::str::from_utf8(&jpeg[6..4 + length]).unwrap();
    let stored: Value =
        serde_json::from_str(comment.strip_prefix("labthings-snapshot ").unwrap()).unwrap();
    assert_eq!(&stored, metadata);
    // Still a JPEG any decoder reads.
    let mut decoder = zune_jpeg::JpegDecoder::new(jpeg.as_ref());
    decoder.decode().unwrap();
    assert_eq!(decoder.dimensions(), Some((640, 480)));
}

#[tokio::test]
async fn recordings_are_capped_per_stream_and_per_server_and_the_next_is_told_to_retry() {
    let folder = tempfile::tempdir().unwrap();
    let mut config: Value = serde_json::from_str(crate::example_things::MICROSCOPE_CONFIG).unwrap();
    config["data_folder"] = Value::from(folder.path().to_str().unwrap());
    let small = serde_json::json!({"class": "simulated_camera",
        "kwargs": {"width": 64, "height": 48, "fps": 10}});
    config["things"]["camera2"] = small.clone();
    config["things"]["camera3"] = small;
    config["max_recordings"] = Value::from(2);
    config["max_recordings_per_stream"] = Value::from(1);
    let address = crate::support::spawn_configured(
        &config.to_string(),
        labthings::serve::ConnectionOptions::default(),
    )
    .await;
    let http = reqwest::Client::new();
    let record = |thing: &str, input: Value| {
        http.post(format!("http://{address}/{thing}/record_mjpeg_stream"))
            .json(&input)
            .send()
    };
    let until_cancelled = serde_json::json!({"seconds": null});
    let first = record("camera", until_cancelled.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The same stream again: its own cap.
    let refused = record("camera", until_cancelled.clone()).await.unwrap();
    assert_eq!(refused.headers()["retry-after"], "5");
    let problem = crate::support::problem(refused, 503).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("max_recordings_per_stream"), "{detail}");
    // Bad input is still named first (422), whatever the caps.
    let invalid = record("camera", serde_json::json!({"seconds": -1}))
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    // Another stream: the server's second.
    let second = record("camera2", until_cancelled.clone()).await.unwrap();
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.unwrap();
    // A third stream: the server's cap.
    let refused = record("camera3", until_cancelled.clone()).await.unwrap();
    assert_eq!(refused.headers()["retry-after"], "5");
    let problem = crate::support::problem(refused, 503).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("`max_recordings`"), "{detail}");
    // A recording that ends gives its place back.
    let cancel = http
        .delete(first["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 204);
    finished(&http, first).await;
    let third = record("camera3", serde_json::json!({"seconds": 0.5}))
        .await
        .unwrap();
    assert_eq!(third.status(), 201);
    let third: Value = third.json().await.unwrap();
    assert_eq!(finished(&http, third).await["status"], "completed");
    http.delete(second["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    finished(&http, second).await;
}

#[tokio::test]
async fn outputs_past_the_memory_budget_are_dropped_oldest_first_and_their_links_answer_410() {
    let mut config: Value = serde_json::from_str(crate::example_things::MICROSCOPE_CONFIG).unwrap();
    // Room for about two captures (each a JPEG of some 20-60 KB with its state).
    config["invocation_output_budget"] = Value::from(100_000);
    let address = crate::support::spawn_configured(
        &config.to_string(),
        labthings::serve::ConnectionOptions::default(),
    )
    .await;
    let http = reqwest::Client::new();
    let mut captures = Vec::new();
    for _ in 0..6 {
        let invocation = json_of(http.post(format!("http://{address}/camera/capture"))).await;
        let done = finished(&http, invocation).await;
        assert_eq!(done["status"], "completed", "{done}");
        captures.push(done);
    }
    let text = crate::support::metrics_text(&http, &format!("http://{address}")).await;
    let held = crate::support::sample(&text, "labthings_invocation_output_bytes");
    let newest = bytes_of(http.get(captures[5]["output"]["href"].as_str().unwrap())).await;
    assert!(
        held <= 100_000.0 + newest.len() as f64 + 10_000.0,
        "{held} bytes held"
    );
    // The oldest went first: its invocation stays, still linking to its output, which
    // answers 410 with a problem naming the budget.
    let oldest = json_of(http.get(captures[0]["href"].as_str().unwrap())).await;
    assert_eq!(oldest["status"], "completed");
    let link = oldest["output"]["href"].as_str().unwrap();
    let gone = http.get(link).send().await.unwrap();
    let problem = crate::support::problem(gone, 410).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("invocation_output_budget"),
        "{problem}"
    );
    let output = http
        .get(format!(
            "http://{address}/action_invocations/{}/output",
            oldest["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(output.status(), 410);
    // The newest are kept whole.
    assert_eq!(&newest[..2], b"\xff\xd8", "a JPEG");
    let before_newest = http
        .get(captures[4]["output"]["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(before_newest.status(), 200);
}

#[tokio::test]
async fn with_nobody_watching_and_no_history_armed_the_camera_does_no_work() {
    let folder = tempfile::tempdir().unwrap();
    let address = microscope_with_data(folder.path()).await;
    let http = reqwest::Client::new();
    let base = format!("http://{address}");
    let added = || async {
        let text = crate::support::metrics_text(&http, &base).await;
        crate::support::sample(
            &text,
            r#"labthings_stream_frames_added_total{thing="camera",stream="mjpeg_stream"}"#,
        )
    };
    let captured = || async { json_of(http.get(format!("{base}/camera/frames_captured"))).await };
    // Nobody watches, records or captures, and no history is armed (the default): over 5 s
    // the camera renders nothing and the pipeline encodes nothing.
    let (frames, rendered) = (added().await, captured().await);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(added().await, frames, "frames encoded with nobody watching");
    assert_eq!(
        captured().await,
        rendered,
        "frames rendered with nobody watching"
    );
    // A viewer arriving gets a frame at once (the newest raw frame, encoded for it), then
    // live ones.
    let mut viewer =
        crate::support::MjpegReader::connect(&format!("{base}/camera/mjpeg_stream")).await;
    let asked = std::time::Instant::now();
    assert!(viewer.next_part(Duration::from_secs(10)).await.is_some());
    eprintln!(
        "first frame {} ms after the viewer came",
        asked.elapsed().as_millis()
    );
    assert!(viewer.next_part(Duration::from_secs(10)).await.is_some());
    drop(viewer);

    // More pre-trigger history than is armed is refused before anything runs, saying how
    // much is.
    let refused = http
        .post(format!("{base}/camera/record_mjpeg_stream"))
        .json(&serde_json::json!({"seconds": 1, "pre_seconds": 2}))
        .send()
        .await
        .unwrap();
    let problem = crate::support::problem(refused, 422).await;
    assert_eq!(
        problem["invalid-params"][0]["name"], "pre_seconds",
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("none is armed"),
        "{problem}"
    );
    // Armed: the camera works with nobody watching, and a recording asking for more than
    // the ring buffer holds yet says how much there was.
    let armed = http
        .put(format!("{base}/camera/history_seconds"))
        .json(&3.0)
        .send()
        .await
        .unwrap();
    assert!(armed.status().is_success());
    let frames = added().await;
    crate::support::eventually_async(|| async { added().await > frames + 5.0 }).await;
    let short = json_of(
        http.post(format!("{base}/camera/record_mjpeg_stream"))
            .json(&serde_json::json!({"seconds": 0.5, "pre_seconds": 3})),
    )
    .await;
    let done = finished(&http, short).await;
    assert_eq!(done["status"], "completed", "{done}");
    let log = done["log"].to_string();
    assert!(log.contains("the stream held"), "{log}");
    // Disarmed again: the work stops.
    http.put(format!("{base}/camera/history_seconds"))
        .json(&0.0)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frames = added().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(added().await, frames, "frames encoded after disarming");
}
