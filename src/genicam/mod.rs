//! A ready camera Thing for GenICam cameras on Linux (feature `aravis`): GigE Vision and USB3
//! Vision cameras from Basler, FLIR/Teledyne, Allied Vision, IDS and others, through
//! [Aravis](https://github.com/AravisProject/aravis), the open-source GenICam library.
//!
//! [`GenicamCamera`] opens a camera by id, by IP address, or the first one found, and serves
//! it as one live MJPEG stream:
//!
//! - **Features are properties.** The usual ones when the camera has them: `pixel_format`,
//!   `exposure_time`, `gain`, the region of interest (`width`, `height`, `offset_x`,
//!   `offset_y`), `binning_horizontal` and `binning_vertical`, `acquisition_frame_rate`,
//!   `trigger_mode` and `trigger_source`; and any other feature named in
//!   [`GenicamOptions::features`], as `snake_case` of its GenICam name. Each carries what the
//!   camera's node map says: its range and increment as `minimum`, `maximum` and
//!   `multipleOf`, an enumeration's entries, its unit, and `readOnly`. A value out of range
//!   gets 422; a write the camera refuses gets 409 with the camera's reason; a write while
//!   the camera is away gets 503. Features that change the image's layout (pixel format,
//!   size, offsets, binning) are written with acquisition paused, and acquisition goes on
//!   with buffers of the new size. The ranges in the Thing Description are the ones read
//!   when the camera was opened; the camera checks its current ones at each write.
//! - **Frames.** Mono8, Mono10/12/14/16 (16-bit words), Mono10p, Mono12p, Mono10Packed and
//!   Mono12Packed (unpacked), RGB8, BGR8 and 8-bit Bayer mosaics (demosaiced by the
//!   [frame pipeline](crate::stream::FramePipeline)) are served. The stream shows more than
//!   8 bits through `display_range` (default: the format's whole range) or `auto_contrast`;
//!   `capture_array` keeps the full depth (`.npy` or TIFF, uint16). Frames carry the camera's
//!   timestamp mapped to the wall clock, and its frame id (`last_frame_id`). Incomplete
//!   buffers are counted (`incomplete_frames`, and `/metrics`) and never shown.
//! - **Only while needed.** The camera acquires while a viewer, a recording or a capture
//!   needs frames, and stops `idle_seconds` after the last one leaves; `acquiring` says which.
//! - **Triggers.** With `trigger_mode` `On` and `trigger_source` `Software`, the
//!   `software_trigger` action makes exactly one frame, and `capture` and `capture_array`
//!   fire the trigger themselves. With a hardware source (`Line0`, ...), the camera makes a
//!   frame at each edge on that input, and `capture` waits for the next one.
//! - **Unplugged and back.** A camera that stops answering sets `connected` to false; writes
//!   get 503. The camera is opened again every half second and, when it is back, every
//!   feature is set to its property's value and acquisition goes on. No restart.
//! - **Stopping** the server (`on_stop`) stops acquisition and releases the camera.
//!
//! ```no_run
//! # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
//! use labthings::genicam::{GenicamCamera, GenicamOptions};
//!
//! // The first camera found; `GenicamOptions::device("192.168.1.20")` for one by address.
//! let camera = GenicamCamera::open(GenicamOptions::default())?;
//! let server = labthings::ThingServer::builder().add_thing("camera", camera).build()?;
//! server.serve("127.0.0.1:5000".parse()?).await?;
//! # Ok(()) }
//! ```
//!
//! In a configuration file, register it with [`GenicamCamera::register`] and give its options
//! as `kwargs`: `{"class": "genicam_camera", "kwargs": {"device": "192.168.1.20"}}`.
//! `cargo run --example genicam --features aravis -- --fake` serves Aravis's fake camera, no
//! hardware needed. `arv-tool-0.8` (Debian's `aravis-tools`) lists the cameras it sees.

mod acquire;
pub(crate) mod counters;
mod features;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use aravis::prelude::*;
use serde::Deserialize;

