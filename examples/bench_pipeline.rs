//! The frame pipeline benchmark (issues 17 and 25): 1920x1080 RGB8, Gray8, Gray16 and YUYV
//! frames offered at 60 fps to a [`FramePipeline`] with one viewer, with each JPEG encoder built
//! in (jpeg-encoder; libjpeg-turbo with `--features turbojpeg`) and 1, 2 and 4 encoding
//! workers; then with no viewer.
//!
//! ```text
//! cargo run --release --features turbojpeg --example bench_pipeline -- [--seconds 5] [--out bench/out/pipeline]
//! ```
//!
//! Prints one JSON line per run: frames offered, encoded and dropped per second, the process's
//! CPU per encoded frame (all threads: producer, encoders, viewer), the viewer's latency from a
//! frame's capture timestamp to its arrival (p50, p99), and CPU with no viewer. It also writes
//! the first frame of each format to `--out` (`<format>.raw`) for `bench/pipeline.sh`, which
//! times Pillow (libjpeg-turbo) on the same frames at the same quality.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use labthings::stream::{
    FramePipeline, Gray16Window, JpegEncoder, MjpegStream, PixelFormat, RawFrame,
};

const WIDTH: u16 = 1920;
const HEIGHT: u16 = 1080;
const FPS: f64 = 60.0;
const QUALITY: u8 = 85;

/// A camera-like image: smooth shading, a few edges and sensor noise (a deterministic LCG), so
/// that the encoder sees what it sees from a microscope, not a flat field.
fn pattern(seed: u32, channels: usize, max: u32) -> Vec<u32> {
    let (w, h) = (usize::from(WIDTH), usize::from(HEIGHT));
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut out = Vec::with_capacity(w * h * channels);
    for y in 0..h {
        for x in 0..w {
            let cell = ((x / 240) + (y / 180)) % 2;
            let shade = (x * 3 + y * 2 + seed as usize * 50) % 1024;
            for c in 0..channels {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 24) % 24;
                let base = (shade as u32 * (c as u32 + 2)) / 3 % 1024 + cell as u32 * 300;
                out.push(((base + noise) * max / 1400).min(max));
            }
        }
    }
    out
}

/// Four 8-bit frames of `channels` channels (3: RGB, 1: grey).
fn eight_bit_frames(channels: usize) -> Vec<bytes::Bytes> {
    (0..4)
        .map(|seed| {
            let values = pattern(seed, channels, 255);
            bytes::Bytes::from(values.into_iter().map(|v| v as u8).collect::<Vec<u8>>())
        })
        .collect()
}

/// YUYV as a USB camera gives it: a luma per pixel, the chroma of each pair shared.
fn yuyv_frames() -> Vec<bytes::Bytes> {
    (0..4)
        .map(|seed| {
            let values = pattern(seed, 3, 255);
            let bytes: Vec<u8> = values
                .chunks_exact(6)
                .flat_map(|pair| {
                    [
                        pair[0] as u8,
                        (64 + pair[1] / 2) as u8,
                        pair[3] as u8,
                        (64 + pair[2] / 2) as u8,
                    ]
                })
                .collect();
            bytes::Bytes::from(bytes)
        })
        .collect()
}

fn gray16_frames() -> Vec<bytes::Bytes> {
    (0..4)
        .map(|seed| {
            // A 12-bit sensor in 16-bit words, as scientific cameras give them.
            let values = pattern(seed, 1, 4095);
            let bytes: Vec<u8> = values
                .into_iter()
                .flat_map(|v| (v as u16).to_le_bytes())
                .collect();
            bytes::Bytes::from(bytes)
        })
        .collect()
}

/// The process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of the man page (utime, stime) are 11 and 12 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// The process's resident memory, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Offers `frames` at `fps` for `seconds` from a thread, as a camera driver would.
fn produce(
    pipeline: FramePipeline,
    format: PixelFormat,
    frames: Vec<bytes::Bytes>,
    seconds: f64,
    fps: f64,
) -> u64 {
    let interval = Duration::from_secs_f64(1.0 / fps);
    let start = Instant::now();
    let mut offered = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let due = start + interval.mul_f64(offered as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // At 60 fps the frames are shared (a driver's own buffers): what is measured is the
        // pipeline. Overloaded, each frame is a fresh copy, so that memory held by frames
        // waiting or dropped would show in the resident size.
        let frame = &frames[offered as usize % frames.len()];
        let data = if fps > FPS {
            bytes::Bytes::copy_from_slice(frame)
        } else {
            frame.clone()
        };
        let frame = RawFrame::new(format, WIDTH, HEIGHT, data).expect("frame size");
        pipeline.push(frame.at(Utc::now()));
        offered += 1;
    }
    offered
}

/// How one run is set up.
#[derive(Clone, Copy)]
struct Setup {
    encoder: JpegEncoder,
    workers: usize,
    fps: f64,
    viewer: bool,
}

