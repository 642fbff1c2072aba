//! The acquisition thread: acquires while someone needs frames, turns Aravis's buffers into
//! [`RawFrame`]s for the pipeline, keeps the newest one for captures, counts incomplete
//! buffers, notices a camera that went away, and opens it again when it is back.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aravis::glib::prelude::*;
use aravis::prelude::*;
use aravis::{Buffer, BufferStatus, Camera, PixelFormat as ArvFormat, Stream};
use chrono::{DateTime, Utc};

use super::Source;
use super::counters::Counters;
use super::features::{self, FeatureInfo, FeatureValue, Value};
use crate::Property;
use crate::property::SetError;
use crate::stream::{
    BayerPattern, FramePipeline, Gray16Window, MjpegStream, MonoPacking, PixelFormat, RawFrame,
};

/// How long a lost camera waits between attempts to open it again.
const RETRY: Duration = Duration::from_millis(500);
/// How often an idle camera, or one that sends nothing, is asked whether it is still there.
const PING: Duration = Duration::from_millis(500);
/// How long a camera may take to answer a read before it counts as gone.
const ANSWER: Duration = Duration::from_millis(1000);
/// Frames whose ids are kept for captures to look up.
const RECENT: usize = 128;
/// How long one wait for a buffer lasts: the longest a stop or a change waits.
const POP: Duration = Duration::from_millis(50);

/// PFNC codes Aravis has no name for in the bindings: `Mono10p` and `Mono12p`.
const MONO_10_P: u32 = 0x010A_0046;
const MONO_12_P: u32 = 0x010C_0047;

/// One feature served as a property.
#[derive(Clone)]
pub(super) struct Feature {
    pub(super) info: FeatureInfo,
    pub(super) value: FeatureValue,
}

/// A frame kept for `capture_array`: the camera's values, at full depth.
#[derive(Debug)]
pub(super) struct Captured {
    /// Counts frames kept, so a waiter knows a newer one came.
    pub(super) sequence: u64,
    pub(super) frame_id: u64,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) width: usize,
    pub(super) height: usize,
    /// The GenICam name of its pixel format.
    pub(super) pixel_format: String,
    pub(super) pixels: Pixels,
}

/// A kept frame's values.
#[derive(Debug)]
pub(super) enum Pixels {
    /// One byte a pixel: Mono8, or a Bayer mosaic as the sensor gave it.
    Mono8(Vec<u8>),
    /// One value a pixel, unpacked: Mono10, Mono12, Mono16 and their packed forms.
    Mono16(Vec<u16>),
    /// Red, green, blue for each pixel (BGR8 is reordered).
    Rgb8(Vec<u8>),
}

/// What the acquisition thread, the properties' setters and the actions share.
pub(super) struct Shared {
    pub(super) source: Source,
    /// The camera, while it is there.
    pub(super) camera: Mutex<Option<Camera>>,
    pub(super) stream: MjpegStream,
    pub(super) features: Vec<Feature>,
    pub(super) connected: Property<bool>,
    pub(super) acquiring: Property<bool>,
    pub(super) frames_received: Property<u64>,
    pub(super) incomplete_frames: Property<u64>,
    pub(super) last_frame_id: Property<u64>,
    pub(super) display_range: Property<Option<[u16; 2]>>,
    pub(super) auto_contrast: Property<bool>,
    pub(super) counters: Arc<Counters>,
    pub(super) quality: u8,
    pub(super) idle: Duration,
    pub(super) buffers: usize,
    /// Bumped by each write of a layout feature: acquisition starts again with new buffers.
    pub(super) generation: AtomicU64,
    pub(super) stop: AtomicBool,
    /// Set by Aravis's `control-lost` signal.
    pub(super) lost: Arc<AtomicBool>,
    /// Captures waiting for a frame: acquisition runs while there are any, watched or not.
    pub(super) busy: AtomicUsize,
    /// Captures waiting for a frame's values: each frame is kept in `captured` meanwhile.
    pub(super) raw_wanted: AtomicUsize,
    /// The camera's ids of the newest frames, by their timestamps (a JPEG capture's id).
    pub(super) recent_ids: Mutex<std::collections::VecDeque<(DateTime<Utc>, u64)>>,
    /// The newest frame, kept while a capture waits.
    pub(super) captured: tokio::sync::watch::Sender<Option<Arc<Captured>>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(super) fn camera(&self) -> MutexGuard<'_, Option<Camera>> {
        self.camera.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether anyone needs frames now.
    fn wanted(&self) -> bool {
        self.stream.is_watched()
            || self.busy.load(Ordering::SeqCst) > 0
            || self.raw_wanted.load(Ordering::SeqCst) > 0
    }

