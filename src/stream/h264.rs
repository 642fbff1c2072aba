//! [`H264Stream`]: H.264 access units beside a stream's MJPEG, shared by every H.264 viewer
//! (feature `h264`).
//!
//! A [`FramePipeline`](super::FramePipeline) feeding an [`MjpegStream`](super::MjpegStream)
//! made [`with_h264`](super::MjpegStream::with_h264) runs one H.264 encoder for it (OpenH264),
//! only while someone watches the H.264 form. Every viewer shares the encoded access units: a
//! unit is encoded once and sent as the same buffer to each.
//!
//! - **A viewer starts at a keyframe.** Joining asks the encoder for one, so a new viewer
//!   waits about one frame time, not a GOP.
//! - **A slow viewer skips to the next keyframe.** A delta frame cannot be decoded without
//!   the frames before it, so a viewer that falls more than [`MAX_LAG`] behind the newest unit
//!   (or out of the ring of held units) waits for the next keyframe, and asks for one.
//!   Nothing queues per viewer beyond the shared ring.
//!
//! Two wire forms, both on every stream that offers H.264 (see the guide's "H.264" section):
//! raw Annex B (`video/h264`, what `ffmpeg -f h264 -i URL` reads), and the same units as
//! parts of a `multipart/mixed` body with their capture timestamps, for the web UI's
//! WebCodecs player.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, SubsecRound as _, Utc};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt as _, stream};
use tokio::sync::watch;

use super::entry::{FRAME_INDEX_HEADER, OPENING_DELIMITER, TIMESTAMP_HEADER, format_timestamp};

/// The `Content-Type` of the raw H.264 form: an Annex B byte stream.
pub const H264_CONTENT_TYPE: &str = "video/h264";

/// The `Content-Type` of the timed H.264 form: one access unit per part, each with its
/// `X-Timestamp`, `X-Frame-Index` and `X-Keyframe` headers.
pub const H264_UNITS_CONTENT_TYPE: &str = "multipart/mixed; boundary=frame";

/// The part header saying whether a unit is a keyframe (an IDR picture, with SPS and PPS):
/// `true` or `false`.
pub const KEYFRAME_HEADER: &str = "x-keyframe";

/// How far a viewer may fall behind the newest unit before it skips to the next keyframe.
pub const MAX_LAG: Duration = Duration::from_millis(500);

/// Access units a stream holds for its viewers: three seconds at 30 fps.
const RING: usize = 90;

/// The highest bit rate [`H264Options::bitrate`] takes, 100 Mbit/s.
const MAX_BITRATE: u32 = 100_000_000;

/// How a stream's H.264 is encoded; given to [`MjpegStream::with_h264`](super::MjpegStream::with_h264).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use labthings::stream::H264Options;
///
/// let options = H264Options::default()
///     .with_bitrate(2_000_000)
///     .with_keyframe_interval(Duration::from_millis(500));
/// assert_eq!(options.bitrate_for(1280, 720), 2_000_000);
/// // Without a bit rate, 0.1 bit per pixel at the frame rate: 2.76 Mbit/s at 720p30.
/// assert_eq!(H264Options::default().bitrate_for(1280, 720), 2_764_800);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct H264Options {
    /// The target bit rate in bits per second; `None` (the default) scales with the frame:
    /// 0.1 bit per pixel per frame at `frame_rate`.
    pub bitrate: Option<u32>,
    /// The longest time between keyframes (default 1 s). A viewer joining asks for a keyframe
    /// at once in any case; this bounds how long a viewer that fell behind waits.
    pub keyframe_interval: Duration,
    /// The frame rate the rate control plans for (default 30); frames may come slower.
    pub frame_rate: f32,
}

impl Default for H264Options {
    fn default() -> Self {
        Self {
            bitrate: None,
            keyframe_interval: Duration::from_secs(1),
            frame_rate: 30.0,
        }
    }
}

impl H264Options {
    /// With a target bit rate, in bits per second (kept within 10 kbit/s to 100 Mbit/s).
    #[must_use]
    pub fn with_bitrate(mut self, bits_per_second: u32) -> Self {
        self.bitrate = Some(bits_per_second.clamp(10_000, MAX_BITRATE));
        self
    }