async fn run(
    label: &str,
    format: PixelFormat,
    frames: Vec<bytes::Bytes>,
    seconds: f64,
    setup: Setup,
) -> serde_json::Value {
    let Setup {
        encoder,
        workers,
        fps,
        viewer,
    } = setup;
    let stream = MjpegStream::new();
    let pipeline = FramePipeline::builder(&stream)
        .quality(QUALITY)
        .encoder(encoder)
        .workers(workers)
        .build();
    let latencies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let watching = viewer.then(|| {
        let mut frames = stream.frames();
        let latencies = latencies.clone();
        tokio::spawn(async move {
            while let Some(entry) = frames.next().await {
                let latency = (Utc::now() - entry.timestamp)
                    .num_microseconds()
                    .unwrap_or(0);
                latencies.lock().unwrap().push(latency as f64 / 1000.0);
            }
        })
    });
    if viewer {
        // The viewer is counted before the first frame is offered.
        tokio::time::timeout(Duration::from_secs(2), stream.watched())
            .await
            .expect("watched");
    }
    let peak_rss = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_kib()));
    let sampler = {
        let peak_rss = peak_rss.clone();
        tokio::spawn(async move {
            loop {
                peak_rss.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let rss_before = rss_kib();
    let before = pipeline.stats();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let producer = pipeline.clone();
    let offered =
        tokio::task::spawn_blocking(move || produce(producer, format, frames, seconds, fps))
            .await
            .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    // Let the last frame finish encoding.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cpu = (cpu_time() - cpu_before).as_secs_f64();
    let after = pipeline.stats();
    let encoded = after.encoded - before.encoded;
    let dropped = after.dropped - before.dropped;
    sampler.abort();
    stream.stop();
    if let Some(task) = watching {
        task.abort();
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_by(f64::total_cmp);
    serde_json::json!({
        "run": label,
        "encoder": encoder.name(),
        "workers": workers,
        "fps": fps,
        "rss_growth_mib": (peak_rss.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(rss_before)) as f64 / 1024.0,
        "viewer": viewer,
        "seconds": elapsed,
        "offered_fps": offered as f64 / elapsed,
        "encoded_fps": encoded as f64 / elapsed,
        "dropped_fps": dropped as f64 / elapsed,
        "cpu_percent": 100.0 * cpu / elapsed,
        "cpu_ms_per_encoded_frame": if encoded > 0 { 1000.0 * cpu / encoded as f64 } else { f64::NAN },
        "latency_ms_p50": percentile(&latencies, 0.5),
        "latency_ms_p99": percentile(&latencies, 0.99),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut seconds = 5.0;
    let mut out = std::path::PathBuf::from("bench/out/pipeline");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().unwrap_or_default().parse()?,
            "--out" => out = args.next().unwrap_or_default().into(),
            other => anyhow::bail!("unknown argument {other:?}; see the file's documentation"),
        }
    }
    std::fs::create_dir_all(&out)?;
    let window = PixelFormat::Gray16(Gray16Window::Range { low: 0, high: 4095 });
    let formats = [
        ("rgb8", PixelFormat::Rgb8, eight_bit_frames(3)),
        ("gray8", PixelFormat::Gray8, eight_bit_frames(1)),
        ("gray16", window, gray16_frames()),
        ("yuyv", PixelFormat::Yuyv, yuyv_frames()),
    ];
    let encoders: Vec<JpegEncoder> = labthings::stream::pipelines_by_encoder()
        .into_iter()
        .map(|(encoder, _)| encoder)
        .collect();
    for (label, format, frames) in &formats {
        std::fs::write(out.join(format!("{label}.raw")), &frames[0])?;
        for &encoder in &encoders {
            for workers in [1, 2, 4] {
                let setup = Setup {
                    encoder,
                    workers,
                    fps: FPS,
                    viewer: true,
                };
                let result = run(label, *format, frames.clone(), seconds, setup).await;
                println!("{result}");
            }
        }
        // Nobody watching: nothing is encoded, whatever is offered.
        let setup = Setup {
            encoder: JpegEncoder::default(),
            workers: 2,
            fps: FPS,
            viewer: false,
        };
        println!(
            "{}",
            run(label, *format, frames.clone(), seconds, setup).await
        );
    }
    // Overload: RGB8 offered at 240 fps to one pure-Rust worker, three times what it can do
    // here (libjpeg-turbo with two workers keeps up with 240). Frames are dropped (counted),
    // never queued: memory stays flat.
    let setup = Setup {
        encoder: JpegEncoder::PureRust,
        workers: 1,
        fps: 240.0,
        viewer: true,
    };
    let result = run(
        "rgb8-overload",
        PixelFormat::Rgb8,
        eight_bit_frames(3),
        seconds,
        setup,
    )
    .await;
    println!("{result}");
    Ok(())
}
