//! Request logs and the `/metrics` endpoint (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::route_table::RouteTable;
use crate::action::Invocations;
use crate::event::EventLog;
use crate::layout;
use crate::openapi::RouteDoc;
use crate::stream::MjpegStream;

/// The media type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads one number from a stream's counters.
type StreamValue = fn(&crate::stream::StreamStats) -> u64;

/// What `/metrics` reports.
pub(crate) struct Metrics {
    /// Requests answered, by method and status.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// (thing, stream name, stream).
    streams: Mutex<Vec<(String, String, MjpegStream)>>,
    invocations: Arc<Invocations>,
    /// Websocket observers connected now.
    websockets: AtomicUsize,
    /// Server-Sent Events subscribers connected now.
    sse: AtomicUsize,
    /// (thing, kind: `events` or `properties`, log).
    logs: Mutex<Vec<(String, &'static str, Arc<EventLog>)>>,
    /// Registration with a Thing Description Directory, when one is configured.
    directory: std::sync::OnceLock<Arc<DirectoryStatus>>,
    started: Instant,
}

/// How registration with a Thing Description Directory goes, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct DirectoryStatus {
    url: String,
    /// Whether the last round of registrations succeeded.
    up: std::sync::atomic::AtomicBool,
    /// Things registered in the last round (0 after the entries are removed).
    registered: AtomicUsize,
    /// Successful `PUT`s.
    registrations: std::sync::atomic::AtomicU64,
    /// Rounds that failed.
    failures: std::sync::atomic::AtomicU64,
    /// When a round last succeeded, in seconds since the Unix epoch (0: never).
    last_success: std::sync::atomic::AtomicU64,
}

#[cfg_attr(not(feature = "directory"), allow(dead_code))]
impl DirectoryStatus {
    /// One TD registered.
    pub(crate) fn registered(&self) {
        self.registrations.fetch_add(1, Ordering::Relaxed);
    }

