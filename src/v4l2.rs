//! A ready camera Thing for USB webcams and capture cards on Linux (feature `v4l2`).
//!
//! [`V4l2Camera`] opens a Video4Linux2 device by path and serves it as one live MJPEG stream:
//!
//! - **Modes.** Every format, resolution and frame rate the device offers that the camera can
//!   serve is listed in the `modes` property; `mode` is the one in use, and writing one of
//!   `modes` to it switches. MJPEG (and JPEG) from the device goes to the stream as it comes,
//!   with no decode and no re-encode; YUYV, GREY, RGB3 and BGR3 go through the
//!   [frame pipeline](crate::stream::FramePipeline), encoded on worker threads only while
//!   watched.
//! - **Controls.** The device's V4L2 controls (exposure, gain, brightness, white balance, ...)
//!   are found when the camera is made and served as properties of their own, named after the
//!   driver's names (`Brightness` is `brightness`, `Exposure Time, Absolute` is
//!   `exposure_time_absolute`), with the device's range and step as `minimum`, `maximum` and
//!   `multipleOf`, its default in the description, and menus' entries listed. A write goes to
//!   the device; a value the device refuses is answered with its reason.
//! - **Only while watched.** The device streams while a viewer, a recording or a capture needs
//!   frames, and stops `idle_seconds` after the last one leaves (the sensor rests, the USB bus
//!   is free, the camera's light goes off); `streaming` says which.
//! - **Unplugged and plugged back.** A device that disappears sets `connected` to false; the
//!   camera tries again every half second and, when the device is back, reopens it, sets the
//!   mode and the controls' values again and goes on streaming. No restart.
//! - **Stopping** the server (`on_stop`) stops streaming and closes the device.
//!
//! ```no_run
//! # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
//! use labthings::v4l2::{V4l2Camera, V4l2Options};
//!
//! let camera = V4l2Camera::open(V4l2Options::new("/dev/video0"))?;
//! let server = labthings::ThingServer::builder().add_thing("camera", camera).build()?;
//! server.serve("127.0.0.1:5000".parse()?).await?;
//! # Ok(()) }
//! ```
//!
//! In a configuration file, register it with [`V4l2Camera::register`] and give its options as
//! `kwargs`: `{"class": "v4l2_camera", "kwargs": {"device": "/dev/video0", "width": 1280}}`.
//! `cargo run --example webcam --features v4l2 -- --device /dev/video0` serves one.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use linuxvideo::controls::{Cid, ControlDesc, ControlFlags, CtrlType};
use linuxvideo::format::{FrameIntervals, FrameSizes, PixFormat, PixelFormat as Fourcc};
use linuxvideo::{BufType, Device, Fract};
use serde::Deserialize;

use crate::property::{DynProperty, SetError};
use crate::stream::{FramePipeline, MjpegStream, PixelFormat, RawFrame};
use crate::thing::PropertyDescriptor;
use crate::{Property, Thing};

/// How long a closed device waits between attempts to open it again.
const RETRY: Duration = Duration::from_millis(500);

/// The fourcc codes the camera serves, in the order it prefers them.
const SERVED: [&str; 6] = ["MJPG", "JPEG", "YUYV", "GREY", "RGB3", "BGR3"];

/// One way the device can stream: a format, a size and a frame rate.
#[crate::data]
#[derive(Debug, Clone, PartialEq)]
pub struct Mode {
    /// The V4L2 pixel format's four-character code: `MJPG`, `JPEG`, `YUYV`, `GREY`, `RGB3` or
    /// `BGR3`.
    pub format: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}x{} at {} fps",
            self.format, self.width, self.height, self.fps
        )
    }
}

