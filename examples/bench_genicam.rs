//! The GenICam benchmark (issue 24): a GigE Vision camera on loopback (Aravis's fake camera,
//! `arv-fake-gv-camera-0.8 -i 127.0.0.1`, started by `bench/genicam.sh`) streamed through
//! [`GenicamCamera`] to one viewer, at its highest rate, for each configuration asked.
//!
//! ```text
//! cargo run --release --features aravis,turbojpeg --example bench_genicam -- \
//!     [--seconds 5] [--device 127.0.0.1] [Mono16:2048x2048 Mono8:1920x1080 ...]
//! ```
//!
//! Prints one JSON line per configuration: frames received per second (and incomplete), the
//! process's CPU per frame split by thread into receiving (Aravis's stream thread and ours,
//! which copies each buffer into a frame) and window + encode (the frame pipeline's workers),
//! the rest (the server's runtime), and the viewer's latency from each frame's buffer
//! timestamp to its arrival (p50, p99).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use labthings::genicam::{GenicamCamera, GenicamOptions};
use serde_json::json;

/// CPU time (user + system) of each of this process's threads, by name, in ms.
fn cpu_by_thread() -> BTreeMap<(u32, String), f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        let tid = task.file_name().to_string_lossy().parse().unwrap_or(0);
        // USER_HZ is 100 on every Linux this runs on.
        out.insert((tid, name), ticks as f64 * 10.0);
    }
    out
}

/// Which part of the path a thread belongs to.
fn role(name: &str) -> &'static str {
    if name.starts_with("labthings-encod") {
        "encode"
    } else if name.starts_with("genicam")
        || name.contains("arv")
        || name.contains("gv")
        || name.contains("stream")
    {
        "receive"
    } else if name.starts_with("tokio") {
        "serve"
    } else {
        "other"
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(
    device: &str,
    format: &str,
    width: u32,
    height: u32,
    seconds: f64,
) -> anyhow::Result<serde_json::Value> {
    let options: GenicamOptions =
        serde_json::from_value(json!({"device": device, "idle_seconds": 1.0}))?;
    let camera = tokio::task::spawn_blocking(move || GenicamCamera::open(options)).await??;
    let stream = camera.mjpeg_stream.clone();
    let server = labthings::ThingServer::builder()
        .without_settings_folder()
        .add_thing("camera", camera)
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/camera", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_with(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for (property, value) in [
        ("pixel_format", json!(format)),
        ("width", json!(width)),
        ("height", json!(height)),
        ("acquisition_frame_rate", json!(1000.0)),
    ] {
        let response = http
            .put(format!("{base}/{property}"))
            .json(&value)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 204,
            "{property} = {value}: {}",
            response.text().await?
        );
    }
    let read = |property: &'static str| {
        let http = http.clone();
        let url = format!("{base}/{property}");
        async move { anyhow::Ok(http.get(url).send().await?.json::<u64>().await?) }
    };
    let latencies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut frames = stream.frames();
    // Warm up: acquisition starts, the first frames pass.
    let warm = Instant::now();
    let mut seen = 0;
    while warm.elapsed() < Duration::from_secs(2) || seen < 3 {
        tokio::time::timeout(Duration::from_secs(20), frames.next()).await?;
        seen += 1;
    }
    let (frames0, incomplete0) = (
        read("frames_received").await?,
        read("incomplete_frames").await?,
    );
    let cpu0 = cpu_by_thread();
    let start = Instant::now();
    let mut viewed = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let Ok(Some(entry)) = tokio::time::timeout(Duration::from_secs(5), frames.next()).await
        else {
            break;
        };
        viewed += 1;
        let latency = (Utc::now() - entry.timestamp)
            .num_microseconds()
            .unwrap_or(0);
        latencies.lock().unwrap().push(latency as f64 / 1000.0);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = cpu_by_thread();
    let (frames1, incomplete1) = (
        read("frames_received").await?,
        read("incomplete_frames").await?,
    );
    drop(frames);
    let _ = stop.send(());
    let _ = serving.await;
    let received = (frames1 - frames0) as f64;
    let mut by_role: BTreeMap<&str, f64> = BTreeMap::new();
    let mut threads: BTreeMap<String, f64> = BTreeMap::new();
    for ((tid, name), after) in &cpu1 {
        let before = cpu0.get(&(*tid, name.clone())).copied().unwrap_or(0.0);
        *by_role.entry(role(name)).or_default() += after - before;
        *threads.entry(name.clone()).or_default() += after - before;
    }
    let per_frame = |ms: f64| {
        if received > 0.0 {
            ms / received
        } else {
            f64::NAN
        }
    };
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "run": format!("{format} {width}x{height}"),
        "seconds": elapsed,
        "fps_received": received / elapsed,
        "fps_viewed": viewed as f64 / elapsed,
        "incomplete": incomplete1 - incomplete0,
        "cpu_ms_per_frame_receive": per_frame(by_role.get("receive").copied().unwrap_or(0.0)),
        "cpu_ms_per_frame_encode": per_frame(by_role.get("encode").copied().unwrap_or(0.0)),
        "cpu_ms_per_frame_serve": per_frame(by_role.get("serve").copied().unwrap_or(0.0) + by_role.get("other").copied().unwrap_or(0.0)),
        "cpu_ms_by_thread": threads,
        "latency_ms_p50": percentile(&latencies, 0.5),
        "latency_ms_p99": percentile(&latencies, 0.99),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut seconds, mut device, mut runs) = (5.0, "127.0.0.1".to_owned(), Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().unwrap_or_default().parse()?,
            "--device" => device = args.next().unwrap_or_default(),
            run => {
                let (format, size) = run
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("a run is FORMAT:WIDTHxHEIGHT, not {run}"))?;
                let (w, h) = size
                    .split_once('x')
                    .ok_or_else(|| anyhow::anyhow!("a size is WIDTHxHEIGHT, not {size}"))?;
                runs.push((format.to_owned(), w.parse::<u32>()?, h.parse::<u32>()?));
            }
        }
    }
    if runs.is_empty() {
        runs = vec![("Mono16".into(), 2048, 2048), ("Mono8".into(), 1920, 1080)];
    }
    for (format, width, height) in runs {
        let result = run(&device, &format, width, height, seconds).await?;
        println!("{result}");
    }
    Ok(())
}
