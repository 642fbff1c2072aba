//! GenICam cameras through Aravis (issue 24, feature `aravis`): against Aravis's in-process
//! fake camera, and against its fake GigE Vision camera (`arv-fake-gv-camera-0.8`) run as a
//! separate process on 127.0.0.1, spoken to over real GVCP/GVSP. Features read back through
//! Aravis's own command-line tool (`arv-tool-0.8`), not through our properties.
//!
//! The fake cameras draw a diagonal ramp: Mono8 pixel (x, y) of frame `id` is
//! `(x + y + id) % 255`; Mono16 is `(256 * (x + y + id)) % 65535`; RGB8 is that index through
//! a "jet" colour map; and the Bayer formats are the colour map's channels laid out in a
//! mosaic (with red and blue where the format's name says blue and red: see `bayer_pixel`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use labthings::genicam::{GenicamCamera, GenicamOptions};
use serde_json::{Value, json};

use crate::support::{MjpegReader, json_of, problem, spawn_thing_server};

/// One GenICam test at a time: the fake GigE camera takes the GVCP port of 127.0.0.1, and
/// the in-process fake camera is one per process.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serves one camera made from `options` (JSON, as a configuration file's `kwargs`).
async fn serve(options: Value) -> (String, tokio::sync::oneshot::Sender<()>) {
    serve_with(options, crate::support::builder()).await
}

async fn serve_with(
    options: Value,
    builder: labthings::server::ThingServerBuilder,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let options: GenicamOptions = serde_json::from_value(options).unwrap();
    let camera = GenicamCamera::open(options).expect("the camera opens");
    let server = builder.add_thing("camera", camera).build().unwrap();
    let (address, stop, _task) = spawn_thing_server(server).await;
    (format!("http://{address}/camera"), stop)
}

async fn put(http: &reqwest::Client, url: String, value: Value) -> reqwest::Response {
    http.put(url).json(&value).send().await.unwrap()
}

async fn write(http: &reqwest::Client, base: &str, property: &str, value: Value) {
    let response = put(http, format!("{base}/{property}"), value.clone()).await;
    assert_eq!(
        response.status(),
        204,
        "{property} = {value}: {}",
        response.text().await.unwrap()
    );
}

async fn read(http: &reqwest::Client, base: &str, property: &str) -> Value {
    json_of(http.get(format!("{base}/{property}"))).await
}

/// The fake cameras' colour map ("jet"): index 0-255 to red, green, blue.
fn jet(index: u8) -> [u8; 3] {
    let i = i32::from(index);
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    match i {
        0..=31 => [0, 0, clamp(132 + 4 * i)],
        32..=95 => [0, clamp(4 * (i - 31)), 255],
        96..=159 => [clamp(4 * (i - 95)), 255, clamp(256 - 4 * (i - 95))],
        160..=223 => [255, clamp(256 - 4 * (i - 159)), 0],
        _ => [clamp(256 - 4 * (i - 223)), 0, 0],
    }
}

/// The ramp's index at (x, y) of frame `id`.
fn ramp(x: usize, y: usize, id: u64) -> u8 {
    ((x as u64 + y as u64 + id) % 255) as u8
}

/// What a frame should look like once decoded, as RGB, for frame `id`.
fn expected(format: &str, x: usize, y: usize, id: u64) -> [u8; 3] {
    let index = ramp(x, y, id);
    match format {
        "Mono8" => [index; 3],
        "Mono16" => {
            let value = (256 * (x as u64 + y as u64 + id)) % 65535;
            // Shown through the format's whole range, 0-65535.
            [(value * 255 / 65535) as u8; 3]
        }
        "RGB8" => jet(index),
        // BayerRG8 should have red at (even, even); Aravis 0.8.26's fake camera puts the
        // colour map's blue there and its red at (odd, odd). Demosaiced by the name, that
        // is the colour map with red and blue swapped.
        "BayerRG8" => {
            let [r, g, b] = jet(index);
            [b, g, r]
        }
        other => panic!("no pattern for {other}"),
    }
}

/// Decodes a JPEG to RGB (a grey one too).
fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut decoder = zune_jpeg::JpegDecoder::new(jpeg);
    let pixels = decoder.decode().expect("a valid JPEG");
    let (width, height) = decoder.dimensions().unwrap();
    let rgb = if pixels.len() == width * height {
        pixels.iter().flat_map(|&v| [v; 3]).collect()
    } else {
        pixels
    };
    (width, height, rgb)
}

