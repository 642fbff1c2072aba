//! Helpers: start a server on port 0, read an MJPEG body part by part.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bytes::{Buf, Bytes, BytesMut};

/// Serves `router` on 127.0.0.1 at a free port; the server lives as long as the runtime.
pub async fn spawn_server(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { labthings::serve::serve(listener, router).await.unwrap() });
    address
}

/// A JPEG-shaped frame (SOI, payload, EOI) of `len` bytes whose payload encodes `tag`.
pub fn fake_jpeg(tag: u64, len: usize) -> Vec<u8> {
    assert!(len >= 12);
    let mut frame = vec![0xFF, 0xD8];
    frame.extend_from_slice(&tag.to_be_bytes());
    frame.resize(len - 2, (tag % 251) as u8);
    frame.extend_from_slice(&[0xFF, 0xD9]);
    frame
}

/// One part of a multipart body.
#[derive(Debug)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn index(&self) -> u64 {
        self.header("x-frame-index").unwrap().parse().unwrap()
    }
}

/// A strict reader of our MJPEG wire format: it checks the opening delimiter, takes the part
/// length from `Content-Length`, and yields a part only once the closing delimiter that must
/// follow it has arrived (as a browser would).
pub struct MjpegReader {
    response: reqwest::Response,
    buffer: BytesMut,
    opened: bool,
}

const OPENING: &[u8] = b"--frame\r\n";
const CLOSING: &[u8] = b"\r\n--frame\r\n";

impl MjpegReader {
    pub async fn connect(url: &str) -> Self {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "multipart/x-mixed-replace; boundary=frame"
        );
        Self::new(response)
    }

    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: BytesMut::new(),
            opened: false,
        }
    }

    /// The next complete part, `None` if the body ended; panics on a format error or timeout.
    pub async fn next_part(&mut self, timeout: Duration) -> Option<Part> {
        tokio::time::timeout(timeout, self.read_part())
            .await
            .expect("a part arrives in time")
    }

    async fn read_part(&mut self) -> Option<Part> {
        loop {
            if let Some(part) = self.try_parse() {
                return Some(part);
            }
            match self.response.chunk().await.unwrap() {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => {
                    assert!(
                        self.buffer.is_empty(),
                        "the body ended inside a part: {} bytes left",
                        self.buffer.len()
                    );
                    return None;
                }
            }
        }
    }

    fn try_parse(&mut self) -> Option<Part> {
        if !self.opened {
            if self.buffer.len() < OPENING.len() {
                return None;
            }
            assert_eq!(
                &self.buffer[..OPENING.len()],
                OPENING,
                "body opens with --frame"
            );
            self.buffer.advance(OPENING.len());
            self.opened = true;
        }
        let head_end = self.buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&self.buffer[..head_end]).expect("ASCII headers");
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .map(|line| {
                let (name, value) = line.split_once(':').expect("a header line");
                (name.trim().to_owned(), value.trim().to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .expect("every part has Content-Length")
            .1
            .parse()
            .unwrap();
        let body_start = head_end + 4;
        if self.buffer.len() < body_start + length + CLOSING.len() {
            return None;
        }
        assert_eq!(
            &self.buffer[body_start + length..body_start + length + CLOSING.len()],
            CLOSING,
            "the closing delimiter follows the frame at once"
        );
        self.buffer.advance(body_start);
        let body = self.buffer.split_to(length).freeze();
        self.buffer.advance(CLOSING.len());
        Some(Part { headers, body })
    }
}

/// Serves a [`labthings::ThingServer`] on 127.0.0.1 at a free port until `shutdown` fires;
/// returns the address and the server's task.
pub async fn spawn_thing_server(
    server: labthings::ThingServer,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), labthings::server::ServerError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_with(listener, async move {
        let _ = stopped.await;
    }));
    (address, stop, task)
}

/// Reads a problem JSON response, checking its media type and status.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status, "status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "problem media type"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["detail"].is_string(), "{body}");
    body
}