    /// With the longest time between keyframes (at least 0.1 s).
    #[must_use]
    pub fn with_keyframe_interval(mut self, interval: Duration) -> Self {
        self.keyframe_interval = interval.max(Duration::from_millis(100));
        self
    }

    /// With the frame rate the rate control plans for; one that is not a positive, finite
    /// number keeps the default.
    #[must_use]
    pub fn with_frame_rate(mut self, fps: f32) -> Self {
        if fps.is_finite() && fps > 0.0 {
            self.frame_rate = fps.min(240.0);
        }
        self
    }

    /// The bit rate used for frames of `width` x `height`.
    pub fn bitrate_for(&self, width: u16, height: u16) -> u32 {
        self.bitrate.map_or_else(
            || {
                let fps = f64::from(self.planned_frame_rate());
                let bits = f64::from(width) * f64::from(height) * fps * 0.1;
                (bits.round() as u32).clamp(10_000, MAX_BITRATE)
            },
            |bits| bits.clamp(10_000, MAX_BITRATE),
        )
    }

    /// The keyframe interval, at least 0.1 s (a field set by hand may be less).
    pub(crate) fn keyframe_period(&self) -> Duration {
        self.keyframe_interval.max(Duration::from_millis(100))
    }

    /// The frame rate, 30 when the field was set to something that is not one.
    pub(crate) fn planned_frame_rate(&self) -> f32 {
        if self.frame_rate.is_finite() && self.frame_rate > 0.0 {
            self.frame_rate.min(240.0)
        } else {
            30.0
        }
    }
}

/// One H.264 access unit (one picture): its Annex B bytes and when it was captured.
///
/// Cloning is cheap: the bytes are shared by every viewer.
#[derive(Clone)]
pub struct AccessUnit {
    /// The unit's NAL units, each behind an Annex B start code; a keyframe starts with its SPS
    /// and PPS.
    pub data: Bytes,
    /// When the frame was captured (the raw frame's timestamp), to the microsecond.
    pub timestamp: DateTime<Utc>,
    /// The unit's position in its stream: 0 for the first, then one more each time.
    pub index: u64,
    /// Whether the unit is a keyframe (an IDR picture): a decoder can start here.
    pub keyframe: bool,
    /// The unit as one `multipart/mixed` part, closing delimiter included.
    part: Bytes,
}

impl std::fmt::Debug for AccessUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessUnit")
            .field("data", &format_args!("{} bytes", self.data.len()))
            .field("timestamp", &self.timestamp)
            .field("index", &self.index)
            .field("keyframe", &self.keyframe)
            .finish()
    }
}

/// Counters of an [`H264Stream`], read with [`H264Stream::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct H264Stats {
    /// Access units added (encoded) since the stream was made.
    pub units: u64,
    /// Of those, keyframes.
    pub keyframes: u64,
    /// Bytes of all the units added.
    pub bytes: u64,
    /// H.264 viewers now.
    pub viewers: usize,
    /// Units viewers skipped to reach a keyframe, counted once per viewer.
    pub skipped: u64,
}

struct Ring {
    units: VecDeque<AccessUnit>,
    next_index: u64,
}

struct Shared {
    ring: Mutex<Ring>,
    /// The index the next unit gets, and how many times the stream was stopped; every viewer
    /// watches it.
    latest: watch::Sender<(u64, u64)>,
    options: H264Options,
    viewers: AtomicUsize,
    keyframe_wanted: AtomicBool,
    demand: tokio::sync::Notify,
    keyframes: AtomicU64,
    bytes: AtomicU64,
    skipped: AtomicU64,
}