/// The mean difference between a decoded frame and the pattern of the frame id that fits
/// it best (the stream does not carry the camera's frame id), leaving out the pixels next to
/// the ramp's wrap from 254 to 0 (a step JPEG blurs) and the frame's border (where a
/// demosaic has half its neighbours).
fn misfit(format: &str, width: usize, height: usize, rgb: &[u8]) -> (f64, u64) {
    let near_wrap = |index: u8| !(3..=251).contains(&index);
    (0..255u64)
        .map(|id| {
            let (mut sum, mut count) = (0u64, 0u64);
            for y in 1..height - 1 {
                for x in 1..width - 1 {
                    if near_wrap(ramp(x, y, id)) {
                        continue;
                    }
                    let want = expected(format, x, y, id);
                    let got = &rgb[(y * width + x) * 3..(y * width + x) * 3 + 3];
                    sum += want
                        .iter()
                        .zip(got)
                        .map(|(a, b)| u64::from(a.abs_diff(*b)))
                        .sum::<u64>();
                    count += 3;
                }
            }
            (sum as f64 / count.max(1) as f64, id)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap()
}

#[tokio::test]
async fn genicam_each_pixel_format_streams_the_fake_cameras_pattern() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (base, _stop) = serve(json!({"fake": true, "quality": 95, "idle_seconds": 0.5})).await;
    let http = reqwest::Client::new();
    write(&http, &base, "width", json!(64)).await;
    write(&http, &base, "height", json!(48)).await;
    for format in ["Mono8", "Mono16", "RGB8", "BayerRG8"] {
        write(&http, &base, "pixel_format", json!(format)).await;
        let mut viewer = MjpegReader::connect(&format!("{base}/mjpeg_stream")).await;
        // The first part can be a frame kept from before the change.
        for _ in 0..2 {
            viewer.next_part(Duration::from_secs(20)).await.unwrap();
        }
        let part = viewer.next_part(Duration::from_secs(20)).await.unwrap();
        let (width, height, rgb) = decode(&part.body);
        assert_eq!(
            (width, height),
            (64, 48),
            "{format}: the frame has the region's size"
        );
        let (error, _) = misfit(format, width, height, &rgb);
        assert!(
            error < 4.0,
            "{format}: {error:.2} grey levels from the fake camera's pattern"
        );
        // The same frame compared with another format's pattern does not fit: the check
        // tells formats apart.
        let other = if format == "RGB8" { "BayerRG8" } else { "RGB8" };
        let (wrong, _) = misfit(other, width, height, &rgb);
        eprintln!("{format}: {error:.2} from its pattern, {wrong:.2} from {other}'s");
        assert!(
            wrong > 3.0 * error.max(1.0),
            "{format} against {other}'s pattern: {wrong:.2}"
        );
    }
}

#[tokio::test]
async fn genicam_snapshots_and_recordings_work_unchanged() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let builder = crate::support::builder().data_folder(data.path());
    let (base, _stop) = serve_with(json!({"fake": true, "idle_seconds": 0.5}), builder).await;
    let http = reqwest::Client::new();
    let snapshot = http
        .get(format!("{base}/mjpeg_stream/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(snapshot.headers()["content-type"], "image/jpeg");
    let (width, height, rgb) = decode(&snapshot.bytes().await.unwrap());
    assert_eq!((width, height), (512, 512));
    assert!(
        misfit("Mono8", width, height, &rgb).0 < 2.0,
        "the fake camera's ramp"
    );
    let invocation = json_of(
        http.post(format!("{base}/record_mjpeg_stream?wait=30"))
            .json(&json!({"seconds": 1}))
            .timeout(Duration::from_secs(40)),
    )
    .await;
    assert_eq!(invocation["status"], "completed", "{invocation}");
    let href = invocation["output"]["href"]
        .as_str()
        .expect("a link to the video");
    let video = http.get(href).send().await.unwrap().bytes().await.unwrap();
    assert!(
        video.starts_with(b"RIFF") && &video[8..12] == b"AVI ",
        "an AVI file"
    );
    // About a second at the fake camera's 25 fps: a JPEG a frame.
    let frames = video.windows(4).filter(|w| *w == b"00dc").count();
    assert!(frames >= 10, "{frames} frames recorded");
}

/// The `.npy` an invocation's output links to, as its header and its data.
async fn npy_of(http: &reqwest::Client, output: &Value) -> (String, Vec<u8>) {
    let href = output["href"].as_str().expect("an array link");
    let bytes = http.get(href).send().await.unwrap().bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"), "not .npy");
    let length = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + length].to_vec()).unwrap();
    (header, bytes[10 + length..].to_vec())
}