    /// The camera's id of the frame taken at `timestamp`, if it is one of the newest.
    pub(super) fn frame_id_at(&self, timestamp: DateTime<Utc>) -> Option<u64> {
        let recent = self
            .recent_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recent
            .iter()
            .rev()
            .find(|(at, _)| *at == timestamp)
            .map(|(_, id)| *id)
    }

    /// Writes a feature (blocking): layout features with acquisition paused, then every
    /// other feature is read back, since one write can change others (binning changes the
    /// width on many cameras).
    pub(super) fn write_feature(&self, index: usize, value: &Value) -> Result<(), SetError> {
        let info = &self.features[index].info;
        let away = || {
            SetError::unavailable(format!(
                "the camera is not connected: {} was not set; set it again when `connected` is true",
                info.name
            ))
        };
        if !self.connected.get() {
            return Err(away());
        }
        let guard = self.camera();
        let Some(camera) = guard.as_ref() else {
            return Err(away());
        };
        if info.layout && self.acquiring.get() {
            // The acquisition thread sees the new generation and starts again with buffers
            // of the new size; it takes the camera's lock first, so it waits for this write.
            self.generation.fetch_add(1, Ordering::SeqCst);
            let _ = camera.stop_acquisition();
        }
        let result = features::write(camera, info, value);
        if let Err(error) = &result
            && features::is_disconnection(error)
        {
            self.lost.store(true, Ordering::SeqCst);
        }
        result.map_err(|error| features::refusal(info, value, &error))?;
        for (other, feature) in self.features.iter().enumerate() {
            if other != index
                && let Ok(now) = features::read(camera, &feature.info)
            {
                feature.value.publish(now);
            }
        }
        Ok(())
    }

    /// Runs the camera's `TriggerSoftware` command.
    pub(super) fn software_trigger(&self) -> Result<(), String> {
        let guard = self.camera();
        let camera = guard
            .as_ref()
            .ok_or("the camera is not connected; try again when `connected` is true")?;
        camera.software_trigger().map_err(|error| {
            format!(
                "the camera refused the software trigger: {}",
                error.message()
            )
        })
    }

    /// Opens the camera as the source says, prepared.
    pub(super) fn open(&self) -> Result<Camera, String> {
        let camera = self.source.open()?;
        self.prepare(&camera);
        Ok(camera)
    }

    /// Has Aravis check values against the node map's ranges and access modes (so that a
    /// refusal names its reason), and watches for the control channel's loss.
    pub(super) fn prepare(&self, camera: &Camera) {
        camera.set_range_check_policy(aravis::RangeCheckPolicy::Enable);
        camera.set_access_check_policy(aravis::AccessCheckPolicy::Enable);
        if let Some(device) = camera.device() {
            let lost = self.lost.clone();
            device.connect_control_lost(move |_| lost.store(true, Ordering::SeqCst));
        }
    }

    /// The camera went away: says so, then closes it (which can take a while: Aravis
    /// tries to tell a GigE camera it lets go of it).
    fn lose(&self, reason: &str) {
        let _ = self.acquiring.publish(false);
        let _ = self.connected.publish(false);
        tracing::warn!(camera = %self.source, reason, "the camera is gone; trying again every {} ms", RETRY.as_millis());
        self.camera().take();
    }

