//! `MjpegClient`: frames from an MJPEG stream, with reconnection, stall detection and a
//! drop-oldest queue.
//!
//! Longer than most files (about 700 lines) for a reason: the reader task, its builder, its
//! statistics and its queue share one private state and one connection loop, and splitting
//! them would make that state crate-visible. The parser it uses is its own file.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::ClientError;
use super::multipart::{DEFAULT_MAX_PART_SIZE, MultipartParser, Part};

/// One frame from an MJPEG stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The JPEG bytes.
    pub data: Bytes,
    /// This client's count of frames received before this one, across reconnections. A gap in
    /// the sequence numbers a consumer sees is frames the queue dropped for it.
    pub sequence: u64,
    /// The server's frame index (`X-Frame-Index`), when the server sends one.
    pub index: Option<u64>,
    /// When the server captured the frame (`X-Timestamp`), when the server sends it.
    pub timestamp: Option<DateTime<Utc>>,
    /// When this client finished receiving the frame.
    pub received: DateTime<Utc>,
    /// The part's `Content-Type`, normally `image/jpeg`.
    pub content_type: Option<String>,
}

impl Frame {
    /// How long after its capture the frame arrived: `received - timestamp`. Meaningful when
    /// the two clocks agree (the same machine, or NTP).
    pub fn latency(&self) -> Option<chrono::TimeDelta> {
        Some(self.received - self.timestamp?)
    }
}

/// When and how often [`MjpegClient`] reconnects after the stream fails or ends.
///
/// The delay before the `n`th reconnection attempt in a row is `initial * 2^(n-1)`, capped at
/// `max`, then shortened by a random fraction of up to `jitter` so that many clients do not
/// reconnect in step. A connection that delivers a frame resets the count.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use labthings::client::Reconnect;
///
/// let policy = Reconnect::backoff(Duration::from_millis(100), Duration::from_secs(2))
///     .jitter(0.5)
///     .max_attempts(10);
/// let delay = policy.delay(3); // 400 ms, less up to half of it
/// assert!(delay <= Duration::from_millis(400) && delay >= Duration::from_millis(200));
/// assert_eq!(Reconnect::never().delay(1), Duration::ZERO);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    enabled: bool,
    initial: Duration,
    max: Duration,
    jitter: f64,
    max_attempts: Option<u32>,
}

impl Reconnect {
    /// Never reconnect: the stream ends with the connection.
    pub fn never() -> Self {
        Self {
            enabled: false,
            initial: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
            max_attempts: Some(0),
        }
    }

    /// Exponential backoff from `initial` up to `max`, with a jitter of 0.25, forever.
    pub fn backoff(initial: Duration, max: Duration) -> Self {
        Self {
            enabled: true,
            initial,
            max: max.max(initial),
            jitter: 0.25,
            max_attempts: None,
        }
    }

    /// Shortens each delay by a random fraction of up to `fraction` (clamped to 0..=1; 0 for
    /// exact delays).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Gives up after this many failed attempts in a row; the stream then ends with the last
    /// error.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The delay before the `attempt`th reconnection attempt in a row (counting from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        if !self.enabled {
            return Duration::ZERO;
        }
        let doublings = attempt.saturating_sub(1).min(32);
        let base = self
            .initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max);
        base.mul_f64(1.0 - self.jitter * random_unit())
    }

    fn gives_up_after(&self, failures: u32) -> bool {
        !self.enabled || self.max_attempts.is_some_and(|max| failures > max)
    }
}

impl Default for Reconnect {
    /// Backoff from 100 ms to 5 s, jitter 0.25, forever.
    fn default() -> Self {
        Self::backoff(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// A number in [0, 1), random enough for jitter, from the standard library's hasher keys.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A snapshot of an [`MjpegClient`]'s counters, from [`MjpegClient::stats`]. Its `Display` is
/// one line for a log or a terminal.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MjpegStats {
    /// Whether a stream is being read now.
    pub connected: bool,
    /// Frames per second received over the last two seconds.
    pub fps: f64,
    /// Frame bytes per second received over the last two seconds.
    pub bytes_per_second: f64,
    /// Frames received in all.
    pub frames: u64,
    /// Frame bytes received in all.
    pub bytes: u64,
    /// Frames dropped from the queue because the consumer was behind.
    pub discarded: u64,
    /// Parts skipped for being larger than the maximum frame size.
    pub too_large: u64,
    /// Frames the server skipped for this client: gaps in its `X-Frame-Index`.
    pub server_skipped: u64,
    /// Reconnection attempts.
    pub reconnects: u64,
    /// Frames waiting in the queue.
    pub queued: usize,
    /// The error that ended the last connection, if one did.
    pub last_error: Option<String>,
}

impl fmt::Display for MjpegStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:.1} fps, {:.2} Mbit/s, {} frames ({:.1} MB), {} discarded, {} too large, \
             {} skipped by the server, {} reconnects",
            if self.connected {
                "connected"
            } else {
                "disconnected"
            },
            self.fps,
            self.bytes_per_second * 8.0 / 1e6,
            self.frames,
            self.bytes as f64 / 1e6,
            self.discarded,
            self.too_large,
            self.server_skipped,
            self.reconnects,
        )?;
        if let Some(error) = &self.last_error {
            write!(f, "; last error: {error}")?;
        }
        Ok(())
    }
}