#[tokio::test]
async fn genicam_capture_array_keeps_mono16_as_the_camera_made_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (base, _stop) = serve(json!({"fake": true, "idle_seconds": 0.5})).await;
    let http = reqwest::Client::new();
    write(&http, &base, "pixel_format", json!("Mono16")).await;
    write(&http, &base, "width", json!(40)).await;
    write(&http, &base, "height", json!(30)).await;
    let invocation = json_of(
        http.post(format!("{base}/capture_array?wait=20"))
            .timeout(Duration::from_secs(30)),
    )
    .await;
    assert_eq!(invocation["status"], "completed", "{invocation}");
    let output = &invocation["output"];
    assert_eq!(output["dtype"], "uint16");
    assert_eq!(output["shape"], json!([30, 40]));
    assert_eq!(output["metadata"]["pixel_format"], "Mono16");
    let id = output["metadata"]["frame_id"]
        .as_u64()
        .expect("the camera's frame id");
    let (header, data) = npy_of(&http, output).await;
    assert!(header.contains("'descr': '<u2'"), "{header}");
    let values: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    // Every value as the fake camera computes it for that frame: all 16 bits kept.
    let camera: Vec<u16> = (0..30u64)
        .flat_map(|y| (0..40u64).map(move |x| ((256 * (x + y + id)) % 65535) as u16))
        .collect();
    assert_eq!(values, camera);
    assert!(values.iter().any(|v| v & 0xFF != 0), "the low byte is kept");
}

#[tokio::test]
async fn genicam_features_are_in_the_td_with_the_cameras_ranges_and_writes_are_checked() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (base, _stop) =
        serve(json!({"fake": true, "features": ["SensorWidth", "AcquisitionMode"]})).await;
    let http = reqwest::Client::new();
    let td = json_of(http.get(format!("{base}/"))).await;
    let properties = &td["properties"];
    let exposure = &properties["exposure_time"];
    assert_eq!(exposure["type"], "number");
    assert_eq!(
        (exposure["minimum"].as_f64(), exposure["maximum"].as_f64()),
        (Some(10.0), Some(10_000_000.0))
    );
    assert_eq!(exposure["unit"], "µs");
    assert!(
        exposure["description"]
            .as_str()
            .unwrap()
            .contains("ExposureTimeAbs")
    );
    let width = &properties["width"];
    assert_eq!(width["type"], "integer");
    assert_eq!(
        (width["minimum"].as_i64(), width["maximum"].as_i64()),
        (Some(1), Some(2048))
    );
    assert_eq!(properties["gain"]["maximum"], 10);
    assert_eq!(properties["binning_horizontal"]["maximum"], 16);
    assert_eq!(properties["acquisition_frame_rate"]["unit"], "Hz");
    let formats = properties["pixel_format"]["description"].as_str().unwrap();
    assert!(
        formats.contains("Mono8") && formats.contains("BayerRG8"),
        "{formats}"
    );
    assert!(
        properties["trigger_source"]["description"]
            .as_str()
            .unwrap()
            .contains("Software")
    );
    // The extra features: a read-only one is readOnly, an enumeration lists its entries.
    assert_eq!(properties["sensor_width"]["readOnly"], true);
    assert_eq!(read(&http, &base, "sensor_width").await, 2048);
    assert!(
        properties["acquisition_mode"]["description"]
            .as_str()
            .unwrap()
            .contains("SingleFrame")
    );

    // Out of the range in the TD: 422 naming the property.
    let body = problem(put(&http, format!("{base}/width"), json!(4096)).await, 422).await;
    assert_eq!(body["invalid-params"][0]["name"], "width");
    // Not one of the enumeration's entries: 422 naming the entries.
    let body = problem(
        put(&http, format!("{base}/pixel_format"), json!("Mono12")).await,
        422,
    )
    .await;
    assert_eq!(body["invalid-params"][0]["name"], "pixel_format");
    assert!(
        body["detail"].as_str().unwrap().contains("Mono16"),
        "{body}"
    );
    // Read-only: not writable.
    let refused = put(&http, format!("{base}/sensor_width"), json!(100)).await;
    assert_eq!(refused.status(), 405);
    // A value in range is written, and the property holds it.
    write(&http, &base, "offset_x", json!(17)).await;
    assert_eq!(read(&http, &base, "offset_x").await, 17);

    // A feature named in the options that the camera lacks: an error when it opens.
    let error = GenicamCamera::open(
        serde_json::from_value(json!({"fake": true, "features": ["NoSuchFeature"]})).unwrap(),
    )
    .err()
    .expect("a missing feature is refused");
    assert!(error.to_string().contains("NoSuchFeature"), "{error}");
}

