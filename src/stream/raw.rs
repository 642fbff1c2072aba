//! [`RawFrame`]: one frame from a sensor before encoding, its [`PixelFormat`], and its
//! conversion to what the encoders take. Its own file so that the JPEG pipeline
//! ([`super::pipeline`]) and the H.264 encoder ([`super::h264_encoder`]) both use it without
//! using each other.

use chrono::{DateTime, Utc};

use super::bayer::{BayerPattern, MonoPacking, demosaic_bilinear, demosaic_half};
use super::encode::Pixels;

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
    /// An 8-bit Bayer mosaic (one colour a pixel, as most colour machine-vision cameras
    /// give it), demosaiced to RGB: bilinear for full-size streams, one pixel a 2x2 cell (the
    /// fast path) for downscaled ones.
    Bayer8(BayerPattern),
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
            Self::Gray8 | Self::Bayer8(_) => 2,
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

    /// A 16-bit grey frame from 10- or 12-bit values packed as `packing` says (a GenICam
    /// camera's `Mono12p`, `Mono12Packed`, ...), unpacked to one value a pixel and shown
    /// through `window`, captured now.
    ///
    /// # Errors
    ///
    /// [`FrameError`] if `data` is too short for `width` x `height` values.
    ///
    /// # Examples
    ///
    /// ```
    /// use labthings::stream::{Gray16Window, MonoPacking, RawFrame};
    ///
    /// let full = Gray16Window::Range { low: 0, high: 4095 };
    /// let frame = RawFrame::packed(MonoPacking::Mono12p, 2, 1, &[0xBC, 0x3A, 0x12], full).unwrap();
    /// assert_eq!(frame.data(), [0xBC, 0x0A, 0x23, 0x01]); // 0xABC and 0x123, little-endian
    /// ```
    pub fn packed(
        packing: MonoPacking,
        width: u16,
        height: u16,
        data: &[u8],
        window: Gray16Window,
    ) -> Result<Self, FrameError> {
        let pixels = usize::from(width) * usize::from(height);
        let values = packing.unpack(pixels, data).ok_or(FrameError::Length {
            width,
            height,
            expected: packing.packed_len(pixels),
            actual: data.len(),
        })?;
        Self::gray16(width, height, &values, window)
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
                PixelFormat::Bayer8(pattern) => Pixels::Rgb(Cow::Owned(demosaic_bilinear(
                    pattern,
                    usize::from(self.width),
                    usize::from(self.height),
                    data,
                ))),
            };
            return (self.width, self.height, pixels);
        }
        let (mut w, mut h, mut f) = (
            usize::from(self.width),
            usize::from(self.height),
            usize::from(factor),
        );
        let (pixels, channels): (Cow<'_, [u8]>, usize) = match self.format {
            PixelFormat::Gray8 => (Cow::Borrowed(data), 1),
            PixelFormat::Gray16(window) => (Cow::Owned(self.levels(window)), 1),
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => (Cow::Borrowed(data), 3),
            PixelFormat::Yuyv => (Cow::Owned(super::encode::yuyv_to_ycbcr(data)), 3),
            // The fast path halves the size; the rest of an even factor averages as usual.
            PixelFormat::Bayer8(pattern) if f % 2 == 0 => {
                let (half_w, half_h, rgb) = demosaic_half(pattern, w, h, data);
                (w, h, f) = (half_w, half_h, f / 2);
                (Cow::Owned(rgb), 3)
            }
            PixelFormat::Bayer8(pattern) => (Cow::Owned(demosaic_bilinear(pattern, w, h, data)), 3),
        };
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
            PixelFormat::Rgb8 | PixelFormat::Bayer8(_) => Pixels::Rgb(small),
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
