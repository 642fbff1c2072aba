//! JPEG encoding for the frame pipeline: jpeg-encoder (pure Rust, with SIMD) always, and
//! libjpeg-turbo with the `turbojpeg` feature (two to three times less CPU per frame), behind
//! one interface. Both make the same JPEGs as far as a viewer can tell: the same quality, grey
//! kept grey, and colour subsampled 4:2:0 below quality 90 and not at all from 90 up.

use std::borrow::Cow;

/// Which JPEG encoder a [`FramePipeline`](super::FramePipeline) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JpegEncoder {
    /// jpeg-encoder: pure Rust with SIMD, nothing to install. The default without the
    /// `turbojpeg` feature.
    #[cfg_attr(not(feature = "turbojpeg"), default)]
    PureRust,
    /// libjpeg-turbo (feature `turbojpeg`; building it needs `cmake` and `nasm`): two to three
    /// times less CPU per frame. The default with the feature.
    #[cfg(feature = "turbojpeg")]
    #[default]
    Turbo,
}

impl JpegEncoder {
    /// Its name, as logged and in `/metrics`: `jpeg-encoder` or `libjpeg-turbo`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PureRust => "jpeg-encoder",
            #[cfg(feature = "turbojpeg")]
            Self::Turbo => "libjpeg-turbo",
        }
    }
}

impl std::fmt::Display for JpegEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Pipelines running now, by encoder (for `/metrics`).
static RUNNING: [std::sync::atomic::AtomicUsize; 2] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

fn slot(encoder: JpegEncoder) -> usize {
    match encoder {
        JpegEncoder::PureRust => 0,
        #[cfg(feature = "turbojpeg")]
        JpegEncoder::Turbo => 1,
    }
}