/// A stream of H.264 access units that any number of viewers read; the H.264 form of an
/// [`MjpegStream`](super::MjpegStream) (see [`MjpegStream::with_h264`](super::MjpegStream::with_h264)).
///
/// A [`FramePipeline`](super::FramePipeline) adds units to it; a producer with an encoder of
/// its own (a camera that delivers H.264) can call [`add_unit`](Self::add_unit), honouring
/// [`take_keyframe_request`](Self::take_keyframe_request).
///
/// `H264Stream` is a handle: clones share the same stream.
///
/// # Examples
///
/// ```
/// use labthings::stream::{H264Options, H264Stream};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use futures_util::StreamExt as _;
/// let stream = H264Stream::new(H264Options::default());
/// let mut viewer = stream.units();
/// // The viewer asked for a keyframe, and starts there: a delta frame before it is not sent.
/// assert!(stream.take_keyframe_request());
/// stream.add_unit(&[0, 0, 0, 1, 0x41, 0x9a][..], chrono::Utc::now(), false);
/// stream.add_unit(&[0, 0, 0, 1, 0x65, 0x88][..], chrono::Utc::now(), true);
/// let first = viewer.next().await.unwrap();
/// assert!(first.keyframe);
/// assert_eq!(first.index, 1);
/// # }
/// ```
#[derive(Clone)]
pub struct H264Stream {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for H264Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Stream")
            .field("options", &self.shared.options)
            .field("stats", &self.stats())
            .finish()
    }
}

impl H264Stream {
    /// An empty stream, to be encoded with `options`.
    pub fn new(options: H264Options) -> Self {
        Self {
            shared: Arc::new(Shared {
                ring: Mutex::new(Ring {
                    units: VecDeque::with_capacity(RING),
                    next_index: 0,
                }),
                latest: watch::Sender::new((0, 0)),
                options,
                viewers: AtomicUsize::new(0),
                keyframe_wanted: AtomicBool::new(false),
                demand: tokio::sync::Notify::new(),
                keyframes: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
            }),
        }
    }

    /// How it is to be encoded.
    pub fn options(&self) -> H264Options {
        self.shared.options
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.shared
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an access unit (Annex B bytes, captured at `timestamp`) and returns its index.
    /// Never waits for viewers.
    pub fn add_unit(
        &self,
        data: impl Into<Bytes>,
        timestamp: DateTime<Utc>,
        keyframe: bool,
    ) -> u64 {
        let data = data.into();
        let timestamp = timestamp.trunc_subsecs(6);
        let shared = &self.shared;
        shared.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        if keyframe {
            shared.keyframes.fetch_add(1, Ordering::Relaxed);
        }
        let mut ring = self.lock();
        let index = ring.next_index;
        let part = part(&data, timestamp, index, keyframe);
        if ring.units.len() == RING {
            ring.units.pop_front();
        }
        ring.units.push_back(AccessUnit {
            data,
            timestamp,
            index,
            keyframe,
            part,
        });
        ring.next_index += 1;
        shared.latest.send_modify(|latest| latest.0 = index + 1);
        index
    }

    /// A viewer: its units, from the next keyframe on (it asks for one).
    pub fn units(&self) -> UnitStream {
        UnitStream::new(self.clone())
    }

    /// Whether anyone watches the H.264 form now.
    pub fn is_watched(&self) -> bool {
        self.shared.viewers.load(Ordering::Relaxed) > 0
    }

    /// Waits until someone watches the H.264 form.
    pub async fn watched(&self) {
        loop {
            let notified = self.shared.demand.notified();
            if self.is_watched() {
                return;
            }
            notified.await;
        }
    }

    /// Whether a viewer asked for a keyframe since the last call: the encoder should make its
    /// next unit one.
    pub fn take_keyframe_request(&self) -> bool {
        self.shared.keyframe_wanted.swap(false, Ordering::Relaxed)
    }

    fn request_keyframe(&self) {
        self.shared.keyframe_wanted.store(true, Ordering::Relaxed);
    }

    /// What it has done so far.
    pub fn stats(&self) -> H264Stats {
        let shared = &self.shared;
        H264Stats {
            units: self.lock().next_index,
            keyframes: shared.keyframes.load(Ordering::Relaxed),
            bytes: shared.bytes.load(Ordering::Relaxed),
            viewers: shared.viewers.load(Ordering::Relaxed),
            skipped: shared.skipped.load(Ordering::Relaxed),
        }
    }

    /// Ends every viewer's stream (the server calls this at shutdown, through
    /// [`MjpegStream::stop`](super::MjpegStream::stop)); later viewers are served as usual.
    pub fn stop(&self) {
        self.shared.latest.send_modify(|latest| latest.1 += 1);
    }

    /// The raw Annex B form of a new viewer, as an HTTP response (`video/h264`).
    pub fn annex_b_response(&self) -> Response {
        let body = self.units().map(|unit| Ok::<_, Infallible>(unit.data));
        stream_response(Body::from_stream(body), false)
    }

    /// The timed form of a new viewer, as an HTTP response (`multipart/mixed`, one unit per
    /// part with its `X-Timestamp`, `X-Frame-Index` and `X-Keyframe`).
    pub fn units_response(&self) -> Response {
        let opening = stream::once(async { Bytes::from_static(OPENING_DELIMITER) });
        let parts = self.units().map(|unit| unit.part);
        let body = opening.chain(parts).map(Ok::<_, Infallible>);
        stream_response(Body::from_stream(body), true)
    }
}

/// A response of either form with `body`: its content type, and no caching or buffering.
pub(super) fn stream_response(body: Body, units: bool) -> Response {
    let content_type = if units {
        H264_UNITS_CONTENT_TYPE
    } else {
        H264_CONTENT_TYPE
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A unit as one multipart part: headers, bytes and the closing delimiter, in one buffer.
fn part(data: &[u8], timestamp: DateTime<Utc>, index: u64, keyframe: bool) -> Bytes {
    let head = format!(
        "Content-Type: {H264_CONTENT_TYPE}\r\nContent-Length: {}\r\n{TIMESTAMP_HEADER}: {}\r\n\
         {FRAME_INDEX_HEADER}: {index}\r\n{KEYFRAME_HEADER}: {keyframe}\r\n\r\n",
        data.len(),
        format_timestamp(&timestamp),
    );
    let mut part = BytesMut::with_capacity(head.len() + data.len() + 11);
    part.extend_from_slice(head.as_bytes());
    part.extend_from_slice(data);
    part.extend_from_slice(b"\r\n--frame\r\n");
    part.freeze()
}

/// One viewer's access units, as an async [`Stream`]: from a keyframe on, each unit in order,
/// skipping to the next keyframe when it falls more than [`MAX_LAG`] behind. Made by
/// [`H264Stream::units`]; dropping it unregisters the viewer.
pub struct UnitStream {
    inner: BoxStream<'static, AccessUnit>,
}

impl std::fmt::Debug for UnitStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitStream").finish_non_exhaustive()
    }
}

/// A viewer's place: the next unit it sends, or `None` while it waits for a keyframe at or
/// after `from`.
struct Place {
    stream: H264Stream,
    latest: watch::Receiver<(u64, u64)>,
    generation: u64,
    next: Option<u64>,
    from: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.stream.shared.viewers.fetch_sub(1, Ordering::Relaxed);
        self.stream.shared.demand.notify_waiters();
    }
}