/// How to open a [`V4l2Camera`]; every field but `device` is optional. These are also the
/// `kwargs` of `v4l2_camera` in a configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct V4l2Options {
    /// The device file, such as `/dev/video0` (or a `/dev/v4l/by-id/...` link, which keeps
    /// naming the same camera when others are plugged in).
    pub device: PathBuf,
    /// The pixel format to use (`MJPG`, `YUYV`, ...); default: MJPEG if the device has it.
    #[serde(default)]
    pub format: Option<String>,
    /// The width to use; default: the largest.
    #[serde(default)]
    pub width: Option<u32>,
    /// The height to use; default: the largest with the width.
    #[serde(default)]
    pub height: Option<u32>,
    /// The frame rate to use; default: the fastest.
    #[serde(default)]
    pub fps: Option<f64>,
    /// JPEG quality (1-100) for formats the pipeline encodes; default 85.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Seconds the device keeps streaming after the last viewer leaves; default 5.
    #[serde(default = "default_idle")]
    pub idle_seconds: f64,
}

fn default_quality() -> u8 {
    85
}

fn default_idle() -> f64 {
    5.0
}

impl V4l2Options {
    /// The defaults, for `device`.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        Self {
            device: device.into(),
            format: None,
            width: None,
            height: None,
            fps: None,
            quality: default_quality(),
            idle_seconds: default_idle(),
        }
    }

    /// Asks for one mode: any of the four may be `None` for "whichever is best".
    #[must_use]
    pub fn mode(
        mut self,
        format: Option<&str>,
        width: Option<u32>,
        height: Option<u32>,
        fps: Option<f64>,
    ) -> Self {
        self.format = format.map(str::to_owned);
        self.width = width;
        self.height = height;
        self.fps = fps;
        self
    }
}

/// Why a camera could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum V4l2Error {
    /// The device could not be opened or queried.
    #[error("cannot open the camera {device}: {source}")]
    Open {
        /// The device file.
        device: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The device offers no mode the camera can serve.
    #[error(
        "the camera {device} offers no format this camera serves (it has {offered}; served are \
         {})",
        SERVED.join(", ")
    )]
    NoServedFormat {
        /// The device file.
        device: PathBuf,
        /// The formats it offers.
        offered: String,
    },
    /// No mode matches the options.
    #[error("the camera {device} has no mode {wanted}; it has: {available}")]
    NoSuchMode {
        /// The device file.
        device: PathBuf,
        /// What the options asked for.
        wanted: String,
        /// What it has.
        available: String,
    },
}

/// A USB webcam or capture card, through Video4Linux2. See the [module documentation](self).
#[derive(Thing)]
#[thing(
    title = "Camera (V4L2)",
    on_start = Self::start_streaming,
    on_stop = Self::stop_streaming,
    instance_properties = Self::control_properties
)]
pub struct V4l2Camera {
    /// The device file.
    #[property(read_only)]
    pub device: Property<String>,
    /// The device's name, as its driver gives it.
    #[property(read_only)]
    pub card: Property<String>,
    /// Whether the device is there: false while it is unplugged (the camera keeps trying to
    /// open it again).
    #[property(read_only)]
    pub connected: Property<bool>,
    /// Whether the device is streaming now: it streams while someone watches, and stops a few
    /// seconds after the last viewer leaves.
    #[property(read_only)]
    pub streaming: Property<bool>,
    /// Every mode the device offers that the camera serves.
    #[property(read_only)]
    pub modes: Property<Vec<Mode>>,
    /// The mode in use; write one of `modes` to switch.
    #[property]
    pub mode: Property<Mode>,
    /// The live image: the device's own JPEGs for MJPEG modes, encoded by the frame pipeline
    /// (only while watched) for the others.
    #[stream(record, ringbuffer = 60)]
    pub mjpeg_stream: MjpegStream,
    controls: Vec<Control>,
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// What the capture thread and the properties' setters share.
struct Shared {
    path: PathBuf,
    stream: MjpegStream,
    mode: Property<Mode>,
    connected: Property<bool>,
    streaming: Property<bool>,
    quality: u8,
    idle: Duration,
    /// The device opened for controls (beside the one streaming); `None` while unplugged.
    controls_device: Mutex<Option<Device>>,
    /// The controls, to set again after the device comes back.
    controls: Vec<Control>,
    /// Bumped by each mode change: the capture thread restarts streaming.
    generation: AtomicU64,
    stop: AtomicBool,
}

/// One V4L2 control, served as a property.
#[derive(Clone)]
struct Control {
    desc: ControlInfo,
    value: ControlValue,
}

#[derive(Clone)]
struct ControlInfo {
    id: Cid,
    name: String,
    label: String,
    kind: CtrlType,
    minimum: i32,
    maximum: i32,
    step: i32,
    default: i32,
    read_only: bool,
    menu: Vec<(u32, String)>,
}

#[derive(Clone)]
enum ControlValue {
    Integer(Property<i64>),
    Boolean(Property<bool>),
}

impl ControlValue {
    fn property(&self) -> &dyn DynProperty {
        match self {
            Self::Integer(property) => property,
            Self::Boolean(property) => property,
        }
    }

