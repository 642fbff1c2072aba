//! [`FramePipeline`]: raw frames in, JPEG frames out, encoded only when watched.
//!
//! A camera driver hands [`RawFrame`]s (8- or 16-bit grey, RGB, BGR or YUYV) to
//! [`FramePipeline::push`] from any thread; it never blocks. A small pool of worker threads
//! (off the async runtime) encodes them to JPEG and adds them to the main stream and,
//! optionally, a downscaled low-resolution stream, keeping each frame's capture timestamp.
//!
//! - **Newest frame wins.** One raw frame waits at a time: a frame pushed while the previous
//!   one still waits replaces it, and is counted as dropped. Memory stays one raw frame (plus
//!   one per worker being encoded), however fast the producer.
//! - **In order.** With several workers, a frame finished after a newer one was added is not
//!   added (counted as dropped), so the stream's frames keep their capture order.
//! - **Only when watched.** When no viewer, recording or waiting `grab_frame` needs a stream,
//!   nothing is encoded for it; the newest raw frame is kept, and encoded at once when a viewer
//!   comes. A producer can pause its sensor meanwhile: [`FramePipeline::is_watched`] and
//!   [`FramePipeline::watched`].
//!
//! JPEG encoding is jpeg-encoder's (pure Rust, with SIMD), feature `pipeline`, or
//! libjpeg-turbo's with the `turbojpeg` feature (two to three times less CPU per frame).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::MjpegStream;
use super::encode::{Encoder, JpegEncoder};
use super::raw::RawFrame;

/// What a [`FramePipeline`] has done, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Frames pushed.
    pub pushed: u64,
    /// Frames encoded and added to the main stream.
    pub encoded: u64,
    /// Frames never encoded because a newer one came first (the encoders were busy), or
    /// encoded after a newer one was added.
    pub dropped: u64,
    /// Frames replaced while nobody watched (nothing was encoded).
    pub unwatched: u64,
}

struct Output {
    stream: MjpegStream,
    /// 1 for full size, 2 for half the width and height, ...
    factor: u16,
    /// The sequence number of the last frame added, to keep order across workers.
    last: Mutex<u64>,
}

struct Inner {
    /// The newest frame not yet taken by a worker, with its sequence number.
    slot: Mutex<(Option<(u64, RawFrame)>, u64)>,
    ready: Condvar,
    outputs: Vec<Output>,
    quality: u8,
    encoder: JpegEncoder,
    stopped: AtomicBool,
    pushed: AtomicU64,
    encoded: AtomicU64,
    dropped: AtomicU64,
    unwatched: AtomicU64,
    /// The H.264 encoder's feed, when the main stream offers H.264.
    #[cfg(feature = "h264")]
    h264: Option<super::h264_encoder::H264Feed>,
}

impl Inner {
    /// Whether any JPEG output is watched.
    fn jpeg_watched(&self) -> bool {
        self.outputs.iter().any(|output| output.stream.is_watched())
    }

    /// Whether anything is watched: a JPEG output, or the H.264 form.
    fn watched(&self) -> bool {
        #[cfg(feature = "h264")]
        if self
            .h264
            .as_ref()
            .is_some_and(|feed| feed.stream.is_watched())
        {
            return true;
        }
        self.jpeg_watched()
    }
}

