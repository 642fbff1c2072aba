//! The MJPEG stream benchmark: our server, the frames it streams, and a load generator.
//!
//! `bench/run.sh` drives it (and labthings-fastapi 0.3.0 beside it); see the README.
//!
//! ```text
//! bench_stream frames --out DIR                 # pre-encode the frame sets, once
//! bench_stream serve --frames DIR/640x480 --fps 30 --port 5100
//! bench_stream load --url http://127.0.0.1:5100/camera/mjpeg_stream --pid PID --viewers 10
//! # HTTPS: the server with a self-signed certificate kept in DIR, viewers over HTTP/1.1 or HTTP/2
//! bench_stream serve --frames DIR/640x480 --fps 30 --port 5100 --tls-dir DIR
//! bench_stream load --url https://127.0.0.1:5100/camera/mjpeg_stream --ca DIR/cert.pem [--http2] ...
//! ```
//!
//! Every frame carries a JPEG comment segment `LTBENCH:<push time ns>:<frame length>;` written
//! by the producer just before it adds the frame, so the load generator measures the latency
//! from the push to the arrival of the frame's last byte, whatever the server, and finds frame
//! ends from the length without scanning the frame's bytes.

#[path = "support/measure.rs"]
mod measure;
#[path = "support/sim.rs"]
mod sim;