use crate::property::SetError;
use crate::stream::MjpegStream;
use crate::thing::PropertyDescriptor;
use crate::worker::{Worker, free_name, taken_names};
use crate::{Blob, NdArray, Property, Thing, thing_actions};
use acquire::{Feature, Pixels, Shared};
use features::{FeatureValue, Kind, Value};

/// How to open a [`GenicamCamera`]; every field is optional. These are also the `kwargs` of
/// `genicam_camera` in a configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GenicamOptions {
    /// Which camera: its id as Aravis lists it (`Basler-acA1920-40gm-21234567`), its IP
    /// address (`192.168.1.20`), or none for the first camera found.
    #[serde(default)]
    pub device: Option<String>,
    /// Aravis's fake camera, in this process: no hardware (512x512 Mono8 by default, a
    /// moving diagonal ramp). For trying things out, and for tests.
    #[serde(default)]
    pub fake: bool,
    /// More GenICam features to serve as properties, by their GenICam names
    /// (`["BlackLevel", "Gamma"]`); each becomes a property named in `snake_case`
    /// (`black_level`). A name the camera does not have is an error when the camera opens.
    #[serde(default)]
    pub features: Vec<String>,
    /// JPEG quality (1-100) of the stream; default 85.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Seconds the camera keeps acquiring after the last viewer leaves; default 5.
    #[serde(default = "default_idle")]
    pub idle_seconds: f64,
    /// Buffers Aravis fills in turn; default 8. More absorb longer pauses of this process.
    #[serde(default = "default_buffers")]
    pub buffers: usize,
}

fn default_quality() -> u8 {
    85
}

fn default_idle() -> f64 {
    5.0
}

fn default_buffers() -> usize {
    8
}

impl Default for GenicamOptions {
    fn default() -> Self {
        Self {
            device: None,
            fake: false,
            features: Vec::new(),
            quality: default_quality(),
            idle_seconds: default_idle(),
            buffers: default_buffers(),
        }
    }
}

impl GenicamOptions {
    /// The camera with this id or IP address.
    pub fn device(device: impl Into<String>) -> Self {
        Self {
            device: Some(device.into()),
            ..Self::default()
        }
    }

    /// Aravis's in-process fake camera (no hardware).
    pub fn fake() -> Self {
        Self {
            fake: true,
            ..Self::default()
        }
    }

    /// Serves these GenICam features as properties too.
    #[must_use]
    pub fn with_features<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.features.extend(names.into_iter().map(Into::into));
        self
    }

    /// Seconds the camera keeps acquiring after the last viewer leaves.
    #[must_use]
    pub fn idle_seconds(mut self, seconds: f64) -> Self {
        self.idle_seconds = seconds;
        self
    }
}

/// Which camera to open, again after it went away.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Fake,
    Id(String),
    First,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fake => f.write_str("the fake camera"),
            Self::Id(id) => f.write_str(id),
            Self::First => f.write_str("the first camera found"),
        }
    }
}

impl Source {
    /// Whether the camera is addressed on this machine's loopback (a fake GigE camera).
    fn is_loopback(&self) -> bool {
        match self {
            Self::Id(id) => id
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback()),
            _ => false,
        }
    }

    fn open(&self) -> Result<aravis::Camera, String> {
        match self {
            Self::Fake => {
                let interface =
                    aravis::FakeInterface::instance().ok_or("Aravis has no fake interface")?;
                interface.update_device_list();
                let id = interface
                    .device_id(0)
                    .ok_or("Aravis's fake interface lists no camera")?;
                let device = interface
                    .open_device(Some(&id))
                    .map_err(|error| error.message().to_owned())?;
                aravis::Camera::with_device(&device).map_err(|error| error.message().to_owned())
            }
            Self::Id(id) => {
                aravis::Camera::new(Some(id)).map_err(|error| error.message().to_owned())
            }
            Self::First => aravis::Camera::new(None).map_err(|error| {
                format!(
                    "{} (is a camera connected and on this network? `arv-tool-0.8` lists the cameras Aravis sees)",
                    error.message()
                )
            }),
        }
    }
}

