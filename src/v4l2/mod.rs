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

mod capture;
mod controls;
mod modes;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use linuxvideo::Device;
use linuxvideo::controls::CtrlType;
use serde::Deserialize;

use crate::property::SetError;
use crate::stream::MjpegStream;
use crate::thing::PropertyDescriptor;
use crate::worker::{Worker, free_name, taken_names};
use crate::{Property, Thing};
use capture::Shared;
use controls::{Control, ControlValue, describe, list_controls};
use modes::{SERVED, choose, list_modes, wanted};

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

/// A USB webcam or capture card, through Video4Linux2 (see the module documentation).
#[derive(Thing)]
#[thing(
    title = "Camera (V4L2)",
    description = "A USB webcam or capture card, through Video4Linux2: its modes and controls are properties.",
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
    /// Whether the device is plugged in.
    ///
    /// False while it is unplugged: the camera keeps trying to open it again.
    #[property(read_only)]
    pub connected: Property<bool>,
    /// Whether the device is streaming now.
    ///
    /// It streams while someone watches, and stops a few seconds after the last viewer leaves.
    #[property(read_only)]
    pub streaming: Property<bool>,
    /// Every mode the device offers that the camera serves.
    #[property(read_only)]
    pub modes: Property<Vec<Mode>>,
    /// The mode in use.
    ///
    /// Write one of `modes` to switch.
    #[property]
    pub mode: Property<Mode>,
    /// The live image.
    ///
    /// The device's own JPEGs in MJPEG modes; in the others, frames encoded by the frame
    /// pipeline (only while watched).
    #[stream(record, ringbuffer = 60)]
    pub mjpeg_stream: MjpegStream,
    controls: Vec<Control>,
    shared: Arc<Shared>,
    worker: Worker,
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
            // NaN (possible from Rust, not from JSON) counts as the default.
            idle: Duration::from_secs_f64(if options.idle_seconds.is_nan() {
                default_idle()
            } else {
                options.idle_seconds.clamp(0.0, 3600.0)
            }),
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
            worker: Worker::new(),
        })
    }

    /// Registers the camera as `v4l2_camera` for configuration files; its `kwargs` are
    /// [`V4l2Options`].
    pub fn register(registry: crate::server::ThingRegistry) -> crate::server::ThingRegistry {
        registry.register("v4l2_camera", |options: V4l2Options, _| {
            Ok(Self::open(options)?)
        })
    }

    /// The device's controls, as properties (`instance_properties`).
    fn control_properties(&self) -> Vec<PropertyDescriptor<Self>> {
        let mut taken = taken_names::<Self>(&["mjpeg_stream", "record_mjpeg_stream"]);
        let mut properties = Vec::new();
        for (index, control) in self.controls.iter().enumerate() {
            let info = &control.desc;
            let name = free_name(&taken, &info.name, "_control");
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
        self.worker
            .start("v4l2-capture", move || capture::capture(&shared))
    }

    async fn stop_streaming(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let shared = self.shared.clone();
        self.worker
            .join_then(move || {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
