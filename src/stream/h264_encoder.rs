//! The frame pipeline's H.264 encoder thread (feature `h264`): raw frames to I420, I420 to
//! H.264 access units with OpenH264, one encoder per stream, only while the H.264 form is
//! watched.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType, VuiConfig,
};
use openh264::formats::YUVSlices;

use super::encode::Pixels;
use super::h264::H264Stream;
use super::raw::RawFrame;

/// What the pipeline hands its H.264 thread: the newest raw frame (newest wins).
pub(super) struct H264Feed {
    pub(super) stream: H264Stream,
    pub(super) slot: Mutex<Option<RawFrame>>,
    pub(super) ready: Condvar,
}

impl H264Feed {
    pub(super) fn new(stream: H264Stream) -> Self {
        Self {
            stream,
            slot: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    /// Offers a frame, if someone watches the H.264 form; a frame still waiting is replaced.
    pub(super) fn offer(&self, frame: &RawFrame) {
        if !self.stream.is_watched() {
            return;
        }
        *self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(frame.clone());
        self.ready.notify_one();
    }
}

/// The encoder thread: waits for a watched frame, encodes it, adds the unit to the stream.
pub(super) fn run(feed: &H264Feed, stopped: &AtomicBool) {
    let options = feed.stream.options();
    let mut encoder: Option<(Encoder, (u16, u16))> = None;
    let mut last_keyframe: Option<Instant> = None;
    let mut i420 = Vec::new();
    let mut warned_small = false;
    loop {
        let frame = {
            let mut slot = feed
                .slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                if slot.is_some() && feed.stream.is_watched() {
                    break;
                }
                slot = feed
                    .ready
                    .wait_timeout(slot, Duration::from_millis(20))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            slot.take().expect("checked above")
        };
        let (width, height) = to_i420(&frame, &mut i420);
        if width < 16 || height < 16 {
            if !warned_small {
                tracing::warn!(target: "labthings::stream", width, height, "frames too small for H.264 (16x16 at least) are not encoded");
                warned_small = true;
            }
            continue;
        }
        if encoder
            .as_ref()
            .is_none_or(|(_, size)| *size != (width, height))
        {
            match new_encoder(&options_config(&options, width, height)) {
                Ok(made) => encoder = Some((made, (width, height))),
                Err(error) => {
                    tracing::warn!(target: "labthings::stream", %error, "the H.264 encoder could not start");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let (encoder, _) = encoder.as_mut().expect("made above");
        let due = last_keyframe.is_none_or(|at| at.elapsed() >= options.keyframe_period());
        if feed.stream.take_keyframe_request() || due {
            encoder.force_intra_frame();
        }
        let (w, h) = (usize::from(width), usize::from(height));
        let (y, uv) = i420.split_at(w * h);
        let (u, v) = uv.split_at(w * h / 4);
        let source = YUVSlices::new((y, u, v), (w, h), (w, w / 2, w / 2));
        let unit = match encoder.encode(&source) {
            Ok(bitstream) => {
                let kind = bitstream.frame_type();
                if matches!(kind, FrameType::Skip | FrameType::Invalid) {
                    continue;
                }
                (bitstream.to_vec(), kind == FrameType::IDR)
            }
            Err(error) => {
                tracing::warn!(target: "labthings::stream", %error, "a frame could not be encoded to H.264");
                continue;
            }
        };
        if unit.1 {
            last_keyframe = Some(Instant::now());
        }
        feed.stream.add_unit(unit.0, frame.timestamp(), unit.1);
    }
}

fn options_config(options: &super::H264Options, width: u16, height: u16) -> EncoderConfig {
    let fps = options.planned_frame_rate();
    let period = (f64::from(fps) * options.keyframe_period().as_secs_f64()).ceil();
    EncoderConfig::new()
        .bitrate(BitRate::from_bps(options.bitrate_for(width, height)))
        .max_frame_rate(FrameRate::from_hz(fps))
        .rate_control_mode(RateControlMode::Bitrate)
        .usage_type(UsageType::CameraVideoRealTime)
        // The rate control may skip a frame to hold the bit rate (OpenH264 controls the rate
        // only so); a skipped frame is simply not sent.
        .skip_frames(true)
        .intra_frame_period(IntraFramePeriod::from_num_frames(period.max(1.0) as u32))
        .num_threads(1)
        .vui(VuiConfig::bt601())
}

fn new_encoder(config: &EncoderConfig) -> Result<Encoder, openh264::Error> {
    Encoder::with_api_config(OpenH264API::from_source(), *config)
}

/// The frame as I420 (BT.601, limited range, as the stream's VUI says), cropped to even width
/// and height; returns the size.
pub(super) fn to_i420(frame: &RawFrame, out: &mut Vec<u8>) -> (u16, u16) {
    let (width, height, pixels) = frame.prepare(1);
    let (w, h) = (usize::from(width), usize::from(height));
    let (ew, eh) = (w & !1, h & !1);
    out.clear();
    out.resize(ew * eh * 3 / 2, 128);
    let (ys, uv) = out.split_at_mut(ew * eh);
    let (us, vs) = uv.split_at_mut(ew * eh / 4);
    // Full range (0-255, as JPEG and the sensors give it) to H.264's limited range.
    let luma = |r: i32, g: i32, b: i32| ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let cb = |r: i32, g: i32, b: i32| (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
    let cr = |r: i32, g: i32, b: i32| (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
    match &pixels {
        Pixels::Luma(data) => {
            for y in 0..eh {
                for (out, value) in ys[y * ew..(y + 1) * ew].iter_mut().zip(&data[y * w..]) {
                    *out = (((i32::from(*value) * 220 + 128) >> 8) + 16) as u8;
                }
            }
        }
        Pixels::Rgb(data) | Pixels::Bgr(data) | Pixels::Ycbcr(data) => {
            let order = |p: &[u8]| -> (i32, i32, i32) {
                let (a, b, c) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
                match &pixels {
                    Pixels::Bgr(_) => (c, b, a),
                    Pixels::Ycbcr(_) => {
                        // JFIF's full-range YCbCr back to RGB.
                        let (cb, cr) = (b - 128, c - 128);
                        let clamp = |v: i32| v.clamp(0, 255);
                        (
                            clamp(a + ((91_881 * cr) >> 16)),
                            clamp(a - ((22_554 * cb + 46_802 * cr) >> 16)),
                            clamp(a + ((116_130 * cb) >> 16)),
                        )
                    }
                    _ => (a, b, c),
                }
            };
            for y in (0..eh).step_by(2) {
                for x in (0..ew).step_by(2) {
                    let (mut sr, mut sg, mut sb) = (0, 0, 0);
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let i = ((y + dy) * w + x + dx) * 3;
                        let (r, g, b) = order(&data[i..i + 3]);
                        ys[(y + dy) * ew + x + dx] = luma(r, g, b) as u8;
                        (sr, sg, sb) = (sr + r, sg + g, sb + b);
                    }
                    let (r, g, b) = ((sr + 2) / 4, (sg + 2) / 4, (sb + 2) / 4);
                    let c = (y / 2) * (ew / 2) + x / 2;
                    us[c] = cb(r, g, b);
                    vs[c] = cr(r, g, b);
                }
            }
        }
        Pixels::Yuyv(data) => {
            // Webcams' YUYV is BT.601 limited range already: Y as it is, U and V of the even rows.
            for y in 0..eh {
                let row = &data[y * w * 2..(y + 1) * w * 2];
                for x in 0..ew {
                    ys[y * ew + x] = row[x * 2];
                }
                if y % 2 == 0 {
                    for x in (0..ew).step_by(2) {
                        let c = (y / 2) * (ew / 2) + x / 2;
                        us[c] = row[x * 2 + 1];
                        vs[c] = row[x * 2 + 3];
                    }
                }
            }
        }
    }
    (ew as u16, eh as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::PixelFormat;

    #[test]
    fn rgb_grey_and_yuyv_become_limited_range_i420() {
        let mut out = Vec::new();
        // White, black and pure red, at odd sizes: cropped to even.
        let white = RawFrame::new(PixelFormat::Rgb8, 5, 3, vec![255u8; 45]).unwrap();
        assert_eq!(to_i420(&white, &mut out), (4, 2));
        assert_eq!(out.len(), 4 * 2 * 3 / 2);
        assert!(out[..8].iter().all(|&y| y == 235), "{out:?}");
        assert!(out[8..].iter().all(|&c| c == 128), "{out:?}");
        let black = RawFrame::new(PixelFormat::Gray8, 4, 2, vec![0u8; 8]).unwrap();
        to_i420(&black, &mut out);
        assert!(out[..8].iter().all(|&y| y == 16));
        let red = RawFrame::new(PixelFormat::Bgr8, 2, 2, [0u8, 0, 255].repeat(4)).unwrap();
        to_i420(&red, &mut out);
        assert_eq!(&out[..], [82, 82, 82, 82, 90, 240]);
        let yuyv =
            RawFrame::new(PixelFormat::Yuyv, 2, 2, vec![50u8, 60, 70, 80, 1, 2, 3, 4]).unwrap();
        to_i420(&yuyv, &mut out);
        assert_eq!(&out[..], [50, 70, 1, 3, 60, 80]);
    }

    /// The NAL unit types of an Annex B unit, in order.
    fn nal_types(unit: &[u8]) -> Vec<u8> {
        unit.windows(4)
            .filter(|w| w[..3] == [0, 0, 1])
            .map(|w| w[3] & 0x1f)
            .collect()
    }

    #[tokio::test]
    async fn the_pipeline_encodes_h264_only_while_watched_starting_with_sps_pps_and_an_idr() {
        use futures_util::StreamExt as _;
        let main =
            crate::stream::MjpegStream::new().with_h264(crate::stream::H264Options::default());
        let h264 = main.h264().unwrap();
        let pipeline = crate::stream::FramePipeline::builder(&main).build();
        let frame = |n: u8| RawFrame::new(PixelFormat::Gray8, 64, 48, vec![n; 64 * 48]).unwrap();
        for n in 0..10 {
            pipeline.push(frame(n));
        }
        // An MJPEG viewer alone: JPEG frames, and no H.264.
        let mut mjpeg = main.frames();
        tokio::time::timeout(Duration::from_secs(5), mjpeg.next())
            .await
            .unwrap()
            .unwrap();
        pipeline.push(frame(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(h264.stats().units, 0, "nobody watches the H.264 form");
        drop(mjpeg);
        // An H.264 viewer: the producer is told, and units come, the first a keyframe.
        let mut viewer = h264.units();
        assert!(pipeline.is_watched());
        tokio::time::timeout(Duration::from_millis(200), pipeline.watched())
            .await
            .unwrap();
        let mut units = Vec::new();
        for n in 0..5u8 {
            pipeline.push(frame(30 + n * 10));
            let unit = tokio::time::timeout(Duration::from_secs(5), viewer.next())
                .await
                .unwrap()
                .unwrap();
            units.push(unit);
        }
        assert!(units[0].keyframe);
        assert_eq!(nal_types(&units[0].data)[..3], [7, 8, 5], "SPS, PPS, IDR");
        assert!(
            units[1..]
                .iter()
                .all(|unit| !unit.keyframe && nal_types(&unit.data) == [1])
        );
        assert!(units.windows(2).all(|w| w[0].index + 1 == w[1].index));
        drop(viewer);
        let encoded = h264.stats().units;
        for n in 0..5 {
            pipeline.push(frame(n));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            h264.stats().units,
            encoded,
            "nothing encoded once the viewer left"
        );
        // A viewer joining later gets a keyframe at once, not at the next interval.
        let mut late = h264.units();
        pipeline.push(frame(99));
        let first = tokio::time::timeout(Duration::from_secs(5), late.next())
            .await
            .unwrap()
            .unwrap();
        assert!(first.keyframe);
        assert_eq!(first.index, encoded, "the first frame after joining");
    }

    /// Encodes `count` noisy 320x240 frames with `options`, one at a time, `pause` apart;
    /// returns the bytes and the keyframes of the units made.
    async fn encode(
        options: crate::stream::H264Options,
        count: u32,
        pause: Duration,
        noisy: bool,
    ) -> (usize, usize) {
        use futures_util::StreamExt as _;
        let main = crate::stream::MjpegStream::new().with_h264(options);
        let pipeline = crate::stream::FramePipeline::builder(&main).build();
        let mut viewer = main.h264().unwrap().units();
        let mut state = 0u32;
        let (mut bytes, mut keyframes) = (0, 0);
        for _ in 0..count {
            // Sensor noise (for the bit rate), or a gradient sliding a pixel a frame (no scene
            // change, which would make the encoder start a keyframe of its own).
            let shift = state;
            let noise: Vec<u8> = (0..320 * 240u32)
                .map(|i| {
                    if noisy {
                        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (state >> 24) as u8
                    } else {
                        ((i % 320 + shift) % 256) as u8
                    }
                })
                .collect();
            if !noisy {
                state += 1;
            }
            pipeline.push(RawFrame::new(PixelFormat::Gray8, 320, 240, noise).unwrap());
            // The rate control may skip a frame (no unit) to hold a low bit rate.
            if let Ok(unit) = tokio::time::timeout(Duration::from_millis(500), viewer.next()).await
            {
                let unit = unit.expect("the stream goes on");
                bytes += unit.data.len();
                keyframes += usize::from(unit.keyframe);
            }
            tokio::time::sleep(pause).await;
        }
        (bytes, keyframes)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_bit_rate_and_the_keyframe_interval_are_the_options_given() {
        use crate::stream::H264Options;
        let (low, _) = encode(
            H264Options::default().with_bitrate(100_000),
            20,
            Duration::ZERO,
            true,
        )
        .await;
        let (high, _) = encode(
            H264Options::default().with_bitrate(5_000_000),
            20,
            Duration::ZERO,
            true,
        )
        .await;
        assert!(
            high > 3 * low,
            "5 Mbit/s gave {high} bytes, 100 kbit/s {low}"
        );
        // A keyframe at least every 100 ms over 600 ms and more; with the default (1 s), only
        // the first, of 10 frames encoded back to back.
        let short = H264Options::default().with_keyframe_interval(Duration::from_millis(100));
        let (_, often) = encode(short, 20, Duration::from_millis(30), false).await;
        assert!(often >= 4, "{often} keyframes in 20 frames 30 ms apart");
        let (_, seldom) = encode(H264Options::default(), 10, Duration::ZERO, false).await;
        assert!(seldom <= 2, "{seldom} keyframes in 10 frames back to back");
    }
}
