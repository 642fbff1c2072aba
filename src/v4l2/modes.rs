//! The device's modes: formats, sizes and frame rates, listed and chosen.

use std::io;

use linuxvideo::format::{FrameIntervals, FrameSizes, PixelFormat as Fourcc};
use linuxvideo::{BufType, Device, Fract};

use super::{Mode, V4l2Options};

/// The fourcc codes the camera serves, in the order it prefers them.
pub(super) const SERVED: [&str; 6] = ["MJPG", "JPEG", "YUYV", "GREY", "RGB3", "BGR3"];

pub(super) fn fourcc(format: &str) -> Fourcc {
    let mut code = [b' '; 4];
    for (slot, byte) in code.iter_mut().zip(format.bytes()) {
        *slot = byte;
    }
    Fourcc::from_fourcc(code)
}

fn fourcc_name(format: Fourcc) -> String {
    String::from_utf8_lossy(&format.as_fourcc())
        .trim_end()
        .to_owned()
}

pub(super) fn fract_of_fps(fps: f64) -> Fract {
    // Frame intervals are fractions of a second: 1/30, 1001/30000.
    let denominator = (fps * 1000.0).round().max(1.0) as u32;
    Fract::new(1000, denominator)
}

fn fps_of(interval: Fract) -> f64 {
    if interval.numerator() == 0 {
        return 0.0;
    }
    let fps = f64::from(interval.denominator()) / f64::from(interval.numerator());
    (fps * 1000.0).round() / 1000.0
}

/// Every served mode of the device, and the names of every format it offers.
pub(super) fn list_modes(device: &Device) -> io::Result<(Vec<Mode>, Vec<String>)> {
    let mut modes = Vec::new();
    let mut offered = Vec::new();
    for description in device.formats(BufType::VIDEO_CAPTURE) {
        let fourcc = description?.pixel_format();
        let name = fourcc_name(fourcc);
        offered.push(name.clone());
        if !SERVED.contains(&name.as_str()) {
            continue;
        }
        let sizes: Vec<(u32, u32)> = match device.frame_sizes(fourcc)? {
            FrameSizes::Discrete(sizes) => sizes.iter().map(|s| (s.width(), s.height())).collect(),
            FrameSizes::Stepwise(range) | FrameSizes::Continuous(range) => vec![
                (range.min_width(), range.min_height()),
                (range.max_width(), range.max_height()),
            ],
        };
        for (width, height) in sizes {
            let rates: Vec<f64> = match device.frame_intervals(fourcc, width, height) {
                Ok(FrameIntervals::Discrete(list)) => {
                    list.iter().map(|i| fps_of(*i.fract())).collect()
                }
                Ok(FrameIntervals::Stepwise(range) | FrameIntervals::Continuous(range)) => {
                    vec![fps_of(*range.min()), fps_of(*range.max())]
                }
                // A device that does not list rates streams at its own.
                Err(_) => vec![0.0],
            };
            for fps in rates {
                let mode = Mode {
                    format: name.clone(),
                    width,
                    height,
                    fps,
                };
                if !modes.contains(&mode) {
                    modes.push(mode);
                }
            }
        }
    }
    Ok((modes, offered))
}

/// The mode the options ask for: the preferred format, then the largest size, then the
/// fastest rate, among those matching.
pub(super) fn choose(modes: &[Mode], options: &V4l2Options) -> Option<Mode> {
    let rank = |mode: &Mode| SERVED.iter().position(|f| *f == mode.format).unwrap_or(99);
    modes
        .iter()
        .filter(|m| {
            options
                .format
                .as_ref()
                .is_none_or(|f| f.eq_ignore_ascii_case(&m.format))
        })
        .filter(|m| options.width.is_none_or(|w| w == m.width))
        .filter(|m| options.height.is_none_or(|h| h == m.height))
        .filter(|m| options.fps.is_none_or(|f| (f - m.fps).abs() < 0.01))
        .min_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(
                    (u64::from(b.width) * u64::from(b.height))
                        .cmp(&(u64::from(a.width) * u64::from(a.height))),
                )
                .then(b.fps.total_cmp(&a.fps))
        })
        .cloned()
}

pub(super) fn wanted(options: &V4l2Options) -> String {
    let any = |value: Option<String>| value.unwrap_or_else(|| "any".to_owned());
    format!(
        "{} {}x{} at {} fps",
        any(options.format.clone()),
        any(options.width.map(|w| w.to_string())),
        any(options.height.map(|h| h.to_string())),
        any(options.fps.map(|f| f.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_trip_through_intervals() {
        assert_eq!(fps_of(Fract::new(1, 30)), 30.0);
        assert_eq!(fps_of(Fract::new(1001, 30000)), 29.97);
        assert_eq!(fps_of(fract_of_fps(15.0)), 15.0);
        assert_eq!(fps_of(Fract::new(0, 1)), 0.0);
    }
}