use measure::{peak_rss_kb, percentile, process_cpu_seconds};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use labthings::stream::{self, MjpegStream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn main() -> anyhow::Result<()> {
    let matches = Command::new("bench_stream")
        .about("MJPEG stream benchmark: frames, server and load generator")
        .subcommand_required(true)
        .subcommand(
            Command::new("frames")
                .about("Encode the benchmark's frame sets into a folder")
                .arg(
                    Arg::new("out")
                        .long("out")
                        .required(true)
                        .value_parser(value_parser!(PathBuf)),
                ),
        )
        .subcommand(
            Command::new("serve")
                .about("Serve one stream at /camera/mjpeg_stream, fed from a frame set")
                .arg(
                    Arg::new("frames")
                        .long("frames")
                        .required(true)
                        .value_parser(value_parser!(PathBuf)),
                )
                .arg(
                    Arg::new("fps")
                        .long("fps")
                        .default_value("30")
                        .help("frames per second, or `max`"),
                )
                .arg(Arg::new("host").long("host").default_value("127.0.0.1"))
                .arg(
                    Arg::new("port")
                        .long("port")
                        .default_value("5100")
                        .value_parser(value_parser!(u16)),
                )
                .arg(
                    Arg::new("record")
                        .long("record")
                        .value_parser(value_parser!(PathBuf))
                        .help("record the stream into this folder from the start (as record_<stream> does)"),
                )
                .arg(
                    Arg::new("record-seconds")
                        .long("record-seconds")
                        .default_value("10")
                        .value_parser(value_parser!(f64)),
                )
                .arg(
                    Arg::new("tls-dir")
                        .long("tls-dir")
                        .value_parser(value_parser!(PathBuf))
                        .help("serve HTTPS with a self-signed certificate kept in this folder"),
                )
                .arg(
                    Arg::new("workers")
                        .long("workers")
                        .value_parser(value_parser!(usize))
                        .help("async worker threads (default: one per core)"),
                ),
        )
        .subcommand(
            Command::new("load")
                .about("Open viewers on a stream, measure, and print one JSON line")
                .arg(Arg::new("url").long("url").required(true))
                .arg(
                    Arg::new("pid")
                        .long("pid")
                        .required(true)
                        .value_parser(value_parser!(u32)),
                )
                .arg(
                    Arg::new("viewers")
                        .long("viewers")
                        .default_value("1")
                        .value_parser(value_parser!(usize)),
                )
                .arg(
                    Arg::new("slow")
                        .long("slow")
                        .default_value("0")
                        .value_parser(value_parser!(usize)),
                )
                .arg(
                    Arg::new("slow-rate")
                        .long("slow-rate")
                        .default_value("200000")
                        .value_parser(value_parser!(u64))
                        .help("bytes per second a slow viewer reads"),
                )
                .arg(
                    Arg::new("warmup")
                        .long("warmup")
                        .default_value("2")
                        .value_parser(value_parser!(f64)),
                )
                .arg(
                    Arg::new("seconds")
                        .long("seconds")
                        .default_value("5")
                        .value_parser(value_parser!(f64)),
                )
                .arg(Arg::new("label").long("label").default_value(""))
                .arg(
                    Arg::new("ca")
                        .long("ca")
                        .value_parser(value_parser!(PathBuf))
                        .help("the certificate to trust, for an https:// URL"),
                )
                .arg(
                    Arg::new("http2")
                        .long("http2")
                        .action(ArgAction::SetTrue)
                        .help("over HTTPS, each viewer its own HTTP/2 connection (ALPN h2)"),
                )
                .arg(
                    Arg::new("threads")
                        .long("threads")
                        .default_value("1")
                        .value_parser(value_parser!(usize))
                        .help("load generator threads"),
                )
                .arg(
                    Arg::new("verbose")
                        .long("verbose")
                        .action(ArgAction::SetTrue),
                ),
        )
        .get_matches();
    match matches.subcommand() {
        Some(("frames", args)) => write_frames(args.get_one::<PathBuf>("out").expect("required")),
        Some(("serve", args)) => serve(args),
        Some(("load", args)) => load(args),
        _ => unreachable!("clap requires a subcommand"),
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

/// The frame sets: name, size, and the grain that brings JPEGs to realistic sizes.
const FRAME_SETS: [(&str, usize, usize, u8); 2] =
    [("640x480", 640, 480, 29), ("1280x720", 1280, 720, 29)];
const FRAMES_PER_SET: usize = 8;

fn write_frames(out: &Path) -> anyhow::Result<()> {
    for (name, width, height, noise) in FRAME_SETS {
        let folder = out.join(name);
        std::fs::create_dir_all(&folder)?;
        let mut pattern = sim::TestPattern::new(width, height);
        let mut total = 0;
        for n in 0..FRAMES_PER_SET {
            let rgb = pattern.render(n as f64 / 30.0, &format!("#{n}"), noise);
            let jpeg = sim::encode_jpeg(rgb, width, height, 85);
            total += jpeg.len();
            std::fs::write(folder.join(format!("{n:02}.jpg")), jpeg)?;
        }
        println!(
            "{name}: {FRAMES_PER_SET} frames, {} bytes each on average",
            total / FRAMES_PER_SET
        );
    }
    Ok(())
}

fn read_frames(folder: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<_> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "jpg"));
    paths.sort();
    if paths.is_empty() {
        bail!("no .jpg frames in {}", folder.display());
    }
    paths.iter().map(|path| Ok(std::fs::read(path)?)).collect()
}

/// Inserts the `LTBENCH` comment segment after the SOI marker.
fn stamp(frame: &[u8], pushed_ns: u128) -> Vec<u8> {
    // Fixed-width fields, so the segment's length is known before the total is.
    const PAYLOAD_LEN: usize = "LTBENCH:".len() + 20 + 1 + 10 + 1;
    let total = frame.len() + 4 + PAYLOAD_LEN;
    let payload = format!("LTBENCH:{pushed_ns:020}:{total:010};");
    debug_assert_eq!(payload.len(), PAYLOAD_LEN);
    let mut stamped = Vec::with_capacity(total);
    stamped.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xFE]);
    stamped.extend_from_slice(&((PAYLOAD_LEN + 2) as u16).to_be_bytes());
    stamped.extend_from_slice(payload.as_bytes());
    stamped.extend_from_slice(&frame[2..]);
    stamped
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

// ---------------------------------------------------------------------------------------------
// Our server

