//! The property history benchmark (issue 30): what keeping a history costs a property written
//! 10,000 times a second, beside the same property without one, and what the disk log costs at
//! 100 samples a second.
//!
//! ```text
//! bench_history [--seconds 5]
//! ```
//!
//! Prints a table and one JSON line (`bench/history.sh` keeps it). Each figure is measured in
//! this process: the cost of a write unpaced (the best of three runs of 200,000), the CPU of
//! 10,000 writes a second paced, the memory a full history of 10,000 samples takes, and the
//! CPU and bytes per sample of the disk log.

#[path = "support/measure.rs"]
mod measure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use labthings::{Property, Thing, ThingServer};
use measure::process_cpu_seconds;

/// The same value four ways.
#[derive(Thing)]
struct Bench {
    /// No history: the peer.
    #[property(read_only)]
    off: Property<f64>,
    /// Every change kept, up to 10,000 samples.
    #[property(read_only, history = 10000)]
    samples: Property<f64>,
    /// Ten minutes, coalesced at 60 ms (10,000 samples at most).
    #[property(read_only, history = "10 min")]
    window: Property<f64>,
    /// Every change kept and appended to disk.
    #[property(read_only, history = 10000, history_log)]
    logged: Property<f64>,
}

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5.0);
    let data = tempfile::tempdir()?;
    let bench = Arc::new(Bench {
        off: Property::new(0.0),
        samples: Property::new(0.0),
        window: Property::new(0.0),
        logged: Property::new(0.0),
    });
    // Building the server binds the properties (their histories and the log's file).
    let server = ThingServer::builder()
        .without_settings_folder()
        .data_folder(data.path())
        .add_thing("bench", bench.clone())
        .build()?;

    let pid = std::process::id();
    let unpaced = |property: &Property<f64>| {
        (0..3)
            .map(|_| {
                let start = Instant::now();
                for i in 0..200_000 {
                    property.publish(f64::from(i)).unwrap();
                }
                start.elapsed().as_nanos() as f64 / 200_000.0
            })
            .fold(f64::INFINITY, f64::min)
    };
    let paced = |property: &Property<f64>, rate: f64, seconds: f64| -> anyhow::Result<f64> {
        let before = process_cpu_seconds(pid)?;
        let start = Instant::now();
        let total = (rate * seconds) as u64;
        for n in 0..total {
            property.publish(n as f64).unwrap();
            let due = start + Duration::from_secs_f64((n + 1) as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let cpu = process_cpu_seconds(pid)? - before;
        Ok(cpu / start.elapsed().as_secs_f64())
    };

    let rss_before = rss_bytes()?;
    let ns_off = unpaced(&bench.off);
    let ns_samples = unpaced(&bench.samples);
    let ns_window = unpaced(&bench.window);
    let rss_after = rss_bytes()?;
    let kept = bench.samples.history().map_or(0, |h| h.len());
    let kept_window = bench.window.history().map_or(0, |h| h.len());
    let bytes_per_sample =
        rss_after.saturating_sub(rss_before) as f64 / (kept + kept_window) as f64;

    let cpu_off = paced(&bench.off, 10_000.0, seconds)?;
    let cpu_samples = paced(&bench.samples, 10_000.0, seconds)?;

    // The disk log at 100 samples a second, beside the same history without it.
    let log_seconds = (seconds * 2.0).max(2.0);
    let cpu_unlogged = paced(&bench.samples, 100.0, log_seconds)?;
    let cpu_logged = paced(&bench.logged, 100.0, log_seconds)?;
    // The writer writes once a second: wait for its last batch.
    std::thread::sleep(Duration::from_millis(1500));
    let file = data.path().join("history/bench/logged.csv");
    let text = std::fs::read_to_string(&file)?;
    let lines = text.lines().count().saturating_sub(1);
    let header = text.lines().next().map_or(0, |l| l.len() + 2);
    let log_bytes_per_sample = (text.len() - header) as f64 / lines.max(1) as f64;
    let log_cpu_us_per_sample = (cpu_logged - cpu_unlogged).max(0.0) * 1e6 / 100.0;
    drop(server);

    println!("Property history: one property written from one thread");
    println!("| | history off (peer) | 10,000 samples | 10 min, coalesced |");
    println!("|---|---|---|---|");
    println!(
        "| cost per write, unpaced | {ns_off:.0} ns | {ns_samples:.0} ns ({:.2}×) | {ns_window:.0} ns ({:.2}×) |",
        ns_samples / ns_off,
        ns_window / ns_off
    );
    println!(
        "| CPU at 10,000 writes/s | {:.1} % | {:.1} % ({:.2}×) | |",
        cpu_off * 100.0,
        cpu_samples * 100.0,
        cpu_samples / cpu_off
    );
    println!(
        "| memory of a full history | 0 | {:.1} MiB for {kept} samples ({bytes_per_sample:.0} B each, both histories) | {kept_window} samples |",
        bytes_per_sample * kept as f64 / f64::from(1 << 20)
    );
    println!(
        "Disk log at 100 samples/s: {log_cpu_us_per_sample:.1} µs of CPU and {log_bytes_per_sample:.1} bytes per sample ({lines} samples in {log_seconds:.0} s)"
    );
    println!(
        "{}",
        serde_json::json!({
            "ns_per_write_off": ns_off,
            "ns_per_write_samples": ns_samples,
            "ns_per_write_window": ns_window,
            "ratio_samples_to_off": ns_samples / ns_off,
            "cpu_10k_off": cpu_off,
            "cpu_10k_samples": cpu_samples,
            "bytes_per_sample": bytes_per_sample,
            "samples_kept": kept,
            "window_samples_kept": kept_window,
            "log_cpu_us_per_sample": log_cpu_us_per_sample,
            "log_bytes_per_sample": log_bytes_per_sample,
            "log_samples": lines,
        })
    );
    anyhow::ensure!(
        kept == 10_000,
        "the history keeps its 10,000 samples ({kept})"
    );
    anyhow::ensure!(lines > 0, "the disk log was written");
    Ok(())
}

/// This process's resident memory now.
fn rss_bytes() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no resident size in /proc/self/statm"))?
        .parse()?;
    Ok(pages * 4096)
}
