//! How an [`MjpegClient`](super::MjpegClient) connects: its builder and the reconnection policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// When and how often [`MjpegClient`](super::MjpegClient) reconnects after the stream fails or ends.
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
    pub(super) enabled: bool,
    pub(super) initial: Duration,
    pub(super) max: Duration,
    pub(super) jitter: f64,
    pub(super) max_attempts: Option<u32>,
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

    pub(super) fn gives_up_after(&self, failures: u32) -> bool {
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

/// Configures and starts an [`MjpegClient`](super::MjpegClient); from [`MjpegClient::builder`](super::MjpegClient::builder).
#[derive(Debug, Clone)]
#[must_use = "call `connect` to start the client"]
pub struct MjpegClientBuilder {
    pub(super) url: String,
    pub(super) http: Option<reqwest::Client>,
    pub(super) headers: HeaderMap,
    pub(super) connect_timeout: Duration,
    pub(super) read_timeout: Duration,
    pub(super) frame_timeout: Option<Duration>,
    pub(super) reconnect: Reconnect,
    pub(super) max_frame_size: usize,
    pub(super) queue: usize,
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
    /// [`MjpegStats::discarded`](super::MjpegStats::discarded)). Default 4; at least 1.
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
        match super::super::bearer(token) {
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
}