fn serve(args: &ArgMatches) -> anyhow::Result<()> {
    let frames = read_frames(args.get_one::<PathBuf>("frames").expect("required"))?;
    let interval = match args.get_one::<String>("fps").expect("default").as_str() {
        "max" => None,
        fps => Some(Duration::from_secs_f64(
            1.0 / fps.parse::<f64>().context("--fps")?,
        )),
    };
    let host: std::net::IpAddr = args.get_one::<String>("host").expect("default").parse()?;
    let address = SocketAddr::new(host, *args.get_one::<u16>("port").expect("default"));

    let camera = MjpegStream::new();
    let producer = camera.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        for (n, frame) in frames.iter().cycle().enumerate() {
            if let Some(interval) = interval {
                let due = start + interval * n as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            producer
                .add_frame(stamp(frame, now_ns()))
                .expect("frames are JPEGs");
            if interval.is_none() {
                std::thread::yield_now();
            }
        }
    });
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.get_one::<usize>("workers") {
        runtime.worker_threads(*workers);
    }
    let tls = match args.get_one::<PathBuf>("tls-dir") {
        Some(folder) => Some(labthings::serve::TlsCertificate::self_signed(folder, &[])?),
        None => None,
    };
    let record = args.get_one::<PathBuf>("record").cloned();
    let record_seconds = *args.get_one::<f64>("record-seconds").expect("default");
    runtime.enable_all().build()?.block_on(async move {
        if let Some(folder) = record {
            let live = camera.clone();
            tokio::spawn(async move {
                let input: labthings::record::RecordInput =
                    serde_json::from_value(serde_json::json!({"seconds": record_seconds}))
                        .expect("valid arguments");
                let context = labthings::ActionContext::detached();
                match labthings::record::record_into(&folder, &live, "bench", &input, &context)
                    .await
                {
                    Ok(_) => eprintln!("recording finished"),
                    Err(error) => eprintln!("recording failed: {error}"),
                }
            });
        }
        let app = axum::Router::new().merge(stream::routes("/camera/mjpeg_stream", camera));
        let listener = tokio::net::TcpListener::bind(address).await?;
        let server = labthings::serve::serve(listener, app);
        match tls {
            Some(tls) => server.with_tls(tls).await?,
            None => server.await?,
        }
        anyhow::Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Load generator

#[derive(Default)]
struct ViewerResult {
    frames: u64,
    bytes: u64,
    latencies_ms: Vec<f64>,
    error: Option<String>,
    /// The viewer's local port, to find its connection in /proc/net/tcp.
    local_port: u16,
}

fn load(args: &ArgMatches) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(load_async(args))
}

async fn load_async(args: &ArgMatches) -> anyhow::Result<()> {
    let url = args.get_one::<String>("url").expect("required").clone();
    let pid = *args.get_one::<u32>("pid").expect("required");
    let viewers = *args.get_one::<usize>("viewers").expect("default");
    let slow = *args.get_one::<usize>("slow").expect("default");
    let slow_rate = *args.get_one::<u64>("slow-rate").expect("default");
    let warmup = Duration::from_secs_f64(*args.get_one::<f64>("warmup").expect("default"));
    let seconds = Duration::from_secs_f64(*args.get_one::<f64>("seconds").expect("default"));
    let (address, path, https) = split_url(&url)?;
    let tls = match (https, args.get_one::<PathBuf>("ca")) {
        (false, _) => None,
        (true, Some(ca)) => Some(Tls::new(ca, args.get_flag("http2"))?),
        (true, None) => bail!("an https:// URL needs --ca"),
    };
    if tls.as_ref().is_some_and(|tls| tls.http2) && slow > 0 {
        bail!("slow viewers are read over HTTP/1.1 only");
    }

    let start = Instant::now();
    let measure_from = start + warmup;
    let measure_until = measure_from + seconds;
    let mut tasks = Vec::new();
    for n in 0..viewers + slow {
        let rate = (n >= viewers).then_some(slow_rate);
        let path = path.clone();
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut result = ViewerResult::default();
            if let Err(error) = view(
                address,
                &path,
                tls.as_ref(),
                rate,
                measure_from,
                measure_until,
                &mut result,
            )
            .await
            {
                result.error = Some(format!("{error:#}"));
            }
            result
        }));
    }
    // Sample the server while the viewers run.
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = process_cpu_seconds(pid)?;
    let mut max_send_queue: u64 = 0;
    let server_port = address.port();
    let mut slow_ports: Vec<u16> = Vec::new();
    while Instant::now() < measure_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if slow > 0 {
            if slow_ports.is_empty() {
                slow_ports = SLOW_PORTS.lock().expect("not poisoned").clone();
            }
            for queue in send_queues(server_port, &slow_ports) {
                max_send_queue = max_send_queue.max(queue);
            }
        }
    }
    let cpu = process_cpu_seconds(pid)? - cpu_before;
    let peak_rss_kb = peak_rss_kb(pid)?;
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await?);
    }
    let (normal, slow_results) = results.split_at(viewers);
    let delivered: u64 = results.iter().map(|r| r.frames).sum();
    let delivered_bytes: u64 = results.iter().map(|r| r.bytes).sum();
    let errors: Vec<&String> = results.iter().filter_map(|r| r.error.as_ref()).collect();
    let fps: Vec<f64> = normal
        .iter()
        .map(|r| r.frames as f64 / seconds.as_secs_f64())
        .collect();
    let mut latencies: Vec<f64> = normal
        .iter()
        .flat_map(|r| r.latencies_ms.iter().copied())
        .collect();
    let mut slow_latencies: Vec<f64> = slow_results
        .iter()
        .flat_map(|r| r.latencies_ms.iter().copied())
        .collect();
    let report = serde_json::json!({
        "label": args.get_one::<String>("label").expect("default"),
        "viewers": viewers,
        "slow_viewers": slow,
        "seconds": seconds.as_secs_f64(),
        "fps_mean": mean(&fps),
        "fps_min": fps.iter().copied().fold(f64::INFINITY, f64::min),
        "delivered_frames": delivered,
        "throughput_mb_s": delivered_bytes as f64 / seconds.as_secs_f64() / 1e6,
        "cpu_seconds": cpu,
        "cpu_us_per_frame": if delivered > 0 { cpu * 1e6 / delivered as f64 } else { f64::NAN },
        "latency_p50_ms": percentile(&mut latencies, 0.50),
        "latency_p99_ms": percentile(&mut latencies, 0.99),
        "slow_fps": (slow > 0).then(|| {
            slow_results.iter().map(|r| r.frames as f64).sum::<f64>() / seconds.as_secs_f64() / slow as f64
        }),
        "slow_latency_p50_ms": percentile(&mut slow_latencies, 0.50),
        "slow_latency_max_ms": slow_latencies.last().copied(),
        "slow_send_queue_max_bytes": if slow > 0 { Some(max_send_queue) } else { None },
        "peak_rss_mb": peak_rss_kb as f64 / 1024.0,
        "errors": errors.len(),
        "first_error": errors.first(),
    });
    println!("{report}");
    Ok(())
}