/// Why a camera could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenicamError {
    /// The camera could not be opened.
    #[error("cannot open {camera}: {reason}")]
    Open {
        /// Which camera.
        camera: String,
        /// What Aravis said.
        reason: String,
    },
    /// A feature named in the options cannot be served.
    #[error("the feature {feature} cannot be served: {reason}")]
    Feature {
        /// The GenICam name.
        feature: String,
        /// Why.
        reason: String,
    },
}

/// A frame made by a software trigger.
#[crate::data]
#[derive(Debug, Clone, PartialEq)]
pub struct TriggeredFrame {
    /// The camera's id of the frame.
    pub frame_id: u64,
    /// When the camera took it (its clock, mapped to the server's wall clock).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The GenICam name of its pixel format.
    pub pixel_format: String,
}

/// A GenICam camera (GigE Vision, USB3 Vision), through Aravis (see the module documentation).
#[derive(Thing)]
#[thing(
    title = "Camera (GenICam)",
    description = "A GenICam camera (GigE Vision, USB3 Vision), through Aravis: its features are properties.",
    on_start = Self::start_acquisition,
    on_stop = Self::stop_acquisition,
    instance_properties = Self::feature_properties
)]
pub struct GenicamCamera {
    /// The camera's id, as Aravis names it (or its address).
    #[property(read_only)]
    pub device_id: Property<String>,
    /// The camera's maker.
    #[property(read_only)]
    pub vendor: Property<String>,
    /// The camera's model.
    #[property(read_only)]
    pub model: Property<String>,
    /// The camera's serial number.
    #[property(read_only)]
    pub serial_number: Property<String>,
    /// Whether the camera answers.
    ///
    /// False while it is away: it is opened again every half second, and writes get 503.
    #[property(read_only)]
    pub connected: Property<bool>,
    /// Whether the camera is acquiring now.
    ///
    /// It acquires while someone watches, records or captures, and stops a few seconds
    /// after the last one leaves.
    #[property(read_only)]
    pub acquiring: Property<bool>,
    /// Complete frames received since the server started.
    #[property(read_only)]
    pub frames_received: Property<u64>,
    /// Buffers that arrived incomplete (lost packets, timeouts) since the server started.
    ///
    /// They are never shown.
    #[property(read_only)]
    pub incomplete_frames: Property<u64>,
    /// The camera's own id of the newest frame.
    #[property(read_only)]
    pub last_frame_id: Property<u64>,
    /// The values shown black and white in the stream, for formats of more than 8 bits.
    ///
    /// `[low, high]`; `null` (the default) shows the format's whole range (0-4095 for
    /// Mono12). `capture_array` always keeps every bit.
    #[property]
    pub display_range: Property<Option<[u16; 2]>>,
    /// Whether the stream stretches each frame of more than 8 bits from its darkest to its
    /// brightest value (over `display_range`).
    #[property]
    pub auto_contrast: Property<bool>,
    /// The live image, encoded by the frame pipeline while watched.
    #[stream(record, ringbuffer = 60)]
    pub mjpeg_stream: MjpegStream,
    shared: Arc<Shared>,
    worker: Worker,
}