/// Raw frames in, MJPEG streams out, encoded only when watched.
///
/// A camera driver hands [`RawFrame`]s (8- or 16-bit grey, RGB, BGR or YUYV) to
/// [`push`](Self::push) from any thread; it never blocks. A small pool of worker threads
/// (off the async runtime) encodes them to JPEG and adds them to the main stream and,
/// optionally, a downscaled low-resolution stream, keeping each frame's capture timestamp.
///
/// - **Newest frame wins.** One raw frame waits at a time: a frame pushed while the previous
///   one still waits replaces it, and is counted as dropped. Memory stays one raw frame (plus
///   one per worker being encoded), however fast the producer.
/// - **In order.** With several workers, a frame finished after a newer one was added is not
///   added (counted as dropped), so the stream's frames keep their capture order.
/// - **Only when watched.** When no viewer, recording or waiting `grab_frame` needs a stream,
///   nothing is encoded for it; the newest raw frame is kept, and encoded at once when a viewer
///   comes. A producer can pause its sensor meanwhile: [`is_watched`](Self::is_watched) and
///   [`watched`](Self::watched).
///
/// JPEG encoding is jpeg-encoder's (pure Rust, with SIMD), feature `pipeline`, or
/// libjpeg-turbo's with the `turbojpeg` feature (two to three times less CPU per frame; see
/// [`JpegEncoder`](super::JpegEncoder)); the encoder in use is logged when a pipeline starts.
///
/// **In debug builds** (`cargo run` without `--release`) pixel conversion and JPEG encoding
/// are about thirty times dearer: a 320x240 Gray16 frame took 17 ms instead of 0.5 ms. Our own
/// `Cargo.toml` does not reach yours; put this in your crate's to have them at full speed
/// while the rest of your code stays quick to build and easy to debug:
///
/// ```toml
/// [profile.dev.package.labthings]
/// opt-level = 3
/// [profile.dev.package.jpeg-encoder]
/// opt-level = 3
/// ```
///
/// Cloning gives another handle on the same pipeline; the workers stop when the last handle
/// is dropped.
///
/// # Examples
///
/// ```
/// use labthings::stream::{FramePipeline, MjpegStream, PixelFormat, RawFrame};
///
/// let (main, preview) = (MjpegStream::new(), MjpegStream::new());
/// let pipeline = FramePipeline::builder(&main).lores(&preview, 2).quality(80).build();
/// // From the camera's thread, as frames arrive:
/// let frame = RawFrame::new(PixelFormat::Gray8, 64, 48, vec![128u8; 64 * 48]).unwrap();
/// pipeline.push(frame);
/// // Nobody watches yet, so nothing was encoded: the sensor could pause.
/// assert!(!pipeline.is_watched());
/// ```
#[derive(Clone)]
pub struct FramePipeline {
    inner: Arc<Inner>,
    _workers: Arc<Workers>,
}

impl std::fmt::Debug for FramePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramePipeline")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Stops the workers when the last handle goes.
struct Workers(Arc<Inner>);

impl Drop for Workers {
    fn drop(&mut self) {
        super::encode::stopped(self.0.encoder);
        self.0.stopped.store(true, Ordering::Relaxed);
        self.0.ready.notify_all();
        #[cfg(feature = "h264")]
        if let Some(feed) = &self.0.h264 {
            feed.ready.notify_all();
        }
    }
}

/// Sets up a [`FramePipeline`]; from [`FramePipeline::builder`].
#[derive(Debug)]
#[must_use]
pub struct PipelineBuilder {
    main: MjpegStream,
    lores: Option<(MjpegStream, u16)>,
    quality: u8,
    workers: usize,
    encoder: JpegEncoder,
}

impl PipelineBuilder {
    /// Also feeds `stream` with each frame downscaled by `factor` (2: half the width and
    /// height), encoded from the same raw frame.
    pub fn lores(mut self, stream: &MjpegStream, factor: u16) -> Self {
        self.lores = Some((stream.clone(), factor.max(1)));
        self
    }

    /// JPEG quality, 1 to 100 (default 85).
    pub fn quality(mut self, quality: u8) -> Self {
        self.quality = quality.clamp(1, 100);
        self
    }