static SLOW_PORTS: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// TLS for the viewers: the certificate to trust, and HTTP/2 or HTTP/1.1.
#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    http2: bool,
}

impl Tls {
    fn new(ca: &Path, http2: bool) -> anyhow::Result<Self> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject as _};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).context("--ca")? {
            roots.add(cert.context("--ca")?)?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![if http2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
            http2,
        })
    }
}

/// A viewer's connection: plain TCP or TLS.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

/// One viewer: a raw HTTP/1.1 request (or an HTTP/2 stream), then frames counted until `until`.
async fn view(
    address: SocketAddr,
    path: &str,
    tls: Option<&Tls>,
    rate: Option<u64>,
    measure_from: Instant,
    until: Instant,
    result: &mut ViewerResult,
) -> anyhow::Result<()> {
    let tcp = TcpStream::connect(address).await.context("connect")?;
    tcp.set_nodelay(true)?;
    result.local_port = tcp.local_addr()?.port();
    let mut tcp: Box<dyn Connection> = match tls {
        None => Box::new(tcp),
        Some(tls) => {
            let name = tokio_rustls::rustls::pki_types::ServerName::from(address.ip());
            let stream = tls.connector.connect(name, tcp).await.context("TLS")?;
            if tls.http2 {
                return view_http2(stream, address, path, measure_from, until, result).await;
            }
            Box::new(stream)
        }
    };
    if rate.is_some() {
        SLOW_PORTS
            .lock()
            .expect("not poisoned")
            .push(result.local_port);
    }
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
        .await?;
    let mut buffer = vec![0u8; if rate.is_some() { 4096 } else { 256 * 1024 }];
    let mut head = Vec::new();
    let mut body = Body::default();
    let started = Instant::now();
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        let mut want = buffer.len();
        if let Some(rate) = rate {
            // A token bucket: read no faster than `rate` bytes per second.
            let allowed = (started.elapsed().as_secs_f64() * rate as f64) - body.total as f64;
            if allowed < 1.0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            want = want.min(allowed as usize);
        }
        let read = tokio::time::timeout(until - now, tcp.read(&mut buffer[..want])).await;
        let Ok(read) = read else { return Ok(()) };
        let n = read.context("read")?;
        if n == 0 {
            bail!("the server closed the stream");
        }
        let received_ns = now_ns();
        let counting = Instant::now() >= measure_from;
        let mut data = &buffer[..n];
        if !body.started {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head_text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            if !head_text.starts_with("http/1.1 200") {
                bail!(
                    "unexpected response: {}",
                    head_text.lines().next().unwrap_or_default()
                );
            }
            body.started = true;
            body.chunked = head_text.contains("transfer-encoding: chunked");
            let rest = head.split_off(end + 4);
            body.feed(&rest, received_ns, counting, result);
            data = &[];
        }
        body.feed(data, received_ns, counting, result);
    }
}