/// Configures and starts an [`MjpegClient`]; from [`MjpegClient::builder`].
#[derive(Debug, Clone)]
#[must_use = "call `connect` to start the client"]
pub struct MjpegClientBuilder {
    url: String,
    http: Option<reqwest::Client>,
    headers: HeaderMap,
    connect_timeout: Duration,
    read_timeout: Duration,
    frame_timeout: Option<Duration>,
    reconnect: Reconnect,
    max_frame_size: usize,
    queue: usize,
}

impl MjpegClientBuilder {
    /// Time allowed to connect and receive the response headers. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest silence from the server before the connection counts as stalled and is
    /// reconnected. Default 10 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Longest time without a complete frame (even if bytes trickle in) before the connection
    /// counts as stalled. Off by default: a camera may pause.
    pub fn frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = Some(timeout);
        self
    }

    /// The reconnection policy. Default: [`Reconnect::default`].
    pub fn reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Largest frame kept, in bytes; larger ones are skipped and counted, never buffered in
    /// full. Default 16 MiB.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// How many frames wait for a slow consumer before the oldest is dropped (and counted in
    /// [`MjpegStats::discarded`]). Default 4; at least 1.
    pub fn queue_capacity(mut self, frames: usize) -> Self {
        self.queue = frames.max(1);
        self
    }

    /// Sends this header with every request, e.g. `Authorization`.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn bearer_token(self, token: &str) -> Self {
        match super::bearer(token) {
            Some(value) => self.header(header::AUTHORIZATION, value),
            None => self,
        }
    }

    /// Uses this HTTP client (for its proxy, TLS or pool settings). It should have no overall
    /// request timeout: a stream is one long response.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Starts reading the stream in a background task. Must be called within a Tokio runtime.
    pub fn connect(self) -> MjpegClient {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(self.queue),
                capacity: self.queue,
                waker: None,
                end: End::Running,
                counters: Counters::default(),
            }),
        });
        let task = tokio::spawn(run(self, shared.clone()));
        MjpegClient { shared, task }
    }
}

/// A client for an MJPEG (`multipart/x-mixed-replace`) stream: a [`Stream`] of [`Frame`]s.
///
/// A background task reads the stream and keeps the newest frames in a short queue; when the
/// consumer falls behind, the oldest frames are dropped and counted, so it always gets recent
/// ones. The task reconnects with exponential backoff when the connection fails, ends or
/// stalls (see [`Reconnect`]). It gives up, and the stream yields that error and ends, on an
/// answer that will not change by retrying (a 4xx status other than 408 and 429, or a body
/// that is not a multipart stream), or when the reconnection policy says so.
///
/// Any MJPEG server works: the parser is [`MultipartParser`]. Frame index and capture time
/// are filled in when the server sends `X-Frame-Index` and `X-Timestamp`, as ours does.
/// Dropping the client stops its task.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use labthings::client::{MjpegClient, Reconnect};
///
/// # async fn run() -> Result<(), labthings::client::ClientError> {
/// let mut frames = MjpegClient::builder("http://127.0.0.1:5000/camera/mjpeg_stream")
///     .read_timeout(Duration::from_secs(3))
///     .reconnect(Reconnect::backoff(Duration::from_millis(200), Duration::from_secs(10)))
///     .connect();
/// while let Some(frame) = frames.next_frame().await {
///     let frame = frame?;
///     println!("{} bytes, {:?} late", frame.data.len(), frame.latency());
///     println!("{}", frames.stats());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MjpegClient {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl MjpegClient {
    /// A builder for a client of the stream at `url`.
    pub fn builder(url: impl Into<String>) -> MjpegClientBuilder {
        MjpegClientBuilder {
            url: url.into(),
            http: None,
            headers: HeaderMap::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            frame_timeout: None,
            reconnect: Reconnect::default(),
            max_frame_size: DEFAULT_MAX_PART_SIZE,
            queue: 4,
        }
    }

    /// Starts a client of the stream at `url` with the default settings. Must be called within
    /// a Tokio runtime.
    pub fn connect(url: impl Into<String>) -> Self {
        Self::builder(url).connect()
    }

    /// The next frame; `None` once the client has given up (after yielding the reason).
    pub async fn next_frame(&mut self) -> Option<Result<Frame, ClientError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The counters so far; cheap, callable at any time.
    pub fn stats(&self) -> MjpegStats {
        let state = self.shared.lock();
        state.counters.snapshot(state.queue.len())
    }
}