impl GenicamCamera {
    /// Opens the camera and reads its features; acquisition starts with the server (and
    /// only while someone needs frames).
    ///
    /// # Errors
    ///
    /// [`GenicamError`] if the camera cannot be opened, or a feature named in the options
    /// cannot be served.
    pub fn open(options: GenicamOptions) -> Result<Self, GenicamError> {
        let source = match (&options.device, options.fake) {
            (_, true) => Source::Fake,
            (Some(id), false) => Source::Id(id.clone()),
            (None, false) => Source::First,
        };
        let camera = source.open().map_err(|reason| GenicamError::Open {
            camera: source.to_string(),
            reason,
        })?;
        let text = |value: Result<aravis::glib::GString, aravis::glib::Error>| {
            value.map(|v| v.to_string()).unwrap_or_default()
        };
        let device_id = match &source {
            Source::Id(id) => id.clone(),
            _ => text(camera.device_id()),
        };
        let mut infos = Vec::new();
        for (property, names, unit) in features::STANDARD {
            let found = names.iter().find_map(|name| {
                features::describe(&camera, name, (*property).to_owned(), *unit).ok()
            });
            infos.extend(found);
        }
        for name in &options.features {
            if infos.iter().any(|info| &info.name == name) {
                continue;
            }
            let info = features::describe(&camera, name, features::snake_case(name), None)
                .map_err(|reason| GenicamError::Feature {
                    feature: name.clone(),
                    reason,
                })?;
            infos.push(info);
        }
        // The setters reach the camera through `shared`, made after them.
        let slot: Arc<OnceLock<Weak<Shared>>> = Arc::default();
        let features: Vec<Feature> = infos
            .into_iter()
            .enumerate()
            .map(|(index, info)| {
                let current = features::read(&camera, &info).ok();
                let value = feature_property(&slot, index, &info, current);
                Feature { info, value }
            })
            .collect();
        let mjpeg_stream = MjpegStream::new();
        let idle = if options.idle_seconds.is_nan() {
            default_idle()
        } else {
            options.idle_seconds.clamp(0.0, 3600.0)
        };
        let display_range = Property::new(None).with_setter(|range: Option<[u16; 2]>| async move {
            match range {
                Some([low, high]) if low >= high => Err(SetError::invalid(format!(
                    "display_range must be [low, high] with low < high, not [{low}, {high}]"
                ))),
                _ => Ok(()),
            }
        });
        let shared = Arc::new(Shared {
            counters: counters::register(device_id.clone()),
            source,
            camera: Mutex::new(None),
            stream: mjpeg_stream.clone(),
            features,
            connected: Property::new(true),
            acquiring: Property::new(false),
            frames_received: Property::new(0),
            incomplete_frames: Property::new(0),
            last_frame_id: Property::new(0),
            display_range,
            auto_contrast: Property::new(false),
            quality: options.quality.clamp(1, 100),
            idle: Duration::from_secs_f64(idle),
            buffers: options.buffers.clamp(2, 256),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            lost: Arc::new(AtomicBool::new(false)),
            busy: AtomicUsize::new(0),
            raw_wanted: AtomicUsize::new(0),
            recent_ids: Mutex::default(),
            captured: tokio::sync::watch::Sender::new(None),
        });
        let _ = slot.set(Arc::downgrade(&shared));
        shared.prepare(&camera);
        let this = Self {
            device_id: Property::new(device_id),
            vendor: Property::new(text(camera.vendor_name())),
            model: Property::new(text(camera.model_name())),
            serial_number: Property::new(text(camera.device_serial_number())),
            connected: shared.connected.clone(),
            acquiring: shared.acquiring.clone(),
            frames_received: shared.frames_received.clone(),
            incomplete_frames: shared.incomplete_frames.clone(),
            last_frame_id: shared.last_frame_id.clone(),
            display_range: shared.display_range.clone(),
            auto_contrast: shared.auto_contrast.clone(),
            mjpeg_stream,
            shared,
            worker: Worker::new(),
        };
        *this.shared.camera() = Some(camera);
        Ok(this)
    }

    /// Registers the camera as `genicam_camera` for configuration files; its `kwargs` are
    /// [`GenicamOptions`].
    pub fn register(registry: crate::server::ThingRegistry) -> crate::server::ThingRegistry {
        registry.register("genicam_camera", |options: GenicamOptions, _| {
            Ok(Self::open(options)?)
        })
    }