/// One viewer over HTTP/2: one stream on its own connection.
async fn view_http2(
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    address: SocketAddr,
    path: &str,
    measure_from: Instant,
    until: Instant,
    result: &mut ViewerResult,
) -> anyhow::Result<()> {
    use http_body_util::BodyExt as _;
    let (mut send, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .context("HTTP/2 handshake")?;
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("https://{address}{path}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let response = send.send_request(request).await.context("request")?;
    if response.status() != 200 {
        bail!("unexpected response: {}", response.status());
    }
    let mut response = response.into_body();
    let mut body = Body {
        started: true,
        ..Body::default()
    };
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        let Ok(frame) = tokio::time::timeout(until - now, response.frame()).await else {
            return Ok(());
        };
        let Some(frame) = frame else {
            bail!("the server closed the stream");
        };
        let received_ns = now_ns();
        let counting = Instant::now() >= measure_from;
        if let Ok(data) = frame.context("read")?.into_data() {
            body.feed(&data, received_ns, counting, result);
        }
    }
}

/// Undoes chunked transfer coding and finds frames by their `LTBENCH` stamp.
#[derive(Default)]
struct Body {
    started: bool,
    chunked: bool,
    /// Chunked coding state: bytes left in the current chunk, and the size line being read.
    chunk_left: usize,
    size_line: Vec<u8>,
    skip_crlf: usize,
    /// Bytes of the multipart body seen so far.
    total: u64,
    /// Where the frame being received ends, and when it was pushed.
    frame_end: Option<(u64, u128)>,
    /// Bytes between frames, searched for the next stamp.
    gap: Vec<u8>,
}

const STAMP: &[u8] = b"LTBENCH:";
const STAMP_LEN: usize = 8 + 20 + 1 + 10 + 1;

impl Body {
    fn feed(
        &mut self,
        mut data: &[u8],
        received_ns: u128,
        counting: bool,
        result: &mut ViewerResult,
    ) {
        if !self.chunked {
            self.payload(data, received_ns, counting, result);
            return;
        }
        while !data.is_empty() {
            if self.skip_crlf > 0 {
                let n = self.skip_crlf.min(data.len());
                self.skip_crlf -= n;
                data = &data[n..];
            } else if self.chunk_left > 0 {
                let n = self.chunk_left.min(data.len());
                self.payload(&data[..n], received_ns, counting, result);
                self.chunk_left -= n;
                if self.chunk_left == 0 {
                    self.skip_crlf = 2;
                }
                data = &data[n..];
            } else {
                match data.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        self.size_line.extend_from_slice(&data[..end]);
                        let line = String::from_utf8_lossy(&self.size_line);
                        let hex = line.trim().split(';').next().unwrap_or_default();
                        self.chunk_left = usize::from_str_radix(hex, 16).unwrap_or(0);
                        self.size_line.clear();
                        data = &data[end + 1..];
                    }
                    None => {
                        self.size_line.extend_from_slice(data);
                        data = &[];
                    }
                }
            }
        }
    }

    fn payload(
        &mut self,
        mut data: &[u8],
        received_ns: u128,
        counting: bool,
        result: &mut ViewerResult,
    ) {
        while !data.is_empty() {
            if let Some((end, pushed_ns)) = self.frame_end {
                let n = ((end - self.total) as usize).min(data.len());
                self.total += n as u64;
                data = &data[n..];
                if self.total == end {
                    self.frame_end = None;
                    if counting {
                        result.frames += 1;
                        result
                            .latencies_ms
                            .push((received_ns.saturating_sub(pushed_ns)) as f64 / 1e6);
                    }
                }
                continue;
            }
            // Between frames: look for the next stamp, a little at a time.
            let n = data.len().min(512);
            self.gap.extend_from_slice(&data[..n]);
            self.total += n as u64;
            if counting {
                result.bytes += n as u64;
            }
            data = &data[n..];
            if let Some(at) = memchr::memmem::find(&self.gap, STAMP) {
                if self.gap.len() >= at + STAMP_LEN {
                    let stamp = &self.gap[at + STAMP.len()..at + STAMP_LEN - 1];
                    let text = std::str::from_utf8(stamp).unwrap_or_default();
                    let (pushed, length) = text.split_once(':').unwrap_or_default();
                    let pushed_ns: u128 = pushed.parse().unwrap_or(0);
                    let length: u64 = length.parse().unwrap_or(0);
                    // The stamp sits 6 bytes into the frame (SOI, COM marker, segment length).
                    let gap_start = self.total - self.gap.len() as u64;
                    let frame_start = gap_start + at as u64 - 6;
                    let end = frame_start + length;
                    self.gap.clear();
                    if counting {
                        result.bytes += end.saturating_sub(self.total);
                    }
                    if end <= self.total {
                        if counting {
                            result.frames += 1;
                            result
                                .latencies_ms
                                .push((received_ns.saturating_sub(pushed_ns)) as f64 / 1e6);
                        }
                    } else {
                        self.frame_end = Some((end, pushed_ns));
                    }
                }
            } else if self.gap.len() > 8192 {
                let keep = self.gap.split_off(self.gap.len() - STAMP.len());
                self.gap = keep;
            }
        }
    }
}

fn split_url(url: &str) -> anyhow::Result<(SocketAddr, String, bool)> {
    let (rest, https) = match url.strip_prefix("https://") {
        Some(rest) => (rest, true),
        None => (
            url.strip_prefix("http://")
                .context("an http:// or https:// URL")?,
            false,
        ),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let address = authority
        .replace("localhost", "127.0.0.1")
        .parse()
        .with_context(|| format!("an IP address and port, got {authority}"))?;
    Ok((address, format!("/{path}"), https))
}

/// The send queues (`ss`'s Send-Q: bytes written but not yet acknowledged by the peer) of the
/// server's connections to the given client ports, from /proc/net/tcp.
fn send_queues(server_port: u16, client_ports: &[u16]) -> Vec<u64> {
    let mut queues = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 5 {
                continue;
            }
            let port = |field: &str| {
                field
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if port(fields[1]) == Some(server_port)
                && port(fields[2]).is_some_and(|p| client_ports.contains(&p))
                && let Some(tx) = fields[4]
                    .split(':')
                    .next()
                    .and_then(|q| u64::from_str_radix(q, 16).ok())
            {
                queues.push(tx);
            }
        }
    }
    queues
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}
