//! The events benchmark: a Thing emitting events at a fixed rate, and a load generator with
//! many subscribers measuring what arrives.
//!
//! `bench/events.sh` drives it, with labthings-fastapi 0.3.0's websocket property notifications
//! beside it (its only observation path); see the README.
//!
//! ```text
//! bench_events serve --rate 1000 --port 5101
//! bench_events load --url http://127.0.0.1:5101 --protocol sse --subscribers 100 --pid PID
//! bench_events load --url http://127.0.0.1:5102 --protocol labthings-ws --subscribers 100 --pid PID
//! ```
//!
//! Each event's data is `{"seq": N, "t": <emit time, ns since 1970>}`, so a subscriber measures
//! the latency from `emit` to receipt and counts the events it missed from the sequence numbers.

#[path = "support/measure.rs"]
mod measure;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Arg, ArgMatches, Command, value_parser};
use futures_util::{SinkExt as _, StreamExt as _};
use labthings::{Event, Thing, ThingServer};
use measure::{peak_rss_kb, percentile, process_cpu_seconds};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One tick: its number and when it was emitted.
#[labthings::data]
#[derive(Debug, Clone, Copy)]
struct Tick {
    seq: u64,
    t: u64,
}

/// Emits `tick` at a fixed rate.
#[derive(Thing)]
#[thing(title = "Ticker")]
struct Ticker {
    /// A tick.
    #[event]
    tick: Event<Tick>,
}

fn main() -> anyhow::Result<()> {
    let matches = Command::new("bench_events")
        .about("Events benchmark: an emitting server and a subscribing load generator")
        .subcommand_required(true)
        .subcommand(
            Command::new("serve")
                .about("Serve a Thing emitting `tick` events")
                .arg(number("rate", "1000", "Events per second"))
                .arg(number("port", "5101", "Port on 127.0.0.1")),
        )
        .subcommand(
            Command::new("load")
                .about("Subscribe, count and time what arrives; print one JSON line")
                .arg(Arg::new("url").long("url").required(true))
                .arg(
                    Arg::new("protocol")
                        .long("protocol")
                        .default_value("sse")
                        .value_parser(["sse", "labthings-ws"]),
                )
                .arg(number("subscribers", "100", "Subscribers"))
                .arg(number("warmup", "2", "Seconds before measuring"))
                .arg(number("seconds", "5", "Seconds measured"))
                .arg(number(
                    "pid",
                    "0",
                    "The server's process id, for its CPU time and memory",
                ))
                .arg(Arg::new("label").long("label").default_value("")),
        )
        .get_matches();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match matches.subcommand() {
        Some(("serve", args)) => runtime.block_on(serve(args)),
        Some(("load", args)) => runtime.block_on(load(args)),
        _ => unreachable!("clap requires a subcommand"),
    }
}

fn number(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .default_value(default)
        .value_parser(value_parser!(u64))
        .help(help)
}