    /// The value of a feature property, if the camera has it (`"trigger_mode"`).
    fn feature_text(&self, property: &str) -> Option<String> {
        self.shared
            .features
            .iter()
            .find(|f| f.info.property == property)
            .and_then(|f| match f.value.get() {
                Value::Text(text) => Some(text),
                _ => None,
            })
    }

    /// Whether frames come from software triggers now.
    fn software_triggered(&self) -> bool {
        self.feature_text("trigger_mode").as_deref() == Some("On")
            && self.feature_text("trigger_source").as_deref() == Some("Software")
    }

    /// Waits until the camera acquires (a capture asked for frames), up to 5 s.
    async fn until_acquiring(&self) -> Result<(), String> {
        let mut acquiring = self.shared.acquiring.subscribe();
        tokio::time::timeout(Duration::from_secs(5), acquiring.wait_for(|on| *on))
            .await
            .map_err(|_| "the camera did not start acquiring in 5 s; is it connected?".to_owned())?
            .map_err(|_| "the camera is shutting down".to_owned())?;
        Ok(())
    }

    /// Fires the software trigger from a blocking thread.
    async fn fire(&self) -> Result<(), String> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.software_trigger())
            .await
            .map_err(|_| "the software trigger failed".to_owned())?
    }

    /// The next frame's values at full depth: fires the software trigger when that is the
    /// mode and `trigger` says so.
    async fn next_captured(&self, trigger: bool) -> Result<Arc<acquire::Captured>, String> {
        let _wanted = Wanted::new(&self.shared, true);
        let mut captured = self.shared.captured.subscribe();
        let seen = captured
            .borrow_and_update()
            .as_ref()
            .map_or(0, |c| c.sequence);
        if trigger {
            self.until_acquiring().await?;
            self.fire().await?;
        }
        let frame = tokio::time::timeout(
            Duration::from_secs(5),
            captured.wait_for(|c| c.as_ref().is_some_and(|c| c.sequence > seen)),
        )
        .await
        .map_err(|_| {
            if self.software_triggered() || trigger {
                "no frame came in 5 s after the software trigger".to_owned()
            } else if self.feature_text("trigger_mode").as_deref() == Some("On") {
                "no frame came in 5 s: the camera waits for a trigger on its trigger_source"
                    .to_owned()
            } else {
                "the camera sent no frame in 5 s; is it connected?".to_owned()
            }
        })?
        .map_err(|_| "the camera is shutting down".to_owned())?;
        frame
            .clone()
            .ok_or_else(|| "the camera sent no frame".to_owned())
    }

    /// The camera's features, as properties (`instance_properties`).
    fn feature_properties(&self) -> Vec<PropertyDescriptor<Self>> {
        let mut taken = taken_names::<Self>(&["mjpeg_stream", "record_mjpeg_stream"]);
        let mut properties = Vec::new();
        for (index, feature) in self.shared.features.iter().enumerate() {
            let info = &feature.info;
            let name = free_name(&taken, &info.property, "_feature");
            let schema = match feature.value {
                FeatureValue::Integer(_) => crate::schema::json_schema_of::<i64>,
                FeatureValue::Float(_) => crate::schema::json_schema_of::<f64>,
                FeatureValue::Text(_) => crate::schema::json_schema_of::<String>,
                FeatureValue::Boolean(_) => crate::schema::json_schema_of::<bool>,
            };
            let mut property = PropertyDescriptor::dynamic(name, schema, move |camera: &Self| {
                camera.shared.features[index].value.property()
            });
            taken.insert(property.name);
            let leak = |text: &str| -> &'static str { Box::leak(text.to_owned().into_boxed_str()) };
            property.title = info.title.as_deref().map(leak);
            property.description = Some(leak(&features::description(info)));
            property.unit = info.unit.as_deref().map(leak);
            property.read_only = info.read_only;
            match info.kind {
                Kind::Integer { min, max, inc } => {
                    property.constraints.minimum = min.map(|v| v as f64);
                    property.constraints.maximum = max.map(|v| v as f64);
                    // JSON Schema's multipleOf counts from 0, GenICam's increment from the
                    // minimum: stated only where the two agree.
                    if inc > 1 && min.unwrap_or(0) % inc == 0 {
                        property.constraints.multiple_of = Some(inc as f64);
                    }
                }
                Kind::Float { min, max } => {
                    property.constraints.minimum = min;
                    property.constraints.maximum = max;
                }
                Kind::Enumeration(ref entries) => {
                    property.constraints.one_of = Some(
                        entries
                            .iter()
                            .cloned()
                            .map(serde_json::Value::from)
                            .collect(),
                    );
                }
                _ => {}
            }
            properties.push(property);
        }
        properties
    }

    async fn start_acquisition(&self) -> Result<(), std::io::Error> {
        let shared = self.shared.clone();
        self.worker.start("genicam", move || acquire::run(&shared))
    }

    async fn stop_acquisition(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let shared = self.shared.clone();
        self.worker
            .join_then(move || {
                // Releases the camera (the thread does too, unless it never ran).
                shared.camera().take();
            })
            .await;
    }
}