impl Stream for MjpegClient {
    type Item = Result<Frame, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.shared.lock();
        if let Some(frame) = state.queue.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match std::mem::replace(&mut state.end, End::Done) {
            End::Running => {
                state.end = End::Running;
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            End::Failed(error) => Poll::Ready(Some(Err(error))),
            End::Done => Poll::Ready(None),
        }
    }
}

impl Drop for MjpegClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await-free step; a panic elsewhere cannot break it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Frame>,
    capacity: usize,
    waker: Option<Waker>,
    end: End,
    counters: Counters,
}

impl State {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

#[derive(Debug)]
enum End {
    Running,
    Failed(ClientError),
    Done,
}

#[derive(Debug, Default)]
struct Counters {
    connected: bool,
    frames: u64,
    bytes: u64,
    discarded: u64,
    too_large: u64,
    server_skipped: u64,
    reconnects: u64,
    last_error: Option<String>,
    last_index: Option<u64>,
    /// Arrival time and size of the frames of the last two seconds.
    recent: VecDeque<(Instant, usize)>,
}

/// The window over which rates are measured.
const RATE_WINDOW: Duration = Duration::from_secs(2);

impl Counters {
    fn prune(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    fn snapshot(&self, queued: usize) -> MjpegStats {
        let now = Instant::now();
        let recent: Vec<_> = self
            .recent
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= RATE_WINDOW)
            .collect();
        let (fps, bytes_per_second) = match (recent.first(), recent.last()) {
            (Some(first), Some(last)) if recent.len() > 1 => {
                let span = last.0.duration_since(first.0).as_secs_f64().max(1e-6);
                let bytes: usize = recent[1..].iter().map(|(_, size)| size).sum();
                ((recent.len() - 1) as f64 / span, bytes as f64 / span)
            }
            _ => (0.0, 0.0),
        };
        MjpegStats {
            connected: self.connected,
            fps,
            bytes_per_second,
            frames: self.frames,
            bytes: self.bytes,
            discarded: self.discarded,
            too_large: self.too_large,
            server_skipped: self.server_skipped,
            reconnects: self.reconnects,
            queued,
            last_error: self.last_error.clone(),
        }
    }
}

/// Reads the stream, reconnecting as the policy says, until it gives up.
async fn run(config: MjpegClientBuilder, shared: Arc<Shared>) {
    let http = match config.http.clone() {
        Some(http) => Ok(http),
        None => reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|error| ClientError::http(&config.url, error)),
    };
    let http = match http {
        Ok(http) => http,
        Err(error) => return finish(&shared, Some(error)),
    };
    let mut failures = 0;
    loop {
        let (error, delivered) = session(&http, &config, &shared).await;
        {
            let mut state = shared.lock();
            state.counters.connected = false;
            state.counters.last_index = None;
            state.counters.last_error = Some(error.to_string());
        }
        tracing::debug!(url = %config.url, %error, "MJPEG stream connection ended");
        failures = if delivered { 1 } else { failures + 1 };
        if is_final(&error) || config.reconnect.gives_up_after(failures) {
            let clean =
                matches!(error, ClientError::Disconnected { .. }) && !config.reconnect.enabled;
            return finish(&shared, (!clean).then_some(error));
        }
        tokio::time::sleep(config.reconnect.delay(failures)).await;
        shared.lock().counters.reconnects += 1;
    }
}

fn finish(shared: &Shared, error: Option<ClientError>) {
    let mut state = shared.lock();
    state.end = error.map_or(End::Done, End::Failed);
    state.wake();
}

/// Errors that retrying will not cure.
fn is_final(error: &ClientError) -> bool {
    match error {
        ClientError::Problem { status, .. } => {
            status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429
        }
        ClientError::Protocol { .. } | ClientError::InvalidUrl { .. } => true,
        _ => false,
    }
}