    /// Encoding threads (default: 2, at most 16).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.clamp(1, 16);
        self
    }

    /// The JPEG encoder (default: libjpeg-turbo with the `turbojpeg` feature, else
    /// jpeg-encoder).
    pub fn encoder(mut self, encoder: JpegEncoder) -> Self {
        self.encoder = encoder;
        self
    }

    /// Starts the workers (and the H.264 encoder's thread, when the main stream offers H.264:
    /// [`MjpegStream::with_h264`]).
    pub fn build(self) -> FramePipeline {
        #[cfg(feature = "h264")]
        let h264 = self.main.h264();
        let mut outputs = vec![Output {
            stream: self.main,
            factor: 1,
            last: Mutex::new(0),
        }];
        if let Some((stream, factor)) = self.lores {
            outputs.push(Output {
                stream,
                factor,
                last: Mutex::new(0),
            });
        }
        let inner = Arc::new(Inner {
            slot: Mutex::new((None, 0)),
            ready: Condvar::new(),
            outputs,
            quality: self.quality,
            encoder: self.encoder,
            stopped: AtomicBool::new(false),
            pushed: AtomicU64::new(0),
            encoded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unwatched: AtomicU64::new(0),
            #[cfg(feature = "h264")]
            h264: h264.map(super::h264_encoder::H264Feed::new),
        });
        tracing::info!(
            target: "labthings::stream",
            encoder = self.encoder.name(),
            workers = self.workers,
            quality = self.quality,
            "frame pipeline started"
        );
        super::encode::started(self.encoder);
        for n in 0..self.workers {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(format!("labthings-encode-{n}"))
                .spawn(move || work(&inner))
                .expect("the system can start a thread");
        }
        #[cfg(feature = "h264")]
        if inner.h264.is_some() {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("labthings-h264".to_owned())
                .spawn(move || {
                    if let Some(feed) = &inner.h264 {
                        super::h264_encoder::run(feed, &inner.stopped);
                    }
                })
                .expect("the system can start a thread");
        }
        FramePipeline {
            _workers: Arc::new(Workers(inner.clone())),
            inner,
        }
    }
}

impl FramePipeline {
    /// A pipeline feeding `main`.
    pub fn builder(main: &MjpegStream) -> PipelineBuilder {
        PipelineBuilder {
            main: main.clone(),
            lores: None,
            quality: 85,
            workers: 2,
            encoder: JpegEncoder::default(),
        }
    }

    /// The JPEG encoder it uses.
    pub fn encoder(&self) -> JpegEncoder {
        self.inner.encoder
    }