    fn raw(&self) -> i32 {
        match self {
            Self::Integer(property) => i32::try_from(property.get()).unwrap_or_default(),
            Self::Boolean(property) => i32::from(property.get()),
        }
    }
}

impl V4l2Camera {
    /// Opens the device, lists its modes and controls, and chooses a mode; streaming starts with
    /// the server (and only while someone watches).
    ///
    /// # Errors
    ///
    /// [`V4l2Error`] if the device cannot be opened, serves no format this camera can, or has
    /// no mode matching the options.
    pub fn open(options: V4l2Options) -> Result<Self, V4l2Error> {
        let path = options.device.clone();
        let open_error = |source| V4l2Error::Open {
            device: path.clone(),
            source,
        };
        let device = Device::open(&path).map_err(open_error)?;
        let card = device.capabilities().map_err(open_error)?.card().to_owned();
        let (modes, offered) = list_modes(&device).map_err(open_error)?;
        if modes.is_empty() {
            return Err(V4l2Error::NoServedFormat {
                device: path,
                offered: offered.join(", "),
            });
        }
        let mode = choose(&modes, &options).ok_or_else(|| V4l2Error::NoSuchMode {
            device: path.clone(),
            wanted: wanted(&options),
            available: modes
                .iter()
                .map(Mode::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        let infos = list_controls(&device).map_err(open_error)?;
        let mjpeg_stream = MjpegStream::new();
        let mode_property = Property::new(mode);
        let connected = Property::new(true);
        let streaming = Property::new(false);
        // The controls' setters reach the device through `shared`, made after them.
        let shared_slot: Arc<std::sync::OnceLock<std::sync::Weak<Shared>>> = Arc::default();
        let controls: Vec<Control> = infos
            .into_iter()
            .map(|info| {
                let current = device.read_control_raw(info.id).unwrap_or(info.default);
                let slot = shared_slot.clone();
                let id = info.id;
                let write = move |raw: i32| {
                    let slot = slot.clone();
                    async move {
                        let shared = slot
                            .get()
                            .and_then(std::sync::Weak::upgrade)
                            .ok_or_else(|| SetError::unavailable("the camera is shutting down"))?;
                        tokio::task::spawn_blocking(move || shared.write_control(id, raw))
                            .await
                            .map_err(|_| SetError::unavailable("the control write failed"))?
                    }
                };
                let value = match info.kind {
                    CtrlType::BOOLEAN => ControlValue::Boolean(
                        Property::new(current != 0)
                            .with_setter(move |value: bool| write(i32::from(value))),
                    ),
                    _ => ControlValue::Integer(Property::new(i64::from(current)).with_setter(
                        move |value: i64| {
                            let raw = i32::try_from(value).unwrap_or(i32::MAX);
                            write(raw)
                        },
                    )),
                };
                Control { desc: info, value }
            })
            .collect();
        let shared = Arc::new(Shared {
            path: path.clone(),
            stream: mjpeg_stream.clone(),
            mode: mode_property.clone(),
            connected: connected.clone(),
            streaming: streaming.clone(),
            quality: options.quality.clamp(1, 100),
            idle: Duration::from_secs_f64(options.idle_seconds.clamp(0.0, 3600.0)),
            controls_device: Mutex::new(Some(device)),
            controls: controls.clone(),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let _ = shared_slot.set(Arc::downgrade(&shared));
        let served = modes.clone();
        let switch = Arc::downgrade(&shared);
        let mode_property = mode_property.with_setter(move |wanted: Mode| {
            let found = served.contains(&wanted);
            let switch = switch.clone();
            let served: Vec<String> = served.iter().map(Mode::to_string).collect();
            async move {
                if !found {
                    return Err(SetError::invalid(format!(
                        "the camera has no mode {wanted}; it has: {}",
                        served.join("; ")
                    )));
                }
                if let Some(shared) = switch.upgrade() {
                    shared.generation.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            }
        });
        Ok(Self {
            device: Property::new(path.display().to_string()),
            card: Property::new(card),
            connected,
            streaming,
            modes: Property::new(modes),
            mode: mode_property,
            mjpeg_stream,
            controls,
            shared,
            worker: Mutex::new(None),
        })
    }

    /// Registers the camera as `v4l2_camera` for configuration files; its `kwargs` are
    /// [`V4l2Options`].
    pub fn register(registry: crate::ThingRegistry) -> crate::ThingRegistry {
        registry.register("v4l2_camera", |options: V4l2Options, _| {
            Ok(Self::open(options)?)
        })
    }

    /// The device's controls, as properties (`instance_properties`).
    fn control_properties(&self) -> Vec<PropertyDescriptor<Self>> {
        let mut taken: HashSet<&str> = Self::descriptor()
            .properties
            .iter()
            .map(|property| property.name)
            .chain(["mjpeg_stream", "record_mjpeg_stream"])
            .collect();
        let mut properties = Vec::new();
        for (index, control) in self.controls.iter().enumerate() {
            let info = &control.desc;
            let mut name = info.name.clone();
            while taken.contains(name.as_str()) || crate::layout::invalid_segment(&name).is_some() {
                name.push_str("_control");
            }
            let schema = match control.value {
                ControlValue::Boolean(_) => crate::schema::json_schema_of::<bool>,
                ControlValue::Integer(_) => crate::schema::json_schema_of::<i64>,
            };
            let mut property = PropertyDescriptor::dynamic(name, schema, move |camera: &Self| {
                camera.controls[index].value.property()
            });
            taken.insert(property.name);
            property.title = Some(Box::leak(info.label.clone().into_boxed_str()));
            property.description = Some(Box::leak(describe(info).into_boxed_str()));
            property.read_only = info.read_only;
            if !matches!(control.value, ControlValue::Boolean(_)) {
                property.constraints.minimum = Some(f64::from(info.minimum));
                property.constraints.maximum = Some(f64::from(info.maximum));
                if info.step > 1 && info.minimum % info.step == 0 {
                    property.constraints.multiple_of = Some(f64::from(info.step));
                }
            }
            properties.push(property);
        }
        properties
    }

    async fn start_streaming(&self) -> Result<(), io::Error> {
        let shared = self.shared.clone();
        let worker = std::thread::Builder::new()
            .name("v4l2-capture".into())
            .spawn(move || capture(&shared))?;
        *self.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some(worker);
        Ok(())
    }

    async fn stop_streaming(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(worker) = worker {
                let _ = worker.join();
            }
            // Closes the device.
            shared
                .controls_device
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        })
        .await;
    }
}

impl Shared {
    /// Writes a control on the device (blocking).
    fn write_control(&self, id: Cid, raw: i32) -> Result<(), SetError> {
        let mut device = self
            .controls_device
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(device) = device.as_mut() else {
            return Err(SetError::unavailable(
                "the camera is unplugged; the value is kept for when it is back",
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
fn capture(shared: &Shared) {
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

fn fourcc(format: &str) -> Fourcc {
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

fn fract_of_fps(fps: f64) -> Fract {
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
fn list_modes(device: &Device) -> io::Result<(Vec<Mode>, Vec<String>)> {
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
fn choose(modes: &[Mode], options: &V4l2Options) -> Option<Mode> {
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

fn wanted(options: &V4l2Options) -> String {
    let any = |value: Option<String>| value.unwrap_or_else(|| "any".to_owned());
    format!(
        "{} {}x{} at {} fps",
        any(options.format.clone()),
        any(options.width.map(|w| w.to_string())),
        any(options.height.map(|h| h.to_string())),
        any(options.fps.map(|f| f.to_string())),
    )
}

/// The device's integer, boolean and menu controls (others, such as buttons and class
/// headings, are not properties).
fn list_controls(device: &Device) -> io::Result<Vec<ControlInfo>> {
    let served = [
        CtrlType::INTEGER,
        CtrlType::BOOLEAN,
        CtrlType::MENU,
        CtrlType::INTEGER_MENU,
    ];
    let mut controls = Vec::new();
    // linuxvideo 0.3 starts its walk at V4L2_CID_BASE with V4L2_CTRL_FLAG_NEXT_CTRL, which asks
    // for the controls *after* it: the first user control (Brightness, whose id is the base)
    // is never listed. Ask for it by its id.
    if let Ok(brightness) = query_control(device, V4L2_CID_BASE) {
        if brightness.flags & V4L2_CTRL_FLAG_DISABLED == 0 && brightness.kind == CtrlType::INTEGER {
            controls.push(brightness.info(Cid::BRIGHTNESS));
        }
    }
    for description in device.controls() {
        let description = description?;
        let kind = description.control_type();
        if !served.contains(&kind) || description.id() == Cid::BRIGHTNESS {
            continue;
        }
        let menu = if kind == CtrlType::MENU {
            device
                .enumerate_menu(&description)
                .filter_map(Result::ok)
                .map(|item| (item.index(), item.name().to_owned()))
                .collect()
        } else {
            Vec::new()
        };
        controls.push(info_of(&description, menu));
    }
    Ok(controls)
}

const V4L2_CID_BASE: u32 = 0x0098_0900;
const V4L2_CTRL_FLAG_DISABLED: u32 = 0x0001;
const V4L2_CTRL_FLAG_READ_ONLY: u32 = 0x0004;

/// `struct v4l2_queryctrl` (linux/videodev2.h).
#[repr(C)]
struct QueryCtrl {
    id: u32,
    kind: CtrlType,
    name: [u8; 32],
    minimum: i32,
    maximum: i32,
    step: i32,
    default_value: i32,
    flags: u32,
    reserved: [u32; 2],
}

impl QueryCtrl {
    fn info(&self, id: Cid) -> ControlInfo {
        let end = self.name.iter().position(|b| *b == 0).unwrap_or(32);
        let label = String::from_utf8_lossy(&self.name[..end]).into_owned();
        ControlInfo {
            id,
            name: property_name(&label),
            label,
            kind: self.kind,
            minimum: self.minimum,
            maximum: self.maximum,
            step: self.step.max(1),
            default: self.default_value,
            read_only: self.flags & V4L2_CTRL_FLAG_READ_ONLY != 0,
            menu: Vec::new(),
        }
    }
}

/// `VIDIOC_QUERYCTRL` for exactly `id`: the crate's only `unsafe`.
#[allow(unsafe_code)]
fn query_control(device: &Device, id: u32) -> io::Result<QueryCtrl> {
    use std::os::fd::AsRawFd;
    // _IOWR('V', 36, struct v4l2_queryctrl): read and write, 68 bytes, type 'V', number 36.
    const VIDIOC_QUERYCTRL: u32 = (3 << 30) | (68 << 16) | ((b'V' as u32) << 8) | 36;
    const _: () = assert!(std::mem::size_of::<QueryCtrl>() == 68);
    let mut query = QueryCtrl {
        id,
        kind: CtrlType::INTEGER,
        name: [0; 32],
        minimum: 0,
        maximum: 0,
        step: 0,
        default_value: 0,
        flags: 0,
        reserved: [0; 2],
    };
    // SAFETY: the request's size and direction are those of `QueryCtrl`, a `repr(C)` copy of
    // the kernel's struct (size checked above); the pointer is valid and exclusive for the
    // call; the file descriptor is the open device's.
    let result = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            VIDIOC_QUERYCTRL as _,
            std::ptr::from_mut(&mut query),
        )
    };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(query)
}

fn info_of(description: &ControlDesc, menu: Vec<(u32, String)>) -> ControlInfo {
    ControlInfo {
        id: description.id(),
        name: property_name(description.name()),
        label: description.name().to_owned(),
        kind: description.control_type(),
        minimum: description.minimum(),
        maximum: description.maximum(),
        step: description.step().max(1),
        default: description.default_value(),
        read_only: description.flags().contains(ControlFlags::READ_ONLY),
        menu,
    }
}

/// `Exposure Time, Absolute` → `exposure_time_absolute`.
fn property_name(label: &str) -> String {
    let mut name = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
    }
    while name.ends_with('_') {
        name.pop();
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "control_");
    }
    name
}

fn describe(info: &ControlInfo) -> String {
    let kind = match info.kind {
        CtrlType::BOOLEAN => "on or off",
        CtrlType::MENU | CtrlType::INTEGER_MENU => "a menu",
        _ => "an integer",
    };
    let mut text = format!(
        "The device's control \"{}\" ({kind}; default {}).",
        info.label, info.default
    );
    if !info.menu.is_empty() {
        let items: Vec<String> = info
            .menu
            .iter()
            .map(|(index, name)| format!("{index}: {name}"))
            .collect();
        text.push_str(&format!(" Values: {}.", items.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_names_become_url_segments() {
        assert_eq!(property_name("Brightness"), "brightness");
        assert_eq!(
            property_name("Exposure Time, Absolute"),
            "exposure_time_absolute"
        );
        assert_eq!(property_name("White Balance (Auto)"), "white_balance_auto");
        assert_eq!(property_name("3D Noise"), "control_3d_noise");
        assert_eq!(property_name("!!"), "control_");
    }

    #[test]
    fn rates_round_trip_through_intervals() {
        assert_eq!(fps_of(Fract::new(1, 30)), 30.0);
        assert_eq!(fps_of(Fract::new(1001, 30000)), 29.97);
        assert_eq!(fps_of(fract_of_fps(15.0)), 15.0);
        assert_eq!(fps_of(Fract::new(0, 1)), 0.0);
    }

    #[test]
    fn the_preferred_mode_is_mjpeg_largest_fastest() {
        let mode = |format: &str, width, height, fps| Mode {
            format: format.into(),
            width,
            height,
            fps,
        };
        let modes = [
            mode("YUYV", 1920, 1080, 5.0),
            mode("MJPG", 640, 480, 30.0),
            mode("MJPG", 1280, 720, 15.0),
            mode("MJPG", 1280, 720, 30.0),
        ];
        let any = V4l2Options::new("/dev/null");
        assert_eq!(choose(&modes, &any), Some(mode("MJPG", 1280, 720, 30.0)));
        let yuyv = V4l2Options::new("/dev/null").mode(Some("yuyv"), None, None, None);
        assert_eq!(choose(&modes, &yuyv), Some(mode("YUYV", 1920, 1080, 5.0)));
        let small = V4l2Options::new("/dev/null").mode(None, Some(640), None, None);
        assert_eq!(choose(&modes, &small), Some(mode("MJPG", 640, 480, 30.0)));
        let none = V4l2Options::new("/dev/null").mode(None, Some(800), None, None);
        assert_eq!(choose(&modes, &none), None);
    }

    #[test]
    fn padded_rows_are_packed() {
        // 2x2 grey with rows padded to 4 bytes.
        let data = [1, 2, 0, 0, 3, 4, 0, 0];
        let frame = raw_frame(PixelFormat::Gray8, 2, 2, 4, &data).unwrap();
        assert_eq!(frame.data(), &[1, 2, 3, 4]);
        assert!(raw_frame(PixelFormat::Gray8, 2, 2, 4, &data[..5]).is_none());
    }
}