impl Place {
    /// The next unit to send now, if any; moves the viewer on.
    fn next_unit(&mut self) -> Option<AccessUnit> {
        let stream = self.stream.clone();
        let ring = stream.lock();
        let newest = ring.units.back()?;
        let (newest_index, newest_time) = (newest.index, newest.timestamp);
        let oldest = ring.units.front()?.index;
        if let Some(next) = self.next {
            let behind = next < oldest
                || ring
                    .units
                    .get((next - oldest) as usize)
                    .is_some_and(|unit| {
                        (newest_time - unit.timestamp).to_std().unwrap_or_default() > MAX_LAG
                    });
            if behind {
                // Too far behind to catch up in time: on from the first unit that is fresh
                // enough, at its next keyframe, and one is asked for now.
                let fresh = ring
                    .units
                    .iter()
                    .find(|unit| {
                        (newest_time - unit.timestamp).to_std().unwrap_or_default() <= MAX_LAG
                    })
                    .map_or(newest_index + 1, |unit| unit.index);
                self.stream
                    .shared
                    .skipped
                    .fetch_add(fresh.saturating_sub(next), Ordering::Relaxed);
                self.next = None;
                self.from = fresh;
                self.stream.request_keyframe();
            }
        }
        match self.next {
            Some(next) => {
                let unit = ring.units.get((next - oldest) as usize)?.clone();
                self.next = Some(next + 1);
                Some(unit)
            }
            None => {
                let start = self.from.max(oldest);
                let unit = ring
                    .units
                    .iter()
                    .skip((start - oldest) as usize)
                    .find(|unit| unit.keyframe)?
                    .clone();
                self.stream
                    .shared
                    .skipped
                    .fetch_add(unit.index - start, Ordering::Relaxed);
                self.next = Some(unit.index + 1);
                Some(unit)
            }
        }
    }
}