#[tokio::test]
async fn genicam_nothing_is_acquired_while_nobody_watches() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (base, _stop) = serve(json!({"fake": true, "idle_seconds": 0.2})).await;
    let http = reqwest::Client::new();
    write(&http, &base, "width", json!(32)).await;
    write(&http, &base, "height", json!(32)).await;
    let frame_id = async || read(&http, &base, "last_frame_id").await.as_u64().unwrap();
    {
        let mut viewer = MjpegReader::connect(&format!("{base}/mjpeg_stream")).await;
        for _ in 0..5 {
            viewer.next_part(Duration::from_secs(20)).await.unwrap();
        }
    }
    crate::support::eventually_async(async || read(&http, &base, "acquiring").await == false).await;
    let before = frame_id().await;
    // Two seconds unwatched: 50 frames at the fake camera's 25 fps, were it acquiring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(read(&http, &base, "acquiring").await, false);
    let mut viewer = MjpegReader::connect(&format!("{base}/mjpeg_stream")).await;
    viewer.next_part(Duration::from_secs(20)).await.unwrap();
    viewer.next_part(Duration::from_secs(20)).await.unwrap();
    crate::support::eventually_async(async || frame_id().await != before).await;
    let after = frame_id().await;
    // The camera's own counter moved by the frames received since, not by two seconds' worth.
    assert!(
        after - before <= 10,
        "the camera made {} frames across the unwatched 2 s and the first frames after",
        after - before
    );
}

/// Aravis's fake GigE Vision camera, as a process of its own on 127.0.0.1.
struct FakeGigE(Child);