fn get(args: &ArgMatches, name: &str) -> u64 {
    *args.get_one::<u64>(name).expect("has a default")
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

async fn serve(args: &ArgMatches) -> anyhow::Result<()> {
    let rate = get(args, "rate").max(1);
    let ticker = Arc::new(Ticker { tick: Event::new() });
    let emitter = ticker.tick.clone();
    let running = Arc::new(AtomicBool::new(true));
    let producing = running.clone();
    let producer = std::thread::spawn(move || {
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now();
        let mut seq = 0u64;
        while producing.load(Ordering::Relaxed) {
            let due = start + interval * seq as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let _ = emitter.emit(Tick { seq, t: now_ns() });
            seq += 1;
        }
    });
    let address = SocketAddr::from(([127, 0, 0, 1], get(args, "port") as u16));
    let served = ThingServer::builder()
        .without_settings_folder()
        .ui(labthings::server::Ui::None)
        .add_thing("ticker", ticker)
        .build()?
        .serve(address)
        .await;
    running.store(false, Ordering::Relaxed);
    let _ = producer.join();
    Ok(served?)
}

/// What one subscriber saw in the measured window.
#[derive(Default)]
struct Seen {
    latencies_ms: Vec<f64>,
    first: Option<u64>,
    last: u64,
    received: u64,
}

impl Seen {
    fn record(&mut self, tick: Tick, measuring: bool) {
        if !measuring {
            return;
        }
        let latency = now_ns().saturating_sub(tick.t) as f64 / 1e6;
        self.latencies_ms.push(latency);
        self.first.get_or_insert(tick.seq);
        self.last = tick.seq;
        self.received += 1;
    }

    /// Events emitted in the window that this subscriber never got.
    fn missed(&self) -> u64 {
        self.first.map_or(0, |first| {
            (self.last - first + 1).saturating_sub(self.received)
        })
    }
}

async fn load(args: &ArgMatches) -> anyhow::Result<()> {
    let url = args.get_one::<String>("url").expect("required").clone();
    let protocol = args
        .get_one::<String>("protocol")
        .expect("has a default")
        .clone();
    let (subscribers, warmup, seconds, pid) = (
        get(args, "subscribers"),
        get(args, "warmup"),
        get(args, "seconds"),
        get(args, "pid") as u32,
    );
    let address: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .context("--url is http://IP:PORT")?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let (measuring, stop, protocol) = (measuring.clone(), stop.clone(), protocol.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let result = match protocol.as_str() {
                "sse" => subscribe_sse(address, &mut seen, &measuring, &stop).await,
                _ => subscribe_ws(address, &mut seen, &measuring, &stop).await,
            };
            (seen, result)
        }));
    }
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    let cpu_before = process_cpu_seconds(pid).unwrap_or(f64::NAN);
    measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::SeqCst);
    let cpu = process_cpu_seconds(pid).unwrap_or(f64::NAN) - cpu_before;
    stop.store(true, Ordering::SeqCst);
    let mut latencies = Vec::new();
    let (mut delivered, mut missed, mut errors) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut slowest = f64::INFINITY;
    let (mut first_seq, mut last_seq) = (u64::MAX, 0u64);
    for task in tasks {
        let (seen, result) = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .context("a subscriber did not stop")??;
        if let Err(error) = result {
            errors += 1;
            first_error.get_or_insert(error.to_string());
        }
        delivered += seen.received;
        missed += seen.missed();
        if let Some(first) = seen.first {
            first_seq = first_seq.min(first);
            last_seq = last_seq.max(seen.last);
        }
        slowest = slowest.min(seen.received as f64 / seconds as f64);
        latencies.extend(seen.latencies_ms);
    }
    let result = serde_json::json!({
        "label": args.get_one::<String>("label"),
        "protocol": protocol,
        "subscribers": subscribers,
        "seconds": seconds,
        // How fast the server really emitted, from the sequence numbers seen.
        "emitted_per_s": (last_seq + 1).saturating_sub(first_seq) as f64 / seconds as f64,
        "delivered_per_s": delivered as f64 / seconds as f64,
        "per_subscriber_min_per_s": slowest,
        "missed": missed,
        "latency_p50_ms": percentile(&mut latencies, 0.5),
        "latency_p99_ms": percentile(&mut latencies, 0.99),
        "cpu_seconds": cpu,
        "cpu_us_per_event": cpu * 1e6 / delivered.max(1) as f64,
        "peak_rss_mb": peak_rss_kb(pid).map(|kb| kb as f64 / 1024.0).ok(),
        "errors": errors,
        "first_error": first_error,
    });
    println!("{result}");
    Ok(())
}

/// Reads `GET /ticker/tick` as Server-Sent Events over raw TCP: each `data:` line is a tick.
async fn subscribe_sse(
    address: SocketAddr,
    seen: &mut Seen,
    measuring: &AtomicBool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut tcp = tokio::net::TcpStream::connect(address).await?;
    tcp.write_all(
        format!(
            "GET /ticker/tick HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut scanned = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = match tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut chunk)).await {
            Ok(read) => read?,
            Err(_) => continue,
        };
        if n == 0 {
            bail!("the server closed the stream");
        }
        buffer.extend_from_slice(&chunk[..n]);
        // Each message is one chunk of the body: take complete `data:` lines.
        while let Some(at) = find(&buffer[scanned..], b"data: ") {
            let start = scanned + at + 6;
            let Some(end) = buffer[start..].iter().position(|b| *b == b'\n') else {
                break;
            };
            let tick: Tick = serde_json::from_slice(&buffer[start..start + end])?;
            seen.record(tick, measuring.load(Ordering::Relaxed));
            scanned = start + end;
        }
        if scanned > 32 * 1024 {
            buffer.drain(..scanned);
            scanned = 0;
        }
    }
    Ok(())
}

/// Observes the `tick` property over labthings-fastapi's websocket (`addPropertyObservation`).
async fn subscribe_ws(
    address: SocketAddr,
    seen: &mut Seen,
    measuring: &AtomicBool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/ticker/ws")).await?;
    let observe =
        serde_json::json!({"messageType": "addPropertyObservation", "data": {"tick": true}});
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            observe.to_string().into(),
        ))
        .await?;
    while !stop.load(Ordering::Relaxed) {
        let message = match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
            Ok(Some(message)) => message?,
            Ok(None) => bail!("the server closed the websocket"),
            Err(_) => continue,
        };
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            let message: serde_json::Value = serde_json::from_str(&text)?;
            if message["messageType"] == "propertyStatus" {
                let tick: Tick = serde_json::from_value(message["data"]["tick"].clone())?;
                seen.record(tick, measuring.load(Ordering::Relaxed));
            }
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
