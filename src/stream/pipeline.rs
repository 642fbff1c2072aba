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

use chrono::{DateTime, Utc};

use super::MjpegStream;
use super::encode::{Encoder, JpegEncoder, Pixels};

/// How a raw frame's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PixelFormat {
    /// 8-bit grey, one byte per pixel.
    Gray8,
    /// 16-bit grey, two bytes per pixel (little-endian), shown through a window.
    Gray16(Gray16Window),
    /// 8-bit red, green, blue.
    Rgb8,
    /// 8-bit blue, green, red (OpenCV's order).
    Bgr8,
    /// YUV 4:2:2, `Y0 U Y1 V` for each two pixels (USB webcams' raw format).
    Yuyv,
}

/// Which 16-bit values map to black and white in the 8-bit JPEG.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Gray16Window {
    /// `low` and below black, `high` and above white, linear between.
    Range {
        /// Shown black.
        low: u16,
        /// Shown white.
        high: u16,
    },
    /// Each frame's own darkest and brightest values (auto-contrast).
    Auto,
}

impl PixelFormat {
    pub(crate) fn bytes_per_pixel_pair(self) -> usize {
        match self {
            Self::Gray8 => 2,
            Self::Gray16(_) | Self::Yuyv => 4,
            Self::Rgb8 | Self::Bgr8 => 6,
        }
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The bytes do not fill width x height pixels of the format.
    #[error("a {width}x{height} frame of this format has {expected} bytes, not {actual}")]
    Length {
        /// Width.
        width: u16,
        /// Height.
        height: u16,
        /// Bytes it needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// An empty frame, or an odd width for YUYV (pixels come in pairs).
    #[error("a frame must be at least 1x1 (and YUYV an even width), not {width}x{height}")]
    Size {
        /// Width.
        width: u16,
        /// Height.
        height: u16,
    },
}

/// One frame from a sensor, before encoding.
#[derive(Debug, Clone)]
pub struct RawFrame {
    format: PixelFormat,
    width: u16,
    height: u16,
    data: bytes::Bytes,
    timestamp: DateTime<Utc>,
}

impl RawFrame {
    /// A frame of `width` x `height` pixels of `format`, captured now.
    ///
    /// # Errors
    ///
    /// [`FrameError`] if `data` does not hold exactly that many pixels.
    pub fn new(
        format: PixelFormat,
        width: u16,
        height: u16,
        data: impl Into<bytes::Bytes>,
    ) -> Result<Self, FrameError> {
        let data = data.into();
        if width == 0 || height == 0 || (format == PixelFormat::Yuyv && width % 2 == 1) {
            return Err(FrameError::Size { width, height });
        }
        let expected = usize::from(width) * usize::from(height) * format.bytes_per_pixel_pair() / 2;
        if data.len() != expected {
            return Err(FrameError::Length {
                width,
                height,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            format,
            width,
            height,
            data,
            timestamp: Utc::now(),
        })
    }

    /// A 16-bit grey frame from a sensor's pixel values (`&[u16]`, as most camera SDKs give
    /// them), shown through `window`, captured now.
    ///
    /// # Errors
    ///
    /// [`FrameError`] if `pixels` does not hold exactly `width` x `height` values.
    ///
    /// # Examples
    ///
    /// ```
    /// use labthings::stream::{Gray16Window, RawFrame};
    ///
    /// let pixels: Vec<u16> = (0..64 * 48).map(|i| (i % 4096) as u16).collect();
    /// let frame = RawFrame::gray16(64, 48, &pixels, Gray16Window::Auto).unwrap();
    /// assert_eq!(frame.data().len(), 64 * 48 * 2);
    /// assert!(RawFrame::gray16(64, 48, &pixels[1..], Gray16Window::Auto).is_err());
    /// ```
    pub fn gray16(
        width: u16,
        height: u16,
        pixels: &[u16],
        window: Gray16Window,
    ) -> Result<Self, FrameError> {
        let bytes: Vec<u8> = pixels
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        Self::new(PixelFormat::Gray16(window), width, height, bytes)
    }

    /// The pixels, as given.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// How the pixels are laid out.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Width and height, in pixels.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// When it was captured.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// The same frame, captured at `timestamp` (as the camera reports it); viewers see it.
    #[must_use]
    pub fn at(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The frame as the JPEG encoders take it (grey, RGB, BGR, YUYV or YCbCr, 8 bits a
    /// channel), downscaled by `factor` (1: full size) by averaging blocks. Full-size grey,
    /// RGB, BGR and YUYV frames go to the encoder as they are.
    pub(super) fn prepare(&self, factor: u16) -> (u16, u16, Pixels<'_>) {
        use std::borrow::Cow;
        let data = &self.data[..];
        if factor <= 1 {
            let pixels = match self.format {
                PixelFormat::Gray8 => Pixels::Luma(Cow::Borrowed(data)),
                PixelFormat::Rgb8 => Pixels::Rgb(Cow::Borrowed(data)),
                PixelFormat::Bgr8 => Pixels::Bgr(Cow::Borrowed(data)),
                PixelFormat::Gray16(window) => Pixels::Luma(Cow::Owned(self.levels(window))),
                PixelFormat::Yuyv => Pixels::Yuyv(data),
            };
            return (self.width, self.height, pixels);
        }
        let (pixels, channels): (Cow<'_, [u8]>, usize) = match self.format {
            PixelFormat::Gray8 => (Cow::Borrowed(data), 1),
            PixelFormat::Gray16(window) => (Cow::Owned(self.levels(window)), 1),
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => (Cow::Borrowed(data), 3),
            PixelFormat::Yuyv => (Cow::Owned(super::encode::yuyv_to_ycbcr(data)), 3),
        };
        let (w, h, f) = (
            usize::from(self.width),
            usize::from(self.height),
            usize::from(factor),
        );
        let (out_w, out_h) = ((w / f).max(1), (h / f).max(1));
        let mut small = vec![0u8; out_w * out_h * channels];
        let mut sums = vec![0u32; out_w * channels];
        for oy in 0..out_h {
            sums.iter_mut().for_each(|sum| *sum = 0);
            let rows = (oy * f..((oy + 1) * f).min(h)).count().max(1);
            for y in oy * f..((oy + 1) * f).min(h) {
                let row = &pixels[y * w * channels..(y + 1) * w * channels];
                for (x, pixel) in row.chunks_exact(channels).enumerate().take(out_w * f) {
                    let base = (x / f) * channels;
                    for (c, value) in pixel.iter().enumerate() {
                        sums[base + c] += u32::from(*value);
                    }
                }
            }
            let count = (rows * f) as u32;
            for (out, sum) in small[oy * out_w * channels..(oy + 1) * out_w * channels]
                .iter_mut()
                .zip(&sums)
            {
                *out = (sum / count) as u8;
            }
        }
        let small = Cow::Owned(small);
        let pixels = match self.format {
            PixelFormat::Gray8 | PixelFormat::Gray16(_) => Pixels::Luma(small),
            PixelFormat::Rgb8 => Pixels::Rgb(small),
            PixelFormat::Bgr8 => Pixels::Bgr(small),
            PixelFormat::Yuyv => Pixels::Ycbcr(small),
        };
        (out_w as u16, out_h as u16, pixels)
    }

    /// A 16-bit frame's grey levels through `window`.
    fn levels(&self, window: Gray16Window) -> Vec<u8> {
        let (low, high) = self.window(window);
        let span = u64::from((high - low).max(1));
        // value * 255 / span, without a division per pixel: a 32-bit fixed-point reciprocal
        // rounded up gives the same floor for every value up to 65535.
        let scale = ((255 << 32) / span) + 1;
        self.data
            .chunks_exact(2)
            .map(|pair| {
                let value = u64::from(u16::from_le_bytes([pair[0], pair[1]]).saturating_sub(low));
                ((value.min(span) * scale) >> 32) as u8
            })
            .collect()
    }

    /// The frame as 8-bit RGB, as an encoder is given it (for tests of the conversions).
    #[cfg(test)]
    pub(super) fn to_rgb(&self, factor: u16) -> (u16, u16, Vec<u8>) {
        let (w, h, pixels) = self.prepare(factor);
        let from_ycbcr = |data: &[u8]| -> Vec<u8> {
            data.chunks(3)
                .flat_map(|p| {
                    let (y, cb, cr) = (
                        f64::from(p[0]),
                        f64::from(p[1]) - 128.0,
                        f64::from(p[2]) - 128.0,
                    );
                    let clamp = |v: f64| v.round().clamp(0.0, 255.0) as u8;
                    [
                        clamp(y + 1.402 * cr),
                        clamp(y - 0.344_136 * cb - 0.714_136 * cr),
                        clamp(y + 1.772 * cb),
                    ]
                })
                .collect()
        };
        let rgb = match pixels {
            Pixels::Luma(data) => data.iter().flat_map(|&v| [v; 3]).collect(),
            Pixels::Rgb(data) => data.into_owned(),
            Pixels::Bgr(data) => data.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect(),
            Pixels::Ycbcr(data) => from_ycbcr(&data),
            Pixels::Yuyv(data) => from_ycbcr(&super::encode::yuyv_to_ycbcr(data)),
        };
        (w, h, rgb)
    }

    /// The window of a 16-bit frame: as given, or its own range.
    fn window(&self, window: Gray16Window) -> (u16, u16) {
        match window {
            Gray16Window::Range { low, high } => (low, high.max(low)),
            Gray16Window::Auto => {
                let values = self
                    .data
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]));
                let (low, high) = values.fold((u16::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
                (low, high.max(low))
            }
        }
    }
}

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
            if output.stream.add_frame_at(jpeg, frame.timestamp).is_ok() && n == 0 {
                inner.encoded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                frame.format,
                &rgb[..3]
            );
            assert_eq!(entry.timestamp, frame.timestamp.trunc_subsecs(6));
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