/// One connection: returns why it ended, and whether it delivered a frame.
async fn session(
    http: &reqwest::Client,
    config: &MjpegClientBuilder,
    shared: &Shared,
) -> (ClientError, bool) {
    let url = &config.url;
    let request = http
        .get(url)
        .headers(config.headers.clone())
        .header(header::ACCEPT, "multipart/x-mixed-replace");
    let response = match tokio::time::timeout(config.connect_timeout, request.send()).await {
        Err(_) => {
            let what = format!("connecting to {url}");
            let after = config.connect_timeout;
            return (ClientError::Timeout { what, after }, false);
        }
        Ok(Err(error)) => return (ClientError::http(url, error), false),
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        let read = ClientError::from_response(response);
        let error = tokio::time::timeout(config.read_timeout, read)
            .await
            .unwrap_or_else(|_| ClientError::Timeout {
                what: format!("the error body from {url}"),
                after: config.read_timeout,
            });
        return (error, false);
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut parser = match MultipartParser::from_content_type(&content_type) {
        Ok(parser) => parser.max_part_size(config.max_frame_size),
        Err(error) => return (ClientError::protocol(url, error.to_string()), false),
    };
    shared.lock().counters.connected = true;
    tracing::debug!(%url, "MJPEG stream connected");

    let mut response = response;
    let mut delivered = false;
    let mut too_large = 0;
    let mut last_frame = Instant::now();
    loop {
        let read_deadline = Instant::now() + config.read_timeout;
        let frame_deadline = config.frame_timeout.map(|timeout| last_frame + timeout);
        let deadline = frame_deadline.map_or(read_deadline, |frame| frame.min(read_deadline));
        let chunk = match tokio::time::timeout_at(deadline.into(), response.chunk()).await {
            Err(_) => {
                let (what, after) = match (frame_deadline, config.frame_timeout) {
                    (Some(frame), Some(timeout)) if frame <= read_deadline => {
                        (format!("a frame from {url}"), timeout)
                    }
                    _ => (format!("data from {url}"), config.read_timeout),
                };
                return (ClientError::Timeout { what, after }, delivered);
            }
            Ok(Err(error)) => return (ClientError::http(url, error), delivered),
            Ok(Ok(None)) => {
                if let Some(part) = parser.finish() {
                    deliver(shared, part);
                    delivered = true;
                }
                return (ClientError::Disconnected { url: url.clone() }, delivered);
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        parser.push(&chunk);
        while let Some(part) = parser.next_part() {
            deliver(shared, part);
            delivered = true;
            last_frame = Instant::now();
        }
        if parser.too_large() > too_large {
            shared.lock().counters.too_large += parser.too_large() - too_large;
            too_large = parser.too_large();
        }
    }
}

fn deliver(shared: &Shared, part: Part) {
    let index: Option<u64> = part.header("x-frame-index").and_then(|v| v.parse().ok());
    let timestamp = part
        .header("x-timestamp")
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc));
    let content_type = part.header("content-type").map(str::to_owned);
    let now = Instant::now();
    let mut state = shared.lock();
    let counters = &mut state.counters;
    if let (Some(index), Some(last)) = (index, counters.last_index) {
        counters.server_skipped += index.saturating_sub(last + 1);
    }
    counters.last_index = index.or(counters.last_index);
    let frame = Frame {
        sequence: counters.frames,
        data: part.body,
        index,
        timestamp,
        received: Utc::now(),
        content_type,
    };
    counters.frames += 1;
    counters.bytes += frame.data.len() as u64;
    counters.recent.push_back((now, frame.data.len()));
    counters.prune(now);
    if state.queue.len() >= state.capacity {
        state.queue.pop_front();
        state.counters.discarded += 1;
    }
    state.queue.push_back(frame);
    state.wake();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_only_shortens() {
        let policy = Reconnect::backoff(Duration::from_millis(100), Duration::from_secs(1));
        for (attempt, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
        ] {
            let base = Duration::from_millis(base);
            for _ in 0..50 {
                let delay = policy.delay(attempt);
                assert!(
                    delay <= base && delay >= base.mul_f64(0.75),
                    "{attempt}: {delay:?}"
                );
            }
        }
        let exact = policy.clone().jitter(0.0);
        assert_eq!(exact.delay(2), Duration::from_millis(200));
        let delays: std::collections::HashSet<_> = (0..20).map(|_| policy.delay(3)).collect();
        assert!(delays.len() > 1, "jitter varies the delay");
    }

    #[test]
    fn attempts_are_limited_as_configured() {
        assert!(Reconnect::never().gives_up_after(1));
        let policy = Reconnect::default().max_attempts(3);
        assert!(!policy.gives_up_after(3));
        assert!(policy.gives_up_after(4));
        assert!(!Reconnect::default().gives_up_after(u32::MAX));
    }
}