/// Counts a capture waiting for a frame while it lives: the camera acquires meanwhile, and
/// with `raw`, each frame's values are kept for it.
struct Wanted<'a> {
    shared: &'a Shared,
    raw: bool,
}

impl<'a> Wanted<'a> {
    fn new(shared: &'a Shared, raw: bool) -> Self {
        let counter = if raw {
            &shared.raw_wanted
        } else {
            &shared.busy
        };
        counter.fetch_add(1, Ordering::SeqCst);
        Self { shared, raw }
    }
}

impl Drop for Wanted<'_> {
    fn drop(&mut self) {
        let counter = if self.raw {
            &self.shared.raw_wanted
        } else {
            &self.shared.busy
        };
        counter.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The property for one feature: its current value, and a setter that writes to the camera
/// (an enumeration's entries are checked before, as the property's `enum`).
fn feature_property(
    slot: &Arc<OnceLock<Weak<Shared>>>,
    index: usize,
    info: &features::FeatureInfo,
    current: Option<Value>,
) -> FeatureValue {
    let write = {
        let slot = slot.clone();
        move |value: Value| {
            let slot = slot.clone();
            async move {
                let shared = slot
                    .get()
                    .and_then(Weak::upgrade)
                    .ok_or_else(|| SetError::unavailable("the camera is shutting down"))?;
                tokio::task::spawn_blocking(move || shared.write_feature(index, &value))
                    .await
                    .map_err(|_| SetError::unavailable("the feature write failed"))?
            }
        }
    };
    match (&info.kind, current) {
        (Kind::Integer { .. }, current) => {
            let initial = match current {
                Some(Value::Integer(v)) => v,
                _ => 0,
            };
            FeatureValue::Integer(
                Property::new(initial).with_setter(move |v: i64| write(Value::Integer(v))),
            )
        }
        (Kind::Float { .. }, current) => {
            let initial = match current {
                Some(Value::Float(v)) => v,
                _ => 0.0,
            };
            FeatureValue::Float(
                Property::new(initial).with_setter(move |v: f64| write(Value::Float(v))),
            )
        }
        (Kind::Boolean, current) => {
            let initial = matches!(current, Some(Value::Boolean(true)));
            FeatureValue::Boolean(
                Property::new(initial).with_setter(move |v: bool| write(Value::Boolean(v))),
            )
        }
        (Kind::Enumeration(_) | Kind::Text, current) => {
            let initial = match current {
                Some(Value::Text(v)) => v,
                _ => String::new(),
            };
            FeatureValue::Text(
                Property::new(initial).with_setter(move |v: String| write(Value::Text(v))),
            )
        }
    }
}

#[thing_actions]
impl GenicamCamera {
    /// Capture the next frame as a JPEG.
    ///
    /// In software-trigger mode (`trigger_mode` On, `trigger_source` Software) it fires the
    /// trigger itself: exactly one new frame. The output's metadata names the camera's frame
    /// id and timestamp.
    async fn capture(&self) -> Result<Blob, String> {
        // The camera acquires meanwhile; the frame is the first one after this point, even if
        // it comes before the wait below starts.
        let _wanted = Wanted::new(&self.shared, false);
        let after = self.mjpeg_stream.latest().map(|entry| entry.index);
        // In software-trigger mode, the frame this capture's trigger made, known by its time
        // (a frame triggered just before can still be on its way to the stream).
        let triggered = if self.software_triggered() {
            Some(self.next_captured(true).await?.timestamp)
        } else {
            None
        };
        let next = async {
            let mut after = after;
            loop {
                let entry = match after {
                    Some(index) => self.mjpeg_stream.next_frame_after(index).await?,
                    None => self.mjpeg_stream.grab_frame().await?,
                };
                match triggered {
                    Some(taken) if entry.timestamp < taken => after = Some(entry.index),
                    _ => return Ok::<_, crate::stream::StreamError>(entry),
                }
            }
        };
        let frame = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .map_err(|_| {
                "the camera sent no frame in 5 s; is it connected, or waiting for a trigger?"
                    .to_owned()
            })?
            .map_err(|error| error.to_string())?;
        let metadata = serde_json::json!({
            "frame_id": self.shared.frame_id_at(frame.timestamp),
            "timestamp": frame.timestamp.to_rfc3339(),
        });
        Ok(Blob::new(frame.frame.clone(), "image/jpeg").with_metadata(metadata))
    }

    /// Capture the next frame's values at the camera's full depth.
    ///
    /// uint16 for Mono10, Mono12 and Mono16 (packed formats unpacked), uint8 for Mono8 and for
    /// Bayer mosaics (as the sensor gave them: demosaic them as you like), and height × width
    /// × 3 uint8 (red, green, blue) for RGB8 and BGR8. Fetch it as `.npy` or TIFF from the
    /// output's link. In software-trigger mode it fires the trigger itself.
    async fn capture_array(&self) -> Result<NdArray, String> {
        let frame = self.next_captured(self.software_triggered()).await?;
        let (h, w) = (frame.height, frame.width);
        let array = match &frame.pixels {
            Pixels::Mono8(values) => NdArray::new([h, w], values.clone()),
            Pixels::Mono16(values) => NdArray::new([h, w], values.clone()),
            Pixels::Rgb8(values) => NdArray::new([h, w, 3], values.clone()),
        };
        let axes: &[&str] = if matches!(frame.pixels, Pixels::Rgb8(_)) {
            &["y", "x", "channel"]
        } else {
            &["y", "x"]
        };
        let array = array
            .and_then(|array| array.with_axes(axes.iter().copied()))
            .map_err(|error| error.to_string())?;
        Ok(array
            .with_unit("counts")
            .with_metadata("frame_id", frame.frame_id)
            .with_metadata("timestamp", frame.timestamp.to_rfc3339())
            .with_metadata("pixel_format", &frame.pixel_format))
    }

    /// Fire one software trigger: the camera makes exactly one frame.
    ///
    /// Needs `trigger_mode` On and `trigger_source` Software. The frame goes to the stream
    /// (and to recordings); the output says which frame it was.
    async fn software_trigger(&self) -> Result<TriggeredFrame, String> {
        if !self.software_triggered() {
            return Err(format!(
                "the camera is not in software-trigger mode: set trigger_mode to On and trigger_source to Software first (they are {} and {})",
                self.feature_text("trigger_mode")
                    .unwrap_or_else(|| "absent".into()),
                self.feature_text("trigger_source")
                    .unwrap_or_else(|| "absent".into()),
            ));
        }
        let frame = self.next_captured(true).await?;
        Ok(TriggeredFrame {
            frame_id: frame.frame_id,
            timestamp: frame.timestamp,
            width: frame.width as u32,
            height: frame.height as u32,
            pixel_format: frame.pixel_format.clone(),
        })
    }
}