    /// A round failed after `registered` TDs.
    pub(crate) fn failed(&self, registered: usize) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.up.store(false, Ordering::Relaxed);
        self.registered.store(registered, Ordering::Relaxed);
    }

    /// A round ended with `registered` TDs in the directory.
    pub(crate) fn round_done(&self, registered: usize) {
        self.up.store(true, Ordering::Relaxed);
        self.registered.store(registered, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        self.last_success.store(now, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let url = self.url.replace('\\', "\\\\").replace('"', "\\\"");
        for (name, kind, help, value) in [
            (
                "labthings_directory_up",
                "gauge",
                "1 if the last registration with the Thing Description Directory succeeded.",
                u64::from(self.up.load(Ordering::Relaxed)),
            ),
            (
                "labthings_directory_registered_things",
                "gauge",
                "Things registered with the directory in the last round.",
                self.registered.load(Ordering::Relaxed) as u64,
            ),
            (
                "labthings_directory_registrations_total",
                "counter",
                "Thing Descriptions registered (PUT) with the directory.",
                self.registrations.load(Ordering::Relaxed),
            ),
            (
                "labthings_directory_failures_total",
                "counter",
                "Rounds of registration that failed (the directory down or refusing).",
                self.failures.load(Ordering::Relaxed),
            ),
            (
                "labthings_directory_last_success_timestamp_seconds",
                "gauge",
                "When registration last succeeded (Unix time; 0: never).",
                self.last_success.load(Ordering::Relaxed),
            ),
        ] {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name}{{directory=\"{url}\"}} {value}");
        }
    }
}

/// Counts a Server-Sent Events subscriber as connected while it lives.
pub(crate) struct OpenSse(Arc<Metrics>);

impl Drop for OpenSse {
    fn drop(&mut self) {
        self.0.sse.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a websocket connection as open while it lives.
pub(crate) struct OpenWebsocket(Arc<Metrics>);

impl Drop for OpenWebsocket {
    fn drop(&mut self) {
        self.0.websockets.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub(crate) fn new(invocations: Arc<Invocations>) -> Arc<Self> {
        Arc::new(Self {
            requests: Mutex::new(BTreeMap::new()),
            streams: Mutex::new(Vec::new()),
            invocations,
            websockets: AtomicUsize::new(0),
            sse: AtomicUsize::new(0),
            logs: Mutex::new(Vec::new()),
            directory: std::sync::OnceLock::new(),
            started: Instant::now(),
        })
    }

    /// The status of registration with the directory at `url`, reported from now on.
    #[cfg_attr(not(feature = "directory"), allow(dead_code))]
    pub(crate) fn directory_status(&self, url: &str) -> Arc<DirectoryStatus> {
        self.directory
            .get_or_init(|| {
                Arc::new(DirectoryStatus {
                    url: url.to_owned(),
                    ..DirectoryStatus::default()
                })
            })
            .clone()
    }

    /// Waits until every websocket has closed, at most `bound`; false if some are still open.
    pub(crate) async fn websockets_closed(&self, bound: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        while self.websockets.load(Ordering::Relaxed) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Counts a websocket connection until the returned guard is dropped.
    pub(crate) fn websocket_opened(self: &Arc<Self>) -> OpenWebsocket {
        self.websockets.fetch_add(1, Ordering::Relaxed);
        OpenWebsocket(self.clone())
    }

    /// Counts a Server-Sent Events subscriber until the returned guard is dropped.
    pub(crate) fn sse_opened(self: &Arc<Self>) -> OpenSse {
        self.sse.fetch_add(1, Ordering::Relaxed);
        OpenSse(self.clone())
    }

    /// Reports a Thing's log of events (`kind` `events`) or property changes (`properties`).
    pub(crate) fn add_log(&self, thing: &str, kind: &'static str, log: Arc<EventLog>) {
        lock(&self.logs).push((thing.to_owned(), kind, log));
    }

    pub(crate) fn add_stream(&self, thing: &str, name: &str, stream: MjpegStream) {
        lock(&self.streams).push((thing.to_owned(), name.to_owned(), stream));
    }

    /// Counts a request. The method label is one of the standard methods or `other`: a client
    /// chooses the method string, and every label value is a series kept for good, so client
    /// strings never become labels (20,000 made-up methods once held 300 MB).
    fn count(&self, method: &str, status: u16) {
        const KNOWN: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
        ];
        let method = KNOWN
            .into_iter()
            .find(|known| *known == method)
            .unwrap_or("other");
        *lock(&self.requests).entry((method, status)).or_default() += 1;
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "labthings_uptime_seconds",
            "gauge",
            "Seconds since the server was built.",
        );
        let _ = writeln!(
            out,
            "labthings_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        family(
            &mut out,
            "labthings_http_requests_total",
            "counter",
            "HTTP requests answered, by method and status.",
        );
        for ((method, status), count) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "labthings_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        family(
            &mut out,
            "labthings_websockets",
            "gauge",
            "Websocket observers connected now.",
        );
        let _ = writeln!(
            out,
            "labthings_websockets {}",
            self.websockets.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "labthings_sse_subscribers",
            "gauge",
            "Server-Sent Events subscribers (events and property observation) connected now.",
        );
        let _ = writeln!(
            out,
            "labthings_sse_subscribers {}",
            self.sse.load(Ordering::Relaxed)
        );
        let logs = lock(&self.logs);
        family(
            &mut out,
            "labthings_events_total",
            "counter",
            "Events emitted (kind=\"events\") and property changes recorded (kind=\"properties\"), by Thing.",
        );
        for (thing, kind, log) in logs.iter() {
            let _ = writeln!(
                out,
                "labthings_events_total{{thing=\"{thing}\",kind=\"{kind}\"}} {}",
                log.newest()
            );
        }
        family(
            &mut out,
            "labthings_events_lost_total",
            "counter",
            "Events and property changes that slow subscribers lost because they fell behind the history, by Thing.",
        );
        for (thing, kind, log) in logs.iter() {
            let _ = writeln!(
                out,
                "labthings_events_lost_total{{thing=\"{thing}\",kind=\"{kind}\"}} {}",
                log.lost_total()
            );
        }
        drop(logs);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            family(
                &mut out,
                "labthings_tasks",
                "gauge",
                "Tokio tasks alive in the server's runtime (connections, viewers, actions...).",
            );
            let _ = writeln!(
                out,
                "labthings_tasks {}",
                runtime.metrics().num_alive_tasks()
            );
        }
        process_metrics(&mut out);
        let streams = lock(&self.streams).clone();
        let stats: Vec<_> = streams
            .iter()
            .map(|(thing, name, stream)| (thing, name, stream.stats()))
            .collect();
        let stream_metrics: [(&str, &str, &str, StreamValue); 4] = [
            (
                "labthings_stream_viewers",
                "gauge",
                "Viewers reading the stream now.",
                |s| s.viewers as u64,
            ),
            (
                "labthings_stream_frames_added_total",
                "counter",
                "Frames the instrument added to the stream.",
                |s| s.frames_added,
            ),
            (
                "labthings_stream_frames_sent_total",
                "counter",
                "Frames sent to viewers, once per viewer.",
                |s| s.frames_sent,
            ),
            (
                "labthings_stream_frames_dropped_total",
                "counter",
                "Frames viewers skipped (slow link or a frame-rate cap), once per viewer.",
                |s| s.frames_skipped,
            ),
        ];
        for (name, kind, help, value) in stream_metrics {
            family(&mut out, name, kind, help);
            for (thing, stream, stats) in &stats {
                let _ = writeln!(
                    out,
                    "{name}{{thing=\"{thing}\",stream=\"{stream}\"}} {}",
                    value(stats)
                );
            }
        }
        #[cfg(feature = "h264")]
        h264_metrics(&mut out, &streams);
        family(
            &mut out,
            "labthings_invocations",
            "gauge",
            "Action invocations held by the server (finished ones for the retention time), by status.",
        );
        for (status, count) in self.invocations.status_counts() {
            let _ = writeln!(out, "labthings_invocations{{status=\"{status}\"}} {count}");
        }
        family(
            &mut out,
            "labthings_invocations_started_total",
            "counter",
            "Action invocations started.",
        );
        let _ = writeln!(
            out,
            "labthings_invocations_started_total {}",
            self.invocations.started()
        );
        #[cfg(feature = "pipeline")]
        {
            family(
                &mut out,
                "labthings_frame_pipelines",
                "gauge",
                "Frame pipelines running, by the JPEG encoder they use (every encoder built in is listed).",
            );
            for (encoder, running) in crate::stream::pipelines_by_encoder() {
                let _ = writeln!(
                    out,
                    "labthings_frame_pipelines{{encoder=\"{encoder}\"}} {running}"
                );
            }
        }
        #[cfg(all(feature = "aravis", target_os = "linux"))]
        genicam_metrics(&mut out);
        family(
            &mut out,
            "labthings_invocation_output_bytes",
            "gauge",
            "Bytes of memory the outputs of finished invocations hold (at most `invocation_output_budget`, beside the newest).",
        );
        let _ = writeln!(
            out,
            "labthings_invocation_output_bytes {}",
            self.invocations.retained_output_bytes()
        );
        if let Some(directory) = self.directory.get() {
            directory.render(&mut out);
        }
        out
    }
}

/// The standard process metrics, where the system has them (Linux's `/proc`).
fn process_metrics(out: &mut String) {
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(out, "process_open_fds", "gauge", "Open file descriptors.");
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    let resident_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
    if let Some(kib) = resident_kib {
        family(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {}", kib * 1024);
    }
}

/// Each GenICam camera's frames received and incomplete buffers.
#[cfg(all(feature = "aravis", target_os = "linux"))]
fn genicam_metrics(out: &mut String) {
    let cameras = crate::genicam::counters::all();
    type Value = fn(&(String, u64, u64)) -> u64;
    let families: [(&str, &str, Value); 2] = [
        (
            "labthings_genicam_frames_total",
            "Complete frames each GenICam camera delivered.",
            |c| c.1,
        ),
        (
            "labthings_genicam_incomplete_frames_total",
            "Buffers each GenICam camera delivered incomplete (lost packets, timeouts): never shown.",
            |c| c.2,
        ),
    ];
    for (name, help, value) in families {
        family(out, name, "counter", help);
        for camera in &cameras {
            // A label value escapes backslashes, quotes and newlines.
            let label = camera
                .0
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(out, "{name}{{camera=\"{label}\"}} {}", value(camera));
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Logs every request (method, path, status, latency to the response head) and counts it: at
/// `info`, but successful `HEAD` requests (polling) at `debug`. The query string is not logged:
/// it may hold an access token.
pub(crate) async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics.count(method.as_str(), status);
    // Microseconds' precision, printed as such (`0.205`, not `0.20544500000000002`).
    let latency_ms = (start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    if method == axum::http::Method::HEAD && response.status().is_success() {
        // A page polling whether something is there (the UI asks each second whether a
        // stream has a frame): not worth a line a second at `info`.
        tracing::debug!(target: "labthings::http", %method, %path, status, latency_ms, "request");
    } else {
        tracing::info!(target: "labthings::http", %method, %path, status, latency_ms, "request");
    }
    response
}

/// `GET /metrics`.
async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROMETHEUS_TEXT),
        )],
        metrics.render(),
    )
        .into_response()
}