    /// Opens the camera again after it came back, and sets every writable feature to the
    /// value its property holds (a camera that restarted starts from its defaults): layout
    /// features first, in the order listed, then the others.
    fn reopen(&self) -> Result<(), String> {
        let camera = self.open()?;
        let writable = self.features.iter().filter(|f| !f.info.read_only);
        let (layout, others): (Vec<_>, Vec<_>) = writable.partition(|f| f.info.layout);
        for feature in layout.into_iter().chain(others) {
            let value = feature.value.get();
            if let Err(error) = features::write(&camera, &feature.info, &value) {
                tracing::warn!(feature = %feature.info.name, %value, error = %error.message(), "feature not restored");
            }
        }
        self.lost.store(false, Ordering::SeqCst);
        *self.camera() = Some(camera);
        Ok(())
    }

    /// Whether the camera still answers (a read of a feature every camera has) within
    /// [`ANSWER`]. Aravis waits 2.5 s for a GigE camera that does not answer; a camera on
    /// a working link answers in milliseconds, so the wait is cut short here: the read goes
    /// on in a thread of its own.
    fn ping(self: &Arc<Self>) -> bool {
        let (answer, answered) = std::sync::mpsc::channel();
        let shared = self.clone();
        let spawned = std::thread::Builder::new()
            .name("genicam-ping".into())
            .spawn(move || {
                let _ = answer.send(shared.ping_blocking());
            });
        spawned.is_ok() && answered.recv_timeout(ANSWER).unwrap_or(false)
    }

    fn ping_blocking(&self) -> bool {
        let guard = self.camera();
        let Some(camera) = guard.as_ref() else {
            return false;
        };
        match camera.integer("Width") {
            Err(error) if features::is_disconnection(&error) => false,
            _ => !self.lost.load(Ordering::SeqCst),
        }
    }

    /// Publishes the counters (at most a few times a second while acquiring).
    fn publish_counters(&self, frame_id: u64) {
        let _ = self
            .frames_received
            .publish(self.counters.frames.load(Ordering::Relaxed));
        let _ = self
            .incomplete_frames
            .publish(self.counters.incomplete.load(Ordering::Relaxed));
        let _ = self.last_frame_id.publish(frame_id);
    }
}

