//! H.264 beside MJPEG (issue 27): the simulated camera's moving test pattern (with sensor
//! noise) at 1280x720 and 1920x1080, offered at 30 fps to a [`FramePipeline`] watched in one
//! form at a time: H.264 (OpenH264, default options: 0.1 bit per pixel), MJPEG with
//! jpeg-encoder, and MJPEG with libjpeg-turbo (`--features turbojpeg`).
//!
//! ```text
//! cargo run --release --features turbojpeg,h264 --example bench_h264 -- [--seconds 5]
//! ```
//!
//! Prints one JSON line per run: frames encoded per second, bytes per frame, and the process's
//! CPU per encoded frame (every thread: pipeline, encoder, the one viewer; the frames are
//! rendered before the clock starts). `bench/h264.sh` prints the table and the ratios.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use labthings::stream::{
    FramePipeline, H264Options, JpegEncoder, MjpegStream, PixelFormat, RawFrame,
};

#[path = "support/measure.rs"]
mod measure;
#[path = "support/sim.rs"]
mod sim;

const FPS: f64 = 30.0;
/// Distinct frames rendered per size (two seconds of motion), offered in a loop.
const RENDERED: usize = 60;

#[derive(Clone, Copy)]
enum Form {
    H264,
    Mjpeg(JpegEncoder),
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::Mjpeg(encoder) => encoder.name(),
        }
    }
}

/// Offers `frames` at 30 fps for `seconds` to a pipeline watched in `form`; returns
/// (frames encoded, bytes, CPU seconds).
async fn run(form: Form, frames: &[RawFrame], seconds: f64) -> (u64, u64, f64) {
    let stream = MjpegStream::with_ringbuffer_size(4).with_h264(H264Options::default());
    let mut builder = FramePipeline::builder(&stream).quality(85);
    if let Form::Mjpeg(encoder) = form {
        builder = builder.encoder(encoder);
    }
    let pipeline = builder.build();
    let (count, bytes) = (
        std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
    );
    let viewer = {
        let (count, bytes, stream) = (count.clone(), bytes.clone(), stream.clone());
        let add = move |n: usize| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        };
        tokio::spawn(async move {
            match form {
                Form::H264 => {
                    let mut units = stream.h264().expect("made with_h264").units();
                    while let Some(unit) = units.next().await {
                        add(unit.data.len());
                    }
                }
                Form::Mjpeg(_) => {
                    let mut jpegs = stream.frames();
                    while let Some(entry) = jpegs.next().await {
                        add(entry.frame.len());
                    }
                }
            }
        })
    };
    pipeline.watched().await;
    let pid = std::process::id();
    let cpu_start = measure::process_cpu_seconds(pid).expect("/proc");
    let interval = Duration::from_secs_f64(1.0 / FPS);
    let start = Instant::now();
    let mut next = start;
    let total = (seconds * FPS).round() as usize;
    for n in 0..total {
        pipeline.push(frames[n % frames.len()].clone().at(chrono::Utc::now()));
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = measure::process_cpu_seconds(pid).expect("/proc") - cpu_start;
    viewer.abort();
    drop(pipeline);
    // The pipeline's threads end within a few milliseconds: gone before the next run counts
    // its threads' CPU (a thread that ends during a run would take its time out of the sum).
    tokio::time::sleep(Duration::from_millis(300)).await;
    (
        count.load(std::sync::atomic::Ordering::Relaxed),
        bytes.load(std::sync::atomic::Ordering::Relaxed),
        cpu,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut seconds = 5.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds S")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let forms = [
        Some(Form::H264),
        Some(Form::Mjpeg(JpegEncoder::PureRust)),
        #[cfg(feature = "turbojpeg")]
        Some(Form::Mjpeg(JpegEncoder::Turbo)),
        #[cfg(not(feature = "turbojpeg"))]
        None,
    ];
    let forms: Vec<Form> = forms.into_iter().flatten().collect();
    for (width, height) in [(1280u16, 720u16), (1920, 1080)] {
        let mut pattern = sim::TestPattern::new(usize::from(width), usize::from(height));
        let frames: Vec<RawFrame> = (0..RENDERED)
            .map(|n| {
                let rgb = pattern
                    .render(n as f64 / FPS, &format!("frame {n}"), 8)
                    .to_vec();
                RawFrame::new(PixelFormat::Rgb8, width, height, rgb).expect("width x height RGB")
            })
            .collect();
        for form in &forms {
            let (encoded, bytes, cpu) = run(*form, &frames, seconds).await;
            let encoded_fps = encoded as f64 / seconds;
            let line = serde_json::json!({
                "size": format!("{width}x{height}"),
                "form": form.name(),
                "seconds": seconds,
                "encoded": encoded,
                "encoded_fps": encoded_fps,
                "bytes_per_frame": bytes as f64 / encoded.max(1) as f64,
                "mbit_per_s": bytes as f64 * 8.0 / seconds / 1e6,
                "cpu_ms_per_frame": cpu * 1000.0 / encoded.max(1) as f64,
                "cpu_percent": cpu / seconds * 100.0,
            });
            println!("{line}");
        }
    }
}