/// Adds `GET /metrics` and its documentation.
pub(crate) fn serve(metrics: &Arc<Metrics>, routes: &mut RouteTable) {
    let path = layout::metrics();
    routes.route(
        &path,
        get(scrape).with_state(metrics.clone()),
        [RouteDoc::get(
            path.clone(),
            json!({
                "operationId": "metrics",
                "summary": "Server metrics in the Prometheus text format",
                "description": "HTTP requests by status; websocket observers; per stream: viewers, frames added, sent and dropped; action invocations by status; tasks, open file descriptors and resident memory.",
                "tags": ["server"],
                "responses": {"200": {"description": "Prometheus text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }),
        )],
    );
}

/// The H.264 forms' families: viewers, units encoded, keyframes, bytes, units skipped.
#[cfg(feature = "h264")]
fn h264_metrics(out: &mut String, streams: &[(String, String, MjpegStream)]) {
    type H264Value = fn(&crate::stream::H264Stats) -> u64;
    let stats: Vec<_> = streams
        .iter()
        .filter_map(|(thing, name, stream)| Some((thing, name, stream.h264()?.stats())))
        .collect();
    if stats.is_empty() {
        return;
    }
    let metrics: [(&str, &str, &str, H264Value); 5] = [
        (
            "labthings_h264_viewers",
            "gauge",
            "Viewers of the stream's H.264 form now.",
            |s| s.viewers as u64,
        ),
        (
            "labthings_h264_units_total",
            "counter",
            "H.264 access units encoded for the stream (only while its H.264 form is watched).",
            |s| s.units,
        ),
        (
            "labthings_h264_keyframes_total",
            "counter",
            "Of those, keyframes.",
            |s| s.keyframes,
        ),
        (
            "labthings_h264_bytes_total",
            "counter",
            "Bytes of the H.264 access units encoded.",
            |s| s.bytes,
        ),
        (
            "labthings_h264_units_skipped_total",
            "counter",
            "Units H.264 viewers skipped to reach a keyframe, once per viewer.",
            |s| s.skipped,
        ),
    ];
    for (name, kind, help, value) in metrics {
        family(out, name, kind, help);
        for (thing, stream, stats) in &stats {
            let _ = writeln!(
                out,
                "{name}{{thing=\"{thing}\",stream=\"{stream}\"}} {}",
                value(stats)
            );
        }
    }
}
