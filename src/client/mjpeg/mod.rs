//! `MjpegClient`: frames from an MJPEG stream, with reconnection, stall detection and a
//! drop-oldest queue.
//!
//! - this file: [`Frame`] and [`MjpegClient`], the stream a consumer reads;
//! - `options.rs`: [`MjpegClientBuilder`] and the [`Reconnect`] policy;
//! - `stats.rs`: [`MjpegStats`] and the counters behind them;
//! - `reader.rs`: the reader task (started by [`MjpegClientBuilder::connect`]), its connection
//!   loop and the queue it shares with the client.
//!
//! The state they share is `pub(super)`: visible in this folder only. The parser is
//! `client/multipart.rs`.

mod options;
mod reader;
mod stats;

pub use options::{MjpegClientBuilder, Reconnect};
pub use stats::MjpegStats;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::ClientError;
use super::multipart::DEFAULT_MAX_PART_SIZE;
use reader::{End, Shared};

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

/// A client for an MJPEG (`multipart/x-mixed-replace`) stream: a [`Stream`] of [`Frame`]s.
///
/// A background task reads the stream and keeps the newest frames in a short queue; when the
/// consumer falls behind, the oldest frames are dropped and counted, so it always gets recent
/// ones. The task reconnects with exponential backoff when the connection fails, ends or
/// stalls (see [`Reconnect`]). It gives up, and the stream yields that error and ends, on an
/// answer that will not change by retrying (a 4xx status other than 408 and 429, or a body
/// that is not a multipart stream), or when the reconnection policy says so.
///
/// Any MJPEG server works: the parser is [`MultipartParser`](super::MultipartParser). Frame index and capture time
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