/// A pipeline using `encoder` started.
pub(super) fn started(encoder: JpegEncoder) {
    RUNNING[slot(encoder)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// A pipeline using `encoder` stopped.
pub(super) fn stopped(encoder: JpegEncoder) {
    RUNNING[slot(encoder)].fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// Every encoder built in.
const BUILT_IN: &[JpegEncoder] = &[
    JpegEncoder::PureRust,
    #[cfg(feature = "turbojpeg")]
    JpegEncoder::Turbo,
];

/// Each encoder built in, with the number of frame pipelines using it now.
pub fn pipelines_by_encoder() -> Vec<(JpegEncoder, usize)> {
    BUILT_IN
        .iter()
        .copied()
        .map(|encoder| {
            let running = RUNNING[slot(encoder)].load(std::sync::atomic::Ordering::Relaxed);
            (encoder, running)
        })
        .collect()
}

/// A frame ready for an encoder, 8 bits a channel.
pub(super) enum Pixels<'a> {
    /// Grey, a byte a pixel.
    Luma(Cow<'a, [u8]>),
    /// Red, green, blue.
    Rgb(Cow<'a, [u8]>),
    /// Blue, green, red.
    Bgr(Cow<'a, [u8]>),
    /// `Y0 U Y1 V` for each two pixels, as a YUYV camera gives it.
    Yuyv(&'a [u8]),
    /// Y, Cb, Cr for each pixel.
    Ycbcr(Cow<'a, [u8]>),
}

/// One worker's encoder: keeps what can be reused from frame to frame.
pub(super) struct Encoder {
    kind: JpegEncoder,
    quality: u8,
    #[cfg(feature = "turbojpeg")]
    turbo: Option<turbojpeg::Compressor>,
}

impl Encoder {
    pub(super) fn new(kind: JpegEncoder, quality: u8) -> Self {
        Self {
            kind,
            quality,
            #[cfg(feature = "turbojpeg")]
            turbo: None,
        }
    }

    /// The JPEG of `pixels`, `width` x `height`.
    pub(super) fn encode(
        &mut self,
        pixels: &Pixels<'_>,
        width: u16,
        height: u16,
    ) -> Result<Vec<u8>, String> {
        match self.kind {
            JpegEncoder::PureRust => pure_rust(pixels, width, height, self.quality),
            #[cfg(feature = "turbojpeg")]
            JpegEncoder::Turbo => {
                let compressor = match &mut self.turbo {
                    Some(compressor) => compressor,
                    None => {
                        let mut compressor =
                            turbojpeg::Compressor::new().map_err(|error| error.to_string())?;
                        compressor
                            .set_quality(i32::from(self.quality))
                            .map_err(|error| error.to_string())?;
                        self.turbo.insert(compressor)
                    }
                };
                turbo(compressor, pixels, width, height, self.quality)
                    .map_err(|error| error.to_string())
            }
        }
    }
}

fn pure_rust(pixels: &Pixels<'_>, width: u16, height: u16, quality: u8) -> Result<Vec<u8>, String> {
    use jpeg_encoder::ColorType;
    let ycbcr;
    let (data, colour): (&[u8], ColorType) = match pixels {
        Pixels::Luma(data) => (data, ColorType::Luma),
        Pixels::Rgb(data) => (data, ColorType::Rgb),
        Pixels::Bgr(data) => (data, ColorType::Bgr),
        Pixels::Ycbcr(data) => (data, ColorType::Ycbcr),
        Pixels::Yuyv(data) => {
            ycbcr = yuyv_to_ycbcr(data);
            (&ycbcr, ColorType::Ycbcr)
        }
    };
    let mut jpeg = Vec::with_capacity(data.len() / 8);
    jpeg_encoder::Encoder::new(&mut jpeg, quality)
        .encode(data, width, height, colour)
        .map_err(|error| error.to_string())?;
    Ok(jpeg)
}

/// YUYV to one Y, Cb, Cr triple a pixel: each pair of pixels shares its chroma.
pub(super) fn yuyv_to_ycbcr(data: &[u8]) -> Vec<u8> {
    let mut ycbcr = Vec::with_capacity(data.len() / 2 * 3);
    for quad in data.chunks_exact(4) {
        ycbcr.extend_from_slice(&[quad[0], quad[1], quad[3], quad[2], quad[1], quad[3]]);
    }
    ycbcr
}

#[cfg(feature = "turbojpeg")]
fn turbo(
    compressor: &mut turbojpeg::Compressor,
    pixels: &Pixels<'_>,
    width: u16,
    height: u16,
    quality: u8,
) -> turbojpeg::Result<Vec<u8>> {
    use turbojpeg::{Image, PixelFormat, Subsamp};
    let (w, h) = (usize::from(width), usize::from(height));
    // As jpeg-encoder does: 4:2:0 below quality 90, full chroma from 90 up.
    let colour = if quality < 90 {
        Subsamp::Sub2x2
    } else {
        Subsamp::None
    };
    fn packed(
        data: &[u8],
        (w, h): (usize, usize),
        format: PixelFormat,
        subsamp: Subsamp,
    ) -> (Image<&[u8]>, Subsamp) {
        let image = Image {
            pixels: data,
            width: w,
            pitch: w * format.size(),
            height: h,
            format,
        };
        (image, subsamp)
    }
    let (image, subsamp) = match pixels {
        Pixels::Luma(data) => packed(data, (w, h), PixelFormat::GRAY, Subsamp::Gray),
        Pixels::Rgb(data) => packed(data, (w, h), PixelFormat::RGB, colour),
        Pixels::Bgr(data) => packed(data, (w, h), PixelFormat::BGR, colour),
        Pixels::Yuyv(data) => {
            let planes = Planes::from_yuyv(data, w, h, colour == Subsamp::Sub2x2);
            return planes.compress(compressor, colour);
        }
        Pixels::Ycbcr(data) => {
            let planes = Planes::from_ycbcr(data, w, h, colour == Subsamp::Sub2x2);
            return planes.compress(compressor, colour);
        }
    };
    compressor.set_subsamp(subsamp)?;
    compressor.compress_to_vec(image)
}

/// Y, U and V planes, the chroma planes at the JPEG's own sampling: libjpeg-turbo then
/// encodes them as they are, with no colour conversion at all.
#[cfg(feature = "turbojpeg")]
struct Planes {
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    width: usize,
    height: usize,
    /// The chroma planes' width.
    chroma_width: usize,
}

#[cfg(feature = "turbojpeg")]
impl Planes {
    /// From YUYV (each pair of pixels shares its chroma): 4:2:0 averages each two rows' chroma,
    /// full chroma repeats it for both pixels of a pair.
    fn from_yuyv(data: &[u8], width: usize, height: usize, half: bool) -> Self {
        let pairs = width / 2;
        let y: Vec<u8> = data.iter().step_by(2).copied().collect();
        let (chroma_width, chroma_height) = if half {
            (pairs, height.div_ceil(2))
        } else {
            (width, height)
        };
        let mut u = Vec::with_capacity(chroma_width * chroma_height);
        let mut v = Vec::with_capacity(chroma_width * chroma_height);
        let row = |r: usize| &data[r * width * 2..(r + 1) * width * 2];
        if half {
            for r in (0..height).step_by(2) {
                let (top, bottom) = (row(r), row((r + 1).min(height - 1)));
                for (a, b) in top.chunks_exact(4).zip(bottom.chunks_exact(4)) {
                    u.push((u16::from(a[1]) + u16::from(b[1])).div_ceil(2) as u8);
                    v.push((u16::from(a[3]) + u16::from(b[3])).div_ceil(2) as u8);
                }
            }
        } else {
            for quad in data.chunks_exact(4) {
                u.extend_from_slice(&[quad[1], quad[1]]);
                v.extend_from_slice(&[quad[3], quad[3]]);
            }
        }
        Self {
            y,
            u,
            v,
            width,
            height,
            chroma_width,
        }
    }

    /// From one Y, Cb, Cr triple a pixel: 4:2:0 averages each 2x2 block's chroma.
    fn from_ycbcr(data: &[u8], width: usize, height: usize, half: bool) -> Self {
        let y: Vec<u8> = data.iter().step_by(3).copied().collect();
        if !half {
            return Self {
                y,
                u: data.iter().skip(1).step_by(3).copied().collect(),
                v: data.iter().skip(2).step_by(3).copied().collect(),
                width,
                height,
                chroma_width: width,
            };
        }
        let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
        let mut u = Vec::with_capacity(chroma_width * chroma_height);
        let mut v = Vec::with_capacity(chroma_width * chroma_height);
        let at = |x: usize, y: usize, c: usize| u16::from(data[(y * width + x) * 3 + c]);
        for cy in 0..chroma_height {
            let (y0, y1) = (cy * 2, (cy * 2 + 1).min(height - 1));
            for cx in 0..chroma_width {
                let (x0, x1) = (cx * 2, (cx * 2 + 1).min(width - 1));
                for (plane, c) in [(&mut u, 1), (&mut v, 2)] {
                    let sum = at(x0, y0, c) + at(x1, y0, c) + at(x0, y1, c) + at(x1, y1, c);
                    plane.push(((sum + 2) / 4) as u8);
                }
            }
        }
        Self {
            y,
            u,
            v,
            width,
            height,
            chroma_width,
        }
    }

    fn compress(
        &self,
        compressor: &mut turbojpeg::Compressor,
        subsamp: turbojpeg::Subsamp,
    ) -> turbojpeg::Result<Vec<u8>> {
        let image = turbojpeg::YuvPlanesImage {
            y_plane: &self.y[..],
            u_plane: &self.u[..],
            v_plane: &self.v[..],
            width: self.width,
            height: self.height,
            y_stride: self.width,
            u_stride: self.chroma_width,
            v_stride: self.chroma_width,
            subsamp,
        };
        compressor.compress_yuv_planes_to_vec(&image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoders to check: both when libjpeg-turbo is built in.
    fn encoders() -> Vec<JpegEncoder> {
        BUILT_IN.to_vec()
    }

    fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = zune_jpeg::JpegDecoder::new(jpeg);
        let rgb = decoder.decode().unwrap();
        let (w, h) = decoder.dimensions().unwrap();
        (w, h, rgb)
    }

    /// Peak signal-to-noise ratio of `actual` against `expected`, in dB.
    fn psnr(expected: &[u8], actual: &[u8]) -> f64 {
        assert_eq!(expected.len(), actual.len());
        let mse = expected
            .iter()
            .zip(actual)
            .map(|(e, a)| (f64::from(*e) - f64::from(*a)).powi(2))
            .sum::<f64>()
            / expected.len() as f64;
        10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
    }

    #[test]
    fn every_encoder_makes_the_same_kind_of_jpeg_within_40_db_of_the_source() {
        use super::super::{Gray16Window, PixelFormat, RawFrame};
        let (w, h) = (64u16, 48u16);
        // A smooth scene: gradients in each channel, as a camera image is mostly.
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [(x * 3) as u8, (y * 4) as u8, (128 + x.min(y)) as u8])
            })
            .collect();
        let bgr: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let grey: Vec<u8> = rgb.chunks(3).map(|p| p[1]).collect();
        let grey16: Vec<u8> = grey
            .iter()
            .flat_map(|v| (u16::from(*v) * 16).to_le_bytes())
            .collect();
        let yuyv: Vec<u8> = (0..usize::from(h))
            .flat_map(|y| {
                (0..usize::from(w) / 2).flat_map(move |pair| {
                    let luma = (pair * 6) as u8;
                    [luma, 100 + (y as u8), luma.wrapping_add(3), 160 - (y as u8)]
                })
            })
            .collect();
        let frames = [
            RawFrame::new(PixelFormat::Gray8, w, h, grey.clone()).unwrap(),
            RawFrame::new(
                PixelFormat::Gray16(Gray16Window::Range { low: 0, high: 4080 }),
                w,
                h,
                grey16,
            )
            .unwrap(),
            RawFrame::new(PixelFormat::Rgb8, w, h, rgb.clone()).unwrap(),
            RawFrame::new(PixelFormat::Bgr8, w, h, bgr).unwrap(),
            RawFrame::new(PixelFormat::Yuyv, w, h, yuyv).unwrap(),
            RawFrame::new(
                PixelFormat::Bayer8(crate::stream::BayerPattern::Gbrg),
                w,
                h,
                grey.clone(),
            )
            .unwrap(),
        ];
        for kind in encoders() {
            for quality in [85u8, 95] {
                let mut encoder = Encoder::new(kind, quality);
                for frame in &frames {
                    for factor in [1u16, 2] {
                        let (pw, ph, pixels) = frame.prepare(factor);
                        let jpeg = encoder.encode(&pixels, pw, ph).unwrap();
                        let (dw, dh, decoded) = decode(&jpeg);
                        assert_eq!((dw, dh), (usize::from(pw), usize::from(ph)));
                        // A grey JPEG decodes to one channel.
                        let decoded: Vec<u8> = if decoded.len() == dw * dh {
                            decoded.iter().flat_map(|&v| [v; 3]).collect()
                        } else {
                            decoded
                        };
                        let (_, _, source) = frame.to_rgb(factor);
                        let db = psnr(&source, &decoded);
                        assert!(
                            db > 40.0,
                            "{kind} q{quality} {:?} /{factor}: {db:.1} dB",
                            frame.format()
                        );
                        // Grey stays grey: one component.
                        let grey =
                            matches!(frame.format(), PixelFormat::Gray8 | PixelFormat::Gray16(_));
                        assert_eq!(components(&jpeg), if grey { 1 } else { 3 });
                        if !grey {
                            // Luma's sampling factors: 2x2 (4:2:0) below 90, 1x1 from 90.
                            let expected = if quality < 90 { 0x22 } else { 0x11 };
                            assert_eq!(
                                luma_sampling(&jpeg),
                                expected,
                                "{kind} q{quality} {:?}",
                                frame.format()
                            );
                        }
                    }
                }
            }
        }
    }

    /// The SOF0 segment: (components, luma sampling byte).
    fn start_of_frame(jpeg: &[u8]) -> (u8, u8) {
        let at = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline JPEG");
        (jpeg[at + 9], jpeg[at + 11])
    }

    fn components(jpeg: &[u8]) -> u8 {
        start_of_frame(jpeg).0
    }

    fn luma_sampling(jpeg: &[u8]) -> u8 {
        start_of_frame(jpeg).1
    }
}
