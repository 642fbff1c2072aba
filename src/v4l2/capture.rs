//! The capture thread: streams while watched, reopens the device after an unplug, restarts on
//! a mode change; and what it shares with the properties' setters.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use linuxvideo::Device;
use linuxvideo::controls::Cid;
use linuxvideo::format::{PixFormat, PixelFormat as Fourcc};

use super::Mode;
use super::controls::Control;
use super::modes::{fourcc, fract_of_fps};
use crate::Property;
use crate::property::SetError;
use crate::stream::{FramePipeline, MjpegStream, PixelFormat, RawFrame};

/// How long a closed device waits between attempts to open it again.
const RETRY: Duration = Duration::from_millis(500);

/// What the capture thread and the properties' setters share.
pub(super) struct Shared {
    pub(super) path: PathBuf,
    pub(super) stream: MjpegStream,
    pub(super) mode: Property<Mode>,
    pub(super) connected: Property<bool>,
    pub(super) streaming: Property<bool>,
    pub(super) quality: u8,
    pub(super) idle: Duration,
    /// The device opened for controls (beside the one streaming); `None` while unplugged.
    pub(super) controls_device: Mutex<Option<Device>>,
    /// The controls, to set again after the device comes back.
    pub(super) controls: Vec<Control>,
    /// Bumped by each mode change: the capture thread restarts streaming.
    pub(super) generation: AtomicU64,
    pub(super) stop: AtomicBool,
}

impl Shared {
    /// Writes a control on the device (blocking).
    pub(super) fn write_control(&self, id: Cid, raw: i32) -> Result<(), SetError> {
        let mut device = self
            .controls_device
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(device) = device.as_mut() else {
            return Err(SetError::unavailable(
                "the camera is unplugged: the value was not set; set it again when the camera is back",
            ));
        };
        use rustix::io::Errno;
        device.write_control_raw(id, raw).map_err(|error| {
            let status = match error.raw_os_error() {
                Some(code)
                    if [Errno::ACCESS, Errno::BUSY]
                        .map(Errno::raw_os_error)
                        .contains(&code) =>
                {
                    axum::http::StatusCode::CONFLICT
                }
                Some(code)
                    if [Errno::RANGE, Errno::INVAL]
                        .map(Errno::raw_os_error)
                        .contains(&code) =>
                {
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            };
            SetError::new(status, format!("the camera refused the value: {error}"))
        })
    }

    /// The device went away: closes it and says so.
    fn lose(&self, reason: &str) {
        let _ = self.streaming.publish(false);
        let _ = self.connected.publish(false);
        tracing::warn!(device = %self.path.display(), reason, "the camera is gone; trying again every {} ms", RETRY.as_millis());
        self.controls_device
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Opens the device for controls again after it came back, and sets every control to the
    /// value its property holds (a replugged camera starts from its defaults).
    fn restore_controls(&self) -> io::Result<()> {
        let mut device = Device::open(&self.path)?;
        for control in self.controls.iter().filter(|c| !c.desc.read_only) {
            if let Err(error) = device.write_control_raw(control.desc.id, control.value.raw()) {
                tracing::debug!(control = %control.desc.name, %error, "control not restored");
            }
        }
        *self
            .controls_device
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(device);
        Ok(())
    }
}

/// The capture thread: streams while watched, reopens the device after an unplug, restarts on
/// a mode change, ends when the camera stops.
pub(super) fn capture(shared: &Shared) {
    let mut lost = false;
    let mut checked = Instant::now();
    while !shared.stopping() {
        if lost {
            if let Err(error) = shared.restore_controls() {
                tracing::debug!(%error, "the camera is still away");
                std::thread::sleep(RETRY);
                continue;
            }
            lost = false;
            let _ = shared.connected.publish(true);
            tracing::info!(device = %shared.path.display(), "the camera is back");
        }
        if !shared.stream.is_watched() {
            // Idle: notice an unplug (the device file goes away) without opening the device.
            if checked.elapsed() >= RETRY {
                checked = Instant::now();
                if !shared.path.exists() {
                    shared.lose("the device file is gone");
                    lost = true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if let Err(error) = stream_until_idle(shared) {
            shared.lose(&error.to_string());
            lost = true;
            std::thread::sleep(RETRY);
        }
    }
    let _ = shared.streaming.publish(false);
}

/// Streams the current mode until nobody has watched for `idle`, the mode changes or the
/// camera stops (`Ok`), or the device fails (`Err`).
fn stream_until_idle(shared: &Shared) -> io::Result<()> {
    let generation = shared.generation.load(Ordering::SeqCst);
    let mode = shared.mode.get();
    let fourcc = fourcc(&mode.format);
    let device = Device::open(&shared.path)?;
    let capture = device.video_capture(PixFormat::new(mode.width, mode.height, fourcc))?;
    let format = capture.format();
    let (width, height, stride) = (format.width(), format.height(), format.bytes_per_line());
    let pixel = pipeline_format(format.pixel_format());
    if mode.fps > 0.0 {
        // A device that cannot set its rate streams at its own.
        let _ = capture.set_frame_interval(fract_of_fps(mode.fps));
    }
    let pipeline = pixel.map(|_| {
        FramePipeline::builder(&shared.stream)
            .quality(shared.quality)
            .build()
    });
    let mut stream = capture.into_stream()?;
    let _ = shared.streaming.publish(true);
    tracing::info!(device = %shared.path.display(), %mode, "streaming");
    let mut last_watched = Instant::now();
    loop {
        if shared.stopping() || shared.generation.load(Ordering::SeqCst) != generation {
            break;
        }
        if shared.stream.is_watched() {
            last_watched = Instant::now();
        } else if last_watched.elapsed() >= shared.idle {
            tracing::debug!(device = %shared.path.display(), "nobody watches: streaming stops");
            break;
        }
        if !readable(&stream)? {
            // No frame in the wait: look at the stop flag and the viewers again.
            continue;
        }
        stream.dequeue(|buffer| {
            if buffer.is_error() {
                return Ok(());
            }
            let data: &[u8] = &buffer;
            match (&pipeline, pixel) {
                (Some(pipeline), Some(pixel)) => {
                    if let Some(frame) = raw_frame(pixel, width, height, stride, data) {
                        pipeline.push(frame);
                    }
                }
                _ => {
                    // MJPEG and JPEG: the device's bytes, as they are.
                    let _ = shared.stream.add_frame(data);
                }
            }
            Ok(())
        })?;
    }
    drop(stream);
    let _ = shared.streaming.publish(false);
    Ok(())
}

/// Waits up to 200 ms for a frame, so that a device that stops sending does not hold the
/// thread past a stop or a mode change.
fn readable(stream: &impl AsFd) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(stream, PollFlags::IN)];
    let wait = Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    match poll(&mut fds, Some(&wait)) {
        Err(rustix::io::Errno::INTR) | Ok(0) => Ok(false),
        Err(error) => Err(error.into()),
        Ok(_)
            if fds[0]
                .revents()
                .intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) =>
        {
            Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the device hung up",
            ))
        }
        Ok(_) => Ok(true),
    }
}