impl FakeGigE {
    fn start() -> Self {
        let child = Command::new("arv-fake-gv-camera-0.8")
            .args(["-i", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("arv-fake-gv-camera-0.8 runs (Debian's aravis-tools)");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for FakeGigE {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A feature's value read through Aravis's own tool, as another GVCP client.
fn arv_tool(feature: &str) -> String {
    let output = Command::new("arv-tool-0.8")
        .args(["-a", "127.0.0.1", "control", feature])
        .output()
        .expect("arv-tool-0.8 runs (Debian's aravis-tools-cli)");
    let text = String::from_utf8_lossy(&output.stdout);
    // "Width = 64 min:1 max:2048"
    text.split_once(" = ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
        .unwrap_or_else(|| {
            panic!(
                "arv-tool-0.8 said: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

/// Opens the fake GigE camera, retrying while its process starts.
async fn open_gige() -> GenicamCamera {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let options =
            serde_json::from_value(json!({"device": "127.0.0.1", "idle_seconds": 0.5})).unwrap();
        match tokio::task::spawn_blocking(move || GenicamCamera::open(options))
            .await
            .unwrap()
        {
            Ok(camera) => return camera,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not yet: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("the fake GigE camera does not open: {error}"),
        }
    }
}

#[tokio::test]
async fn genicam_gige_camera_streams_triggers_goes_away_and_comes_back() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut process = FakeGigE::start();
    let camera = open_gige().await;
    let server = crate::support::builder()
        .add_thing("camera", camera)
        .build()
        .unwrap();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let base = format!("http://{address}/camera");
    let http = reqwest::Client::new();

    // A write reaches the camera: Aravis's own tool reads it back from the camera.
    write(&http, &base, "width", json!(64)).await;
    write(&http, &base, "height", json!(48)).await;
    assert_eq!(arv_tool("Width"), "64");
    assert_eq!(arv_tool("Height"), "48");
    write(&http, &base, "acquisition_frame_rate", json!(10.0)).await;
    let rate: f64 = arv_tool("AcquisitionFrameRate").parse().unwrap();
    assert!((rate - 10.0).abs() < 0.01, "{rate}");

    // 30 complete frames at 10 fps over GigE Vision, none incomplete.
    let mut viewer = MjpegReader::connect(&format!("{base}/mjpeg_stream")).await;
    let before = read(&http, &base, "frames_received")
        .await
        .as_u64()
        .unwrap();
    for _ in 0..30 {
        let part = viewer.next_part(Duration::from_secs(20)).await.unwrap();
        let (width, height, rgb) = decode(&part.body);
        assert_eq!((width, height), (64, 48));
        assert!(misfit("Mono8", width, height, &rgb).0 < 6.0);
    }
    crate::support::eventually_async(async || {
        read(&http, &base, "frames_received")
            .await
            .as_u64()
            .unwrap()
            >= before + 30
    })
    .await;
    assert_eq!(read(&http, &base, "incomplete_frames").await, 0);
    let metrics = crate::support::metrics_text(&http, &format!("http://{address}")).await;
    assert!(
        metrics.contains("labthings_genicam_incomplete_frames_total{camera=\"127.0.0.1\"} 0"),
        "{metrics}"
    );

    // Software trigger: exactly one frame each.
    write(&http, &base, "trigger_mode", json!("On")).await;
    write(&http, &base, "trigger_source", json!("Software")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = read(&http, &base, "frames_received")
        .await
        .as_u64()
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let frame = json_of(http.post(format!("{base}/software_trigger/run"))).await;
        assert_eq!(frame["width"], 64, "{frame}");
        ids.push(frame["frame_id"].as_u64().unwrap());
    }
    assert!(
        ids.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "consecutive frames: {ids:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    crate::support::eventually_async(async || {
        read(&http, &base, "last_frame_id").await.as_u64() == ids.last().copied()
    })
    .await;
    assert_eq!(
        read(&http, &base, "frames_received")
            .await
            .as_u64()
            .unwrap(),
        received + 3,
        "three triggers, three frames"
    );
    // capture_array fires the trigger itself in this mode.
    let invocation = json_of(http.post(format!("{base}/capture_array?wait=20"))).await;
    assert_eq!(invocation["status"], "completed", "{invocation}");
    assert_eq!(
        invocation["output"]["metadata"]["frame_id"].as_u64(),
        Some(ids[2] + 1)
    );
    // So does capture: one more frame, a JPEG, its id in the output's metadata.
    let invocation = json_of(http.post(format!("{base}/capture?wait=20"))).await;
    assert_eq!(invocation["status"], "completed", "{invocation}");
    assert_eq!(
        invocation["output"]["metadata"]["frame_id"].as_u64(),
        Some(ids[2] + 2)
    );
    let jpeg =
        crate::support::bytes_of(http.get(invocation["output"]["href"].as_str().unwrap())).await;
    assert_eq!(decode(&jpeg).0, 64);
    write(&http, &base, "trigger_mode", json!("Off")).await;
    // The software trigger outside that mode: an error saying what to set.
    let refused = http
        .post(format!("{base}/software_trigger/run"))
        .send()
        .await
        .unwrap();
    let body = problem(refused, 409).await;
    assert!(
        body["detail"].as_str().unwrap().contains("trigger_mode"),
        "{body}"
    );

    // The camera goes away: `connected` goes false within 3 s, and writes get 503.
    viewer.next_part(Duration::from_secs(20)).await.unwrap();
    process.kill();
    let killed = Instant::now();
    crate::support::eventually_async(async || read(&http, &base, "connected").await == false).await;
    let noticed = killed.elapsed();
    eprintln!("the camera's loss was noticed in {noticed:?}");
    assert!(
        noticed < Duration::from_secs(3),
        "noticed after {noticed:?}"
    );
    let away = put(&http, format!("{base}/gain"), json!(2)).await;
    problem(away, 503).await;

    // It comes back: the same viewer gets frames again, with the region set as before.
    let _process = FakeGigE::start();
    crate::support::eventually_async(async || read(&http, &base, "connected").await == true).await;
    let part = viewer.next_part(Duration::from_secs(30)).await.unwrap();
    let (width, height, _) = decode(&part.body);
    assert_eq!((width, height), (64, 48), "the region is set again");
    assert_eq!(arv_tool("Width"), "64");
    assert_eq!(arv_tool("TriggerMode"), "Off");
}