    /// Hands a frame over for encoding; never blocks. A frame still waiting is replaced (newest
    /// wins).
    pub fn push(&self, frame: RawFrame) {
        let inner = &self.inner;
        inner.pushed.fetch_add(1, Ordering::Relaxed);
        let mut slot = inner
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.1 += 1;
        let sequence = slot.1;
        #[cfg(feature = "h264")]
        if let Some(feed) = &inner.h264 {
            feed.offer(&frame);
        }
        if slot.0.replace((sequence, frame)).is_some() {
            if inner.jpeg_watched() {
                inner.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                inner.unwatched.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(slot);
        inner.ready.notify_one();
    }

    /// Whether anyone needs the pipeline's frames now (a viewer, a recording or a waiting
    /// capture, of any of its streams).
    pub fn is_watched(&self) -> bool {
        self.inner.watched()
    }

    /// Waits until someone needs the pipeline's frames: a paused sensor resumes then.
    pub async fn watched(&self) {
        let waits = self.inner.outputs.iter().map(|output| {
            Box::pin(output.stream.watched())
                as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>
        });
        #[cfg(feature = "h264")]
        let waits = waits.chain(
            self.inner
                .h264
                .iter()
                .map(|feed| Box::pin(feed.stream.watched()) as std::pin::Pin<Box<_>>),
        );
        futures_util::future::select_all(waits).await;
    }

    /// What it has done so far.
    pub fn stats(&self) -> PipelineStats {
        let inner = &self.inner;
        PipelineStats {
            pushed: inner.pushed.load(Ordering::Relaxed),
            encoded: inner.encoded.load(Ordering::Relaxed),
            dropped: inner.dropped.load(Ordering::Relaxed),
            unwatched: inner.unwatched.load(Ordering::Relaxed),
        }
    }
}

/// A worker: takes the newest frame when someone watches, encodes it for each watched output.
fn work(inner: &Inner) {
    let mut encoder = Encoder::new(inner.encoder, inner.quality);
    loop {
        let (sequence, frame) = {
            let mut slot = inner
                .slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                if inner.stopped.load(Ordering::Relaxed) {
                    return;
                }
                if slot.0.is_some() && inner.jpeg_watched() {
                    break;
                }
                // Nobody watches, or no frame: check again shortly (a viewer coming does not
                // signal this condition variable).
                slot = inner
                    .ready
                    .wait_timeout(slot, Duration::from_millis(10))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            slot.0.take().expect("checked above")
        };
        for (n, output) in inner.outputs.iter().enumerate() {
            if !output.stream.is_watched() {
                continue;
            }
            let (width, height, pixels) = frame.prepare(output.factor);
            let jpeg = match encoder.encode(&pixels, width, height) {
                Ok(jpeg) => jpeg,
                Err(error) => {
                    tracing::warn!(target: "labthings::stream", %error, "a frame could not be encoded");
                    continue;
                }
            };
            let mut last = output
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last > sequence {
                // Another worker added a newer frame meanwhile: keep the stream in order.
                if n == 0 {
                    inner.dropped.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            *last = sequence;
            if output.stream.add_frame_at(jpeg, frame.timestamp()).is_ok() && n == 0 {
                inner.encoded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::encode::Pixels;
    use crate::stream::{Gray16Window, PixelFormat};
    use chrono::Utc;

    fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = zune_jpeg::JpegDecoder::new(jpeg);
        let rgb = decoder.decode().unwrap();
        let (w, h) = decoder.dimensions().unwrap();
        (w, h, rgb)
    }

    fn near(actual: &[u8], expected: [u8; 3]) -> bool {
        actual
            .iter()
            .zip(expected)
            .all(|(a, e)| a.abs_diff(e) <= 12)
    }

    #[tokio::test]
    async fn each_format_encodes_to_the_right_size_and_colours() {
        let (w, h) = (32u16, 16u16);
        let pixels = usize::from(w) * usize::from(h);
        let cases: Vec<(RawFrame, [u8; 3])> = vec![
            (
                RawFrame::new(PixelFormat::Gray8, w, h, vec![200u8; pixels]).unwrap(),
                [200; 3],
            ),
            (
                RawFrame::new(PixelFormat::Rgb8, w, h, [250u8, 20, 30].repeat(pixels)).unwrap(),
                [250, 20, 30],
            ),
            (
                RawFrame::new(PixelFormat::Bgr8, w, h, [30u8, 20, 250].repeat(pixels)).unwrap(),
                [250, 20, 30],
            ),
            // Y 81, U 90, V 240: a strong red, (238, 14, 14) by full-range BT.601 (JFIF's).
            (
                RawFrame::new(
                    PixelFormat::Yuyv,
                    w,
                    h,
                    [81u8, 90, 81, 240].repeat(pixels / 2),
                )
                .unwrap(),
                [238, 14, 14],
            ),
            (
                RawFrame::new(
                    PixelFormat::Gray16(Gray16Window::Range {
                        low: 1000,
                        high: 3000,
                    }),
                    w,
                    h,
                    2000u16.to_le_bytes().repeat(pixels),
                )
                .unwrap(),
                [127; 3],
            ),
            // A flat colour through a Bayer mosaic (R G / G B): demosaiced back to it.
            (
                RawFrame::new(
                    PixelFormat::Bayer8(crate::stream::BayerPattern::Rggb),
                    w,
                    h,
                    (0..h)
                        .flat_map(|y| {
                            let row = if y % 2 == 0 { [250u8, 20] } else { [20, 30] };
                            row.repeat(usize::from(w) / 2)
                        })
                        .collect::<Vec<u8>>(),
                )
                .unwrap(),
                [250, 20, 30],
            ),
        ];
        for (frame, colour) in cases {
            let stream = MjpegStream::new();
            let pipeline = FramePipeline::builder(&stream).workers(1).build();
            let next = tokio::spawn({
                let stream = stream.clone();
                async move { stream.grab_frame().await }
            });
            stream.watched().await;
            pipeline.push(frame.clone());
            let entry = tokio::time::timeout(Duration::from_secs(5), next)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let (dw, dh, rgb) = decode(&entry.frame);
            assert_eq!((dw, dh), (32, 16));
            assert!(
                near(&rgb[..3], colour),
                "{:?}: {:?} not near {colour:?}",
                frame.format(),
                &rgb[..3]
            );
            assert_eq!(entry.timestamp, frame.timestamp().trunc_subsecs(6));
        }
    }

    use chrono::SubsecRound as _;

    #[test]
    fn gray16_windows_map_to_black_and_white() {
        let values: Vec<u8> = [0u16, 1000, 2000, 3000, 65535]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let frame = RawFrame::new(
            PixelFormat::Gray16(Gray16Window::Range {
                low: 1000,
                high: 3000,
            }),
            5,
            1,
            values.clone(),
        )
        .unwrap();
        let levels: Vec<u8> = frame.to_rgb(1).2.chunks(3).map(|p| p[0]).collect();
        assert_eq!(levels, [0, 0, 127, 255, 255]);
        // The fixed-point scaling is exact: every value of every window of a 12-bit range.
        for (low, high) in [
            (0u16, 4095u16),
            (100, 101),
            (7, 65535),
            (0, 1),
            (1000, 3000),
        ] {
            let values: Vec<u16> = (0..=4095).chain([65535]).collect();
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            let window = PixelFormat::Gray16(Gray16Window::Range { low, high });
            let frame = RawFrame::new(window, values.len() as u16, 1, bytes).unwrap();
            let Pixels::Luma(levels) = frame.prepare(1).2 else {
                panic!("grey stays grey")
            };
            for (value, level) in values.iter().zip(levels.iter().copied()) {
                let span = u32::from((high - low).max(1));
                let exact = (u32::from(value.saturating_sub(low)).min(span) * 255 / span) as u8;
                assert_eq!(level, exact, "{value} in {low}..{high}");
            }
        }
        let auto = RawFrame::new(PixelFormat::Gray16(Gray16Window::Auto), 5, 1, values).unwrap();
        let levels: Vec<u8> = auto.to_rgb(1).2.chunks(3).map(|p| p[0]).collect();
        assert_eq!(levels.first(), Some(&0));
        assert_eq!(levels.last(), Some(&255));
        assert!(RawFrame::new(PixelFormat::Rgb8, 2, 2, vec![0; 5]).is_err());
        assert!(RawFrame::new(PixelFormat::Yuyv, 3, 2, vec![0; 12]).is_err());
    }

    #[tokio::test]
    async fn nothing_is_encoded_unwatched_and_a_viewer_gets_the_newest_frame_at_once() {
        let (main, lores) = (MjpegStream::new(), MjpegStream::new());
        let pipeline = FramePipeline::builder(&main).lores(&lores, 2).build();
        for _ in 0..20 {
            pipeline.push(RawFrame::new(PixelFormat::Gray8, 64, 48, vec![9u8; 64 * 48]).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            main.frames_added(),
            0,
            "nothing encoded with nobody watching"
        );
        assert_eq!(lores.frames_added(), 0);
        assert_eq!(pipeline.stats().unwatched, 19);
        // A viewer of the preview comes: the newest raw frame is encoded for it at once, and
        // only for it.
        let mut viewer = lores.frames();
        use futures_util::StreamExt as _;
        let first = tokio::time::timeout(Duration::from_secs(2), viewer.next())
            .await
            .unwrap()
            .unwrap();
        let (w, h, _) = decode(&first.frame);
        assert_eq!((w, h), (32, 24), "half size");
        assert_eq!(main.frames_added(), 0, "the main stream is still unwatched");
        // The producer is told someone watches.
        tokio::time::timeout(Duration::from_millis(100), pipeline.watched())
            .await
            .unwrap();
        drop(viewer);
        assert!(!pipeline.is_watched());
    }

    #[tokio::test]
    async fn a_fast_producer_drops_frames_in_order_and_memory_stays_bounded() {
        let stream = MjpegStream::with_ringbuffer_size(1000);
        let pipeline = FramePipeline::builder(&stream).workers(2).build();
        let _watching = stream.demand();
        let start = Utc::now();
        for n in 0..2000i64 {
            let frame = RawFrame::new(
                PixelFormat::Gray8,
                320,
                240,
                vec![(n % 250) as u8; 320 * 240],
            )
            .unwrap()
            .at(start + chrono::Duration::microseconds(n));
            pipeline.push(frame);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stats = pipeline.stats();
        assert_eq!(stats.pushed, 2000);
        assert!(
            stats.dropped > 0,
            "the encoders cannot keep up with 2000 frames at once"
        );
        assert_eq!(
            stats.encoded + stats.dropped,
            2000 - u64::from(pipeline.inner.slot.lock().unwrap().0.is_some())
        );
        // At most one raw frame waits; the encoded ones came out in capture order.
        let held = stream.held_frames();
        assert!(held.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert_eq!(held.len() as u64, stats.encoded);
    }
}