/// A raw frame from a buffer whose rows may be padded to `stride` bytes.
fn raw_frame(
    pixel: PixelFormat,
    width: u32,
    height: u32,
    stride: u32,
    data: &[u8],
) -> Option<RawFrame> {
    let (w, h) = (u16::try_from(width).ok()?, u16::try_from(height).ok()?);
    let row = width as usize * pixel.bytes_per_pixel_pair() / 2;
    let stride = (stride as usize).max(row);
    let rows = height as usize;
    if data.len() < stride * (rows - 1) + row {
        return None;
    }
    let packed = if stride == row {
        bytes::Bytes::copy_from_slice(&data[..row * rows])
    } else {
        let mut packed = Vec::with_capacity(row * rows);
        for line in data.chunks(stride).take(rows) {
            packed.extend_from_slice(&line[..row]);
        }
        packed.into()
    };
    RawFrame::new(pixel, w, h, packed).ok()
}

/// The pipeline's format for a raw device format; `None` for JPEG, served as it comes.
fn pipeline_format(format: Fourcc) -> Option<PixelFormat> {
    match &format.as_fourcc() {
        b"YUYV" => Some(PixelFormat::Yuyv),
        b"GREY" => Some(PixelFormat::Gray8),
        b"RGB3" => Some(PixelFormat::Rgb8),
        b"BGR3" => Some(PixelFormat::Bgr8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_rows_are_packed() {
        // 2x2 grey with rows padded to 4 bytes.
        let data = [1, 2, 0, 0, 3, 4, 0, 0];
        let frame = raw_frame(PixelFormat::Gray8, 2, 2, 4, &data).unwrap();
        assert_eq!(frame.data(), &[1, 2, 3, 4]);
        assert!(raw_frame(PixelFormat::Gray8, 2, 2, 4, &data[..5]).is_none());
    }
}