/// The acquisition thread's loop; ends when the camera stops.
pub(super) fn run(shared: &Arc<Shared>) {
    let mut checked = Instant::now();
    while !shared.stopping() {
        if !shared.connected.get() {
            match shared.reopen() {
                Ok(()) => {
                    let _ = shared.connected.publish(true);
                    tracing::info!(camera = %shared.source, "the camera is back");
                }
                Err(error) => {
                    tracing::debug!(%error, "the camera is still away");
                    std::thread::sleep(RETRY);
                }
            }
            continue;
        }
        if !shared.wanted() {
            if checked.elapsed() >= PING {
                checked = Instant::now();
                if !shared.ping() {
                    shared.lose("the camera does not answer");
                }
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if acquire_until_idle(shared).is_err() {
            // Lost (and said so): try again in a while.
            std::thread::sleep(RETRY);
        }
    }
    if let Some(camera) = shared.camera().take() {
        let _ = camera.stop_acquisition();
    }
    let _ = shared.acquiring.publish(false);
}

/// Maps the camera's clock to the wall clock: the smallest (host time - camera time) seen
/// in this acquisition, so that transfer delays do not push frames later.
struct Clock {
    offset: Option<i128>,
}

impl Clock {
    fn wall(&mut self, buffer: &Buffer) -> DateTime<Utc> {
        let host = i128::from(buffer.system_timestamp());
        let camera = i128::from(buffer.timestamp());
        let nanos = if camera == 0 || host == 0 {
            if host == 0 {
                Utc::now().timestamp_nanos_opt().map_or(0, i128::from)
            } else {
                host
            }
        } else {
            let offset = self.offset.map_or(host - camera, |o| o.min(host - camera));
            self.offset = Some(offset);
            camera + offset
        };
        let nanos = i64::try_from(nanos).unwrap_or(i64::MAX);
        DateTime::from_timestamp_nanos(nanos)
    }
}

/// Acquires until nobody has needed frames for `idle`, a layout feature changed or the
/// camera stops (`Ok`), or the camera went away (`Err`, with the reason).
fn acquire_until_idle(shared: &Arc<Shared>) -> Result<(), String> {
    let generation = shared.generation.load(Ordering::SeqCst);
    let stream = {
        let guard = shared.camera();
        let camera = guard.as_ref().ok_or("the camera is closed")?;
        start(camera, shared.buffers, shared.source.is_loopback()).map_err(|error| {
            if features::is_disconnection(&error) {
                error.message().to_owned()
            } else {
                // Not a lost camera: a refusal to stream in this state. Logged, retried.
                tracing::warn!(camera = %shared.source, error = %error.message(), "the camera does not start acquiring");
                String::new()
            }
        })
    };
    let stream = match stream {
        Ok(stream) => stream,
        Err(reason) if reason.is_empty() => {
            std::thread::sleep(RETRY);
            return Ok(());
        }
        Err(reason) => return Err(reason),
    };
    let _ = shared.acquiring.publish(true);
    tracing::info!(camera = %shared.source, "acquiring");
    let pipeline = FramePipeline::builder(&shared.stream)
        .quality(shared.quality)
        .build();
    let mut clock = Clock { offset: None };
    let (mut last_wanted, mut last_frame, mut last_publish) =
        (Instant::now(), Instant::now(), Instant::now());
    let mut frame_id = shared.last_frame_id.get();
    let mut warned = false;
    let result = loop {
        if shared.stopping() || shared.generation.load(Ordering::SeqCst) != generation {
            break Ok(());
        }
        if shared.lost.load(Ordering::SeqCst) {
            break Err("the camera's control channel was lost".to_owned());
        }
        if shared.wanted() {
            last_wanted = Instant::now();
        } else if last_wanted.elapsed() >= shared.idle {
            tracing::debug!(camera = %shared.source, "nobody needs frames: acquisition stops");
            break Ok(());
        }
        if last_publish.elapsed() >= Duration::from_millis(250) {
            last_publish = Instant::now();
            shared.publish_counters(frame_id);
        }
        let Some(buffer) = stream.timeout_pop_buffer(POP.as_micros() as u64) else {
            // Nothing came: a triggered camera waits, a lost one does not answer.
            if last_frame.elapsed() >= PING {
                last_frame = Instant::now();
                if !shared.ping() {
                    break Err("the camera does not answer".to_owned());
                }
            }
            continue;
        };
        last_frame = Instant::now();
        if buffer.status() == BufferStatus::Success {
            shared.counters.frames.fetch_add(1, Ordering::Relaxed);
            frame_id = buffer.frame_id();
            let timestamp = clock.wall(&buffer);
            {
                let mut recent = shared
                    .recent_ids
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back((timestamp, frame_id));
            }
            match frame_of(
                &buffer,
                timestamp,
                (shared.display_range.get(), shared.auto_contrast.get()),
            ) {
                Some((frame, layout)) => {
                    if shared.raw_wanted.load(Ordering::SeqCst) > 0 {
                        keep(shared, &frame, layout, frame_id, &buffer);
                    }
                    pipeline.push(frame);
                }
                None if !warned => {
                    warned = true;
                    tracing::warn!(camera = %shared.source, format = %format_name(buffer.image_pixel_format()), "frames of this pixel format cannot be shown; choose another `pixel_format`");
                }
                None => {}
            }
        } else if shared.generation.load(Ordering::SeqCst) == generation {
            shared.counters.incomplete.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(camera = %shared.source, status = ?buffer.status(), "incomplete buffer: not shown");
        }
        // Else a buffer of the old layout, made while a layout feature changed: not the
        // camera's fault, not counted; acquisition starts again with buffers of the new size.
        stream.push_buffer(buffer);
    };
    shared.publish_counters(frame_id);
    match &result {
        Ok(()) => {
            if let Some(camera) = shared.camera().as_ref() {
                let _ = camera.stop_acquisition();
            }
            let _ = shared.acquiring.publish(false);
        }
        // Said at once: closing a camera that does not answer takes seconds.
        Err(reason) => shared.lose(reason),
    }
    drop(stream);
    result
}

/// Makes a stream with `count` buffers of the current payload and starts acquiring.
fn start(camera: &Camera, count: usize, loopback: bool) -> Result<Stream, aravis::glib::Error> {
    if camera.is_gv_device() && loopback {
        // The packet socket loses packets on loopback (about half the frames of Aravis's
        // fake GigE camera); the plain socket, with its buffer sized to the frame, keeps them.
        camera.gv_set_stream_options(aravis::GvStreamOption::PACKET_SOCKET_DISABLED);
    }
    let stream = camera.create_stream()?;
    let payload = camera.payload()? as usize;
    if let Some(gv) = stream.downcast_ref::<aravis::GvStream>() {
        // Room for a whole frame at least (Aravis's `auto` sizes the buffer to the payload,
        // which the kernel's per-packet overhead overflows for small frames: half of a
        // 64x48 region's frames came incomplete), and never less than 1 MiB (the kernel
        // caps it at `net.core.rmem_max`).
        gv.set_socket_buffer(aravis::GvStreamSocketBuffer::Fixed);
        gv.set_socket_buffer_size(
            i32::try_from(payload.saturating_mul(2).max(1 << 20)).unwrap_or(i32::MAX),
        );
    }
    for _ in 0..count {
        stream.push_buffer(Buffer::new_allocate(payload));
    }
    camera.set_acquisition_mode(aravis::AcquisitionMode::Continuous)?;
    camera.start_acquisition()?;
    Ok(stream)
}

/// The GenICam name of a pixel format (`Mono8`), or its code.
pub(super) fn format_name(format: ArvFormat) -> String {
    let known = [
        (ArvFormat::MONO_8, "Mono8"),
        (ArvFormat::MONO_10, "Mono10"),
        (ArvFormat::MONO_12, "Mono12"),
        (ArvFormat::MONO_14, "Mono14"),
        (ArvFormat::MONO_16, "Mono16"),
        (ArvFormat::MONO_10_PACKED, "Mono10Packed"),
        (ArvFormat::MONO_12_PACKED, "Mono12Packed"),
        (ArvFormat::from_raw(MONO_10_P), "Mono10p"),
        (ArvFormat::from_raw(MONO_12_P), "Mono12p"),
        (ArvFormat::RGB_8_PACKED, "RGB8"),
        (ArvFormat::BGR_8_PACKED, "BGR8"),
        (ArvFormat::BAYER_RG_8, "BayerRG8"),
        (ArvFormat::BAYER_BG_8, "BayerBG8"),
        (ArvFormat::BAYER_GR_8, "BayerGR8"),
        (ArvFormat::BAYER_GB_8, "BayerGB8"),
    ];
    known.iter().find(|(code, _)| *code == format).map_or_else(
        || format!("0x{:08X}", format.raw()),
        |(_, name)| (*name).to_owned(),
    )
}

/// How a buffer's bytes go to the pipeline: its format there, and how its values are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Layout {
    Mono8,
    /// Values of `bits` in 16-bit words.
    Mono16 {
        bits: u32,
    },
    Packed(MonoPacking),
    Rgb8,
    Bgr8,
    Bayer8(BayerPattern),
}

pub(super) fn layout_of(format: ArvFormat) -> Option<Layout> {
    Some(match format {
        f if f == ArvFormat::MONO_8 => Layout::Mono8,
        f if f == ArvFormat::MONO_10 => Layout::Mono16 { bits: 10 },
        f if f == ArvFormat::MONO_12 => Layout::Mono16 { bits: 12 },
        f if f == ArvFormat::MONO_14 => Layout::Mono16 { bits: 14 },
        f if f == ArvFormat::MONO_16 => Layout::Mono16 { bits: 16 },
        f if f == ArvFormat::MONO_10_PACKED => Layout::Packed(MonoPacking::Mono10Packed),
        f if f == ArvFormat::MONO_12_PACKED => Layout::Packed(MonoPacking::Mono12Packed),
        f if f.raw() == MONO_10_P => Layout::Packed(MonoPacking::Mono10p),
        f if f.raw() == MONO_12_P => Layout::Packed(MonoPacking::Mono12p),
        f if f == ArvFormat::RGB_8_PACKED => Layout::Rgb8,
        f if f == ArvFormat::BGR_8_PACKED => Layout::Bgr8,
        f if f == ArvFormat::BAYER_RG_8 => Layout::Bayer8(BayerPattern::Rggb),
        f if f == ArvFormat::BAYER_BG_8 => Layout::Bayer8(BayerPattern::Bggr),
        f if f == ArvFormat::BAYER_GR_8 => Layout::Bayer8(BayerPattern::Grbg),
        f if f == ArvFormat::BAYER_GB_8 => Layout::Bayer8(BayerPattern::Gbrg),
        _ => return None,
    })
}

/// The window 16-bit frames are shown through: the one set, or the format's whole range.
fn window(bits: u32, range: Option<[u16; 2]>, auto: bool) -> Gray16Window {
    match range {
        _ if auto => Gray16Window::Auto,
        Some([low, high]) => Gray16Window::Range { low, high },
        None => Gray16Window::Range {
            low: 0,
            high: ((1u32 << bits) - 1) as u16,
        },
    }
}

/// The pipeline's frame for a buffer, and its layout; `None` for a format not served.
fn frame_of(
    buffer: &Buffer,
    timestamp: DateTime<Utc>,
    (range, auto): (Option<[u16; 2]>, bool),
) -> Option<(RawFrame, Layout)> {
    let layout = layout_of(buffer.image_pixel_format())?;
    let (w, h) = (
        u16::try_from(buffer.image_width()).ok()?,
        u16::try_from(buffer.image_height()).ok()?,
    );
    let mut data = buffer.image_data();
    let pixels = usize::from(w) * usize::from(h);
    let frame = match layout {
        Layout::Mono8 => {
            data.truncate(pixels);
            RawFrame::new(PixelFormat::Gray8, w, h, data)
        }
        Layout::Mono16 { bits } => {
            data.truncate(pixels * 2);
            RawFrame::new(PixelFormat::Gray16(window(bits, range, auto)), w, h, data)
        }
        Layout::Packed(packing) => {
            RawFrame::packed(packing, w, h, &data, window(packing.bits(), range, auto))
        }
        Layout::Rgb8 | Layout::Bgr8 => {
            data.truncate(pixels * 3);
            let format = if layout == Layout::Rgb8 {
                PixelFormat::Rgb8
            } else {
                PixelFormat::Bgr8
            };
            RawFrame::new(format, w, h, data)
        }
        Layout::Bayer8(pattern) => {
            data.truncate(pixels);
            RawFrame::new(PixelFormat::Bayer8(pattern), w, h, data)
        }
    };
    Some((frame.ok()?.at(timestamp), layout))
}

/// Keeps the newest frame's values at full depth for the captures waiting, from the frame
/// made for the pipeline (the buffer's bytes copied once, packed values unpacked once).
fn keep(shared: &Shared, frame: &RawFrame, layout: Layout, frame_id: u64, buffer: &Buffer) {
    let (width, height) = (usize::from(frame.size().0), usize::from(frame.size().1));
    let timestamp = frame.timestamp();
    let data = frame.data();
    let pixels = match layout {
        Layout::Mono8 | Layout::Bayer8(_) => Pixels::Mono8(data.to_vec()),
        // 16-bit words, as the camera sent them or as `RawFrame::packed` unpacked them.
        Layout::Mono16 { .. } | Layout::Packed(_) => Pixels::Mono16(
            data.chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .collect(),
        ),
        Layout::Rgb8 => Pixels::Rgb8(data.to_vec()),
        Layout::Bgr8 => Pixels::Rgb8(
            data.chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect(),
        ),
    };
    let sequence = shared
        .captured
        .borrow()
        .as_ref()
        .map_or(1, |previous| previous.sequence + 1);
    shared.captured.send_replace(Some(Arc::new(Captured {
        sequence,
        frame_id,
        timestamp,
        width,
        height,
        pixel_format: format_name(buffer.image_pixel_format()),
        pixels,
    })));
}