impl UnitStream {
    fn new(stream: H264Stream) -> Self {
        let shared = &stream.shared;
        shared.viewers.fetch_add(1, Ordering::Relaxed);
        shared.demand.notify_waiters();
        stream.request_keyframe();
        let latest = shared.latest.subscribe();
        let (from, generation) = *latest.borrow();
        let place = Place {
            stream,
            latest,
            generation,
            next: None,
            from,
        };
        let inner = stream::unfold(place, |mut place| async move {
            loop {
                if place.latest.borrow_and_update().1 != place.generation {
                    return None;
                }
                if let Some(unit) = place.next_unit() {
                    return Some((unit, place));
                }
                if place.latest.changed().await.is_err() {
                    return None;
                }
            }
        })
        .boxed();
        Self { inner }
    }
}

impl Stream for UnitStream {
    type Item = AccessUnit;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<AccessUnit>> {
        self.inner.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(stream: &H264Stream, keyframe: bool, at: DateTime<Utc>) -> u64 {
        stream.add_unit(
            vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }],
            at,
            keyframe,
        )
    }

    #[tokio::test]
    async fn a_viewer_starts_at_a_keyframe_and_gets_every_unit_after_it_in_order() {
        let stream = H264Stream::new(H264Options::default());
        let now = Utc::now();
        add(&stream, true, now);
        add(&stream, false, now);
        let mut viewer = stream.units();
        assert!(stream.is_watched());
        assert!(
            stream.take_keyframe_request(),
            "a joining viewer asks for a keyframe"
        );
        assert!(!stream.take_keyframe_request(), "once");
        // Units held from before it joined are not its start: it waits for a new keyframe.
        add(&stream, false, now);
        add(&stream, true, now);
        add(&stream, false, now);
        add(&stream, false, now);
        let indices: Vec<u64> = (&mut viewer).take(3).map(|unit| unit.index).collect().await;
        assert_eq!(indices, [3, 4, 5]);
        drop(viewer);
        assert!(!stream.is_watched());
        let stats = stream.stats();
        assert_eq!((stats.units, stats.keyframes, stats.bytes), (6, 2, 30));
    }

    #[tokio::test]
    async fn a_viewer_that_falls_behind_skips_to_the_next_keyframe_and_asks_for_one() {
        let stream = H264Stream::new(H264Options::default());
        let start = Utc::now();
        let mut viewer = stream.units();
        stream.take_keyframe_request();
        add(&stream, true, start);
        assert_eq!(viewer.next().await.unwrap().index, 0);
        // A second of units arrives while the viewer reads nothing.
        for n in 1..=30 {
            add(
                &stream,
                false,
                start + chrono::Duration::milliseconds(n * 33),
            );
        }
        add(
            &stream,
            true,
            start + chrono::Duration::milliseconds(31 * 33),
        );
        // Unit 1 is a second older than the newest: the viewer jumps past it, to no delta
        // frame it cannot decode, and a keyframe is asked for.
        let next = viewer.next().await.unwrap();
        assert!(stream.take_keyframe_request());
        assert!(next.keyframe, "{next:?}");
        assert_eq!(next.index, 31);
        assert_eq!(stream.stats().skipped, 30, "units 1 to 30");
    }

    #[tokio::test]
    async fn stop_ends_every_viewer() {
        let stream = H264Stream::new(H264Options::default());
        let mut viewer = stream.units();
        stream.stop();
        let end = tokio::time::timeout(Duration::from_secs(2), viewer.next()).await;
        assert!(matches!(end, Ok(None)));
    }

    #[test]
    fn a_part_carries_the_units_timestamp_index_and_kind() {
        let at = "2026-12-06T10:00:00.123456Z".parse().unwrap();
        let part = part(b"abc", at, 7, true);
        let text = String::from_utf8_lossy(&part);
        assert!(text.starts_with("Content-Type: video/h264\r\nContent-Length: 3\r\n"));
        assert!(text.contains("x-timestamp: 2026-12-06T10:00:00.123456Z\r\n"));
        assert!(text.contains("x-frame-index: 7\r\nx-keyframe: true\r\n\r\nabc\r\n--frame\r\n"));
    }
}
