//! The reader task of an [`MjpegClient`](super::MjpegClient): connects, parses, reconnects, and
//! hands frames to the drop-oldest queue it shares with the client.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use axum::http::header;
use chrono::{DateTime, Utc};

use super::super::ClientError;
use super::super::multipart::{MultipartParser, Part};
use super::options::MjpegClientBuilder;
use super::stats::Counters;
use super::{Frame, MjpegClient};

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await-free step; a panic elsewhere cannot break it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) queue: VecDeque<Frame>,
    pub(super) capacity: usize,
    pub(super) waker: Option<Waker>,
    pub(super) end: End,
    pub(super) counters: Counters,
}

impl State {
    pub(super) fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

#[derive(Debug)]
pub(super) enum End {
    Running,
    Failed(ClientError),
    Done,
}

/// Reads the stream, reconnecting as the policy says, until it gives up.
pub(super) async fn run(config: MjpegClientBuilder, shared: Arc<Shared>) {
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

pub(super) fn finish(shared: &Shared, error: Option<ClientError>) {
    let mut state = shared.lock();
    state.end = error.map_or(End::Done, End::Failed);
    state.wake();
}

/// Errors that retrying will not cure.
pub(super) fn is_final(error: &ClientError) -> bool {
    match error {
        ClientError::Problem { status, .. } => {
            status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429
        }
        ClientError::Protocol { .. } | ClientError::InvalidUrl { .. } => true,
        _ => false,
    }
}

/// One connection: returns why it ended, and whether it delivered a frame.
pub(super) async fn session(
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

pub(super) fn deliver(shared: &Shared, part: Part) {
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

impl MjpegClientBuilder {
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
