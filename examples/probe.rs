//! A stream probe: connects to any MJPEG stream and prints live statistics once a second;
//! optionally records frames as numbered JPEG files.
//!
//! ```text
//! cargo run --example probe -- URL [--save DIR] [--frames N] [--token TOKEN] [--read-timeout S]
//! cargo run --example probe -- http://127.0.0.1:5000/camera/mjpeg_stream --save shots --frames 30
//! ```
//!
//! Each line shows the frame rate, the bit rate, the latency from the server's `X-Timestamp`
//! (median and worst over the second; our server sends it, others may not), frames dropped
//! (by the client's queue, by the server for this viewer, and for being too large) and
//! reconnections. `--frames N` stops after N frames; with `--save DIR` they are written as
//! `DIR/frame-000000.jpg` and on. A summary line ends the run (also on Ctrl-C).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Arg, ArgAction, Command, value_parser};
use labthings::client::{MjpegClient, MjpegStats};

struct Options {
    url: String,
    save: Option<PathBuf>,
    frames: Option<u64>,
    token: Option<String>,
    read_timeout: f64,
}

fn options() -> Options {
    let matches = Command::new("probe")
        .about("Prints live statistics of an MJPEG stream; can record its frames as JPEG files")
        .arg(Arg::new("url").required(true).help("The stream's URL"))
        .arg(
            Arg::new("save")
                .long("save")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .help("Write frames to DIR as frame-000000.jpg, frame-000001.jpg, ..."),
        )
        .arg(
            Arg::new("frames")
                .long("frames")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1..))
                .help("Stop after N frames"),
        )
        .arg(
            Arg::new("token")
                .long("token")
                .value_name("TOKEN")
                .help("Send `Authorization: Bearer TOKEN`"),
        )
        .arg(
            Arg::new("read-timeout")
                .long("read-timeout")
                .value_name("SECONDS")
                .value_parser(value_parser!(f64))
                .default_value("5")
                .action(ArgAction::Set)
                .help("Reconnect after this long without data"),
        )
        .get_matches();
    Options {
        url: matches
            .get_one::<String>("url")
            .cloned()
            .unwrap_or_default(),
        save: matches.get_one::<PathBuf>("save").cloned(),
        frames: matches.get_one::<u64>("frames").copied(),
        token: matches.get_one::<String>("token").cloned(),
        read_timeout: matches
            .get_one::<f64>("read-timeout")
            .copied()
            .unwrap_or(5.0),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options();
    if let Some(dir) = &options.save {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut builder = MjpegClient::builder(&options.url)
        .read_timeout(Duration::from_secs_f64(options.read_timeout.max(0.1)))
        // Recording wants every frame: a deep queue absorbs slow disk writes.
        .queue_capacity(if options.save.is_some() { 64 } else { 4 });
    if let Some(token) = &options.token {
        builder = builder.bearer_token(token);
    }
    let mut client = builder.connect();
    println!("probing {}", options.url);

    let started = tokio::time::Instant::now();
    let mut tick =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    let mut latencies: Vec<f64> = Vec::new();
    let mut previous = MjpegStats::default();
    let mut received = 0u64;
    let ended = loop {
        tokio::select! {
            frame = client.next_frame() => match frame {
                Some(Ok(frame)) => {
                    if let Some(latency) = frame.latency() {
                        latencies.push(latency.as_seconds_f64() * 1e3);
                    }
                    if let Some(dir) = &options.save {
                        let path = dir.join(format!("frame-{received:06}.jpg"));
                        tokio::fs::write(&path, &frame.data)
                            .await
                            .with_context(|| format!("writing {}", path.display()))?;
                    }
                    received += 1;
                    if options.frames.is_some_and(|limit| received >= limit) {
                        break None;
                    }
                }
                Some(Err(error)) => break Some(error),
                None => break None,
            },
            _ = tick.tick() => {
                let stats = client.stats();
                println!("{}", line(started.elapsed(), &stats, &previous, &mut latencies));
                previous = stats;
            }
            _ = tokio::signal::ctrl_c() => break None,
        }
    };
    println!(
        "{:.1} s, {received} frames: {}",
        started.elapsed().as_secs_f64(),
        client.stats()
    );
    if let Some(dir) = &options.save {
        println!("saved {received} frames in {}", dir.display());
    }
    match ended {
        Some(error) => Err(error).context("the stream ended"),
        None => Ok(()),
    }
}

/// One line of live statistics; `latencies` (ms) are those of the last second, used up here.
fn line(
    elapsed: Duration,
    stats: &MjpegStats,
    previous: &MjpegStats,
    latencies: &mut Vec<f64>,
) -> String {
    latencies.sort_by(f64::total_cmp);
    let latency = match (latencies.get(latencies.len() / 2), latencies.last()) {
        (Some(median), Some(worst)) => format!("latency {median:.1} ms (max {worst:.1})"),
        _ => "latency n/a".to_owned(),
    };
    latencies.clear();
    format!(
        "{:>6.1} s  {:>5.1} fps  {:>7.2} Mbit/s  {latency}  drops: {} queue, {} server, {} too large  \
         reconnects {}{}",
        elapsed.as_secs_f64(),
        stats.fps,
        stats.bytes_per_second * 8.0 / 1e6,
        stats.discarded - previous.discarded,
        stats.server_skipped - previous.server_skipped,
        stats.too_large - previous.too_large,
        stats.reconnects,
        if stats.connected {
            ""
        } else {
            "  (disconnected)"
        },
    )
}