/// Waits until an asynchronous `ready` holds, for at most 60 s.
pub async fn eventually_async<F: std::future::Future<Output = bool>>(mut ready: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready().await {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `ready` holds, for at most 60 s.
pub async fn eventually(mut ready: impl FnMut() -> bool) {
    // Generous: a loaded 2-core machine (a cold build beside the tests) is slow, and the
    // deadline only matters when the condition never comes.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An example's binary, built by `cargo test` beside this test binary.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile = deps.parent().unwrap().parent().unwrap();
    let binary = profile.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the examples",
        binary.display()
    );
    binary
}

/// Held by tests that need the machine's cores to themselves (load tests, and the compile
/// tests that would starve them), so that they do not overlap.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serves the microscope example's built-in configuration (stage + camera) with these
/// connection options for the rest of the test's runtime; returns its address.
pub async fn spawn_microscope(options: labthings::serve::ConnectionOptions) -> SocketAddr {
    spawn_configured(crate::example_things::MICROSCOPE_CONFIG, options).await
}

/// Serves the example Things a configuration file (JSON) names, until the test ends.
pub async fn spawn_configured(
    config: &str,
    options: labthings::serve::ConnectionOptions,
) -> SocketAddr {
    // Settings are not kept unless the test says where (the default is `./settings`, which
    // parallel tests would share).
    let mut config: serde_json::Value = serde_json::from_str(config).unwrap();
    if config.get("settings_folder").is_none() {
        config["settings_folder"] = serde_json::Value::Null;
    }
    let config = labthings::server::ServerConfig::from_json(&config.to_string()).unwrap();
    Captured::start();
    let server = crate::example_things::registry()
        .builder(&config)
        .unwrap()
        .connection(options)
        .build()
        .unwrap();
    let (address, stop, _task) = spawn_thing_server(server).await;
    std::mem::forget(stop);
    address
}

/// A server's `/metrics` text.
pub async fn metrics_text(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one sample line of a Prometheus text exposition.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
        .parse()
        .unwrap()
}

/// The sum of every sample of a metric family (all its label sets).
pub fn sum_of(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// The microscope example's binary, serving on a free port.
pub struct MicroscopeProcess {
    pub child: tokio::process::Child,
    /// Its working directory, where its default `./settings` goes.
    _cwd: tempfile::TempDir,
    /// `host:port`.
    pub address: String,
    /// Everything it has logged so far.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl MicroscopeProcess {
    /// Starts it with a configuration file and waits until it serves.
    pub async fn start(config: &std::path::Path) -> Self {
        use tokio::io::AsyncBufReadExt;
        let cwd = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(example_binary("microscope"))
            .current_dir(cwd.path())
            .arg("--config")
            .arg(config)
            .args(["--port", "0"])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(at) = line.find("serving on http://") {
                    return line[at + "serving on http://".len()..].trim().to_owned();
                }
            }
            panic!("the microscope exited before serving");
        })
        .await
        .expect("the microscope serves within 30 s");
        // Keep reading its log so that it never blocks on a full pipe.
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Self {
            child,
            _cwd: cwd,
            address,
            log,
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Sends a raw request and reads until the server closes or `patience` runs out.
pub async fn raw_exchange(
    address: SocketAddr,
    request: &[u8],
    patience: std::time::Duration,
) -> (Vec<u8>, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(patience, async {
        let mut buffer = [0u8; 4096];
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (answer, closed)
}

/// Log lines written by the server's `tracing` events.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The log of the whole test binary, from a global subscriber installed on first use
    /// (by [`builder`] and [`spawn_configured`] too, before any server is built, so that the
    /// framework's own terminal log never takes its place).
    /// (A per-thread subscriber is not reliable here: tracing caches per call site whether
    /// anyone listens, and tests run in parallel.) Tests look for lines only they produce.
    pub fn start() -> Self {
        static GLOBAL: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let captured = Self::default();
                let writer = captured.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_env_filter("labthings=info")
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in the tests");
                captured
            })
            .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A server builder for tests: the test log captured, and no settings kept unless the test
/// gives a folder (the default `./settings` would be shared by tests running in parallel).
pub fn builder() -> labthings::server::ThingServerBuilder {
    Captured::start();
    labthings::ThingServer::builder().without_settings_folder()
}

/// Sends a request and reads its body (of any status).
pub async fn bytes_of(request: reqwest::RequestBuilder) -> bytes::Bytes {
    request.send().await.unwrap().bytes().await.unwrap()
}

/// Sends a request and reads its JSON answer (of any status).
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}
