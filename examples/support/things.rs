//! The simulated instruments as Things: a camera and a stage. Shared by the examples and the
//! integration tests.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Mutex;

use std::time::Duration;

use labthings::health::Health;
use labthings::stream::MjpegStream;
use labthings::{ActionContext, Blob, Cancelled, Event, Property, Thing, thing_actions};

use super::sim::{CameraSettings, Scene, SceneSource, SimulatedCamera};

/// A simulated camera: a moving test pattern with the time drawn in, rendered on its own
/// thread and encoded by the framework's frame pipeline (the preview only while watched).
#[derive(Thing)]
#[thing(title = "Simulated camera", on_start = Self::open, on_stop = Self::close)]
pub struct Camera {
    /// Exposure time in milliseconds.
    ///
    /// Brighter images with longer exposures; 10 ms is the pattern as designed.
    #[property(min = 0.1, max = 1000.0, unit = "ms", history = "10 min")]
    pub exposure_ms: Property<f64>,
    /// Analogue gain; kept across restarts.
    #[setting(min = 1.0, max = 16.0)]
    pub gain: Property<f64>,
    /// Frames captured since the camera started.
    #[property(read_only)]
    pub frames_captured: Property<u64>,
    /// Seconds of pre-trigger history to keep for a recording's `pre_seconds` (at most 5, the
    /// 150 frames the stream holds at 30 fps); 0 turns it off.
    ///
    /// While armed the camera renders and encodes every frame, watched or not: about what one
    /// viewer costs. Off, a camera nobody watches does no work at all.
    #[setting(min = 0.0, max = 5.0, unit = "s")]
    pub history_seconds: Property<f64>,
    /// Sensor temperature.
    ///
    /// It warms with exposure and gain, and drifts. Its last ten minutes are kept (`sensor_temperature/history`, also as CSV) and drawn as
    /// a trend plot by the web UI.
    #[property(read_only, unit = "°C", history = "10 min")]
    pub sensor_temperature: Property<f64>,
    /// Whether the camera is OK: it faults when the sensor passes 45 °C (long exposures at
    /// high gain), and when its temperature thread panics or hangs.
    #[health]
    pub health: Health,
    /// The live image, full resolution. Recordable (`record_mjpeg_stream`), with up to 150
    /// frames held for a recording's `pre_seconds` while `history_seconds` arms it. Also
    /// offered as H.264 (`mjpeg_stream/h264`), for remote viewing.
    #[stream(record, ringbuffer = 150)]
    pub mjpeg_stream: MjpegStream,
    /// The live image at half the width and height, for previews.
    #[stream(ringbuffer = 4)]
    pub lores_mjpeg_stream: MjpegStream,
    /// A capture was stored: its frame and size.
    #[event]
    pub captured: Event<Capture>,
    settings: CameraSettings,
    /// Where the stage is, if the camera looks through one: a handle to the stage's property.
    stage_position: Option<Property<[i64; 3]>>,
    worker: Mutex<Option<SimulatedCamera>>,
    thermal: Mutex<Option<Thermal>>,
}

/// The room the simulated camera stands in, in °C.
const AMBIENT_C: f64 = 22.0;
/// Above this the simulated sensor faults the camera.
const SENSOR_LIMIT_C: f64 = 45.0;

/// The simulated sensor's temperature, updated ten times a second on a thread the camera's
/// health watches (a panic or a silence of 2 s faults it), until dropped.
struct Thermal {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Thermal {
    fn start(
        health: &Health,
        temperature: Property<f64>,
        exposure_ms: Property<f64>,
        gain: Property<f64>,
    ) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let interlock = health.clone();
        let thread = health
            .spawn_with_heartbeat("sim-thermal", Duration::from_secs(2), move |beat| {
                let mut t = temperature.get();
                let mut step = 0u64;
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    beat.beat();
                    step += 1;
                    // Warms towards a level set by exposure and gain, with a slow wander and
                    // a little noise (deterministic: the same run gives the same curve).
                    let target = AMBIENT_C
                        + 0.01 * exposure_ms.get() * gain.get()
                        + 0.8 * (step as f64 / 300.0).sin();
                    let noise =
                        ((step.wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0 - 0.5) * 0.02;
                    t += (target - t) * 0.02 + noise;
                    let _ = temperature.publish((t * 1000.0).round() / 1000.0);
                    if t > SENSOR_LIMIT_C && !interlock.is_faulted() {
                        interlock.fault(format!(
                            "the sensor is at {t:.1} °C, over its {SENSOR_LIMIT_C} °C limit: \
                             lower the exposure or the gain, let it cool, then clear the fault"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .expect("a thread for the simulated temperature");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Thermal {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Camera {
    pub fn new(settings: CameraSettings) -> Self {
        // H.264 beside the MJPEG, for remote viewers: encoded only while someone watches it.
        let mjpeg_stream = MjpegStream::new().with_h264(
            labthings::stream::H264Options::default().with_frame_rate(settings.fps as f32),
        );
        Self {
            history_seconds: Property::new(0.0),
            exposure_ms: Property::new(10.0),
            gain: Property::new(1.0),
            frames_captured: Property::new(0),
            sensor_temperature: Property::new(AMBIENT_C),
            health: Health::new(),
            thermal: Mutex::new(None),
            mjpeg_stream,
            lores_mjpeg_stream: MjpegStream::new(),
            captured: Event::new(),
            settings,
            stage_position: None,
            worker: Mutex::new(None),
        }
    }

    /// Looks through a stage: the image moves when the stage does.
    pub fn with_stage(mut self, stage: &Stage) -> Self {
        self.stage_position = Some(stage.position.clone());
        self
    }

    async fn open(&self) -> Result<(), Infallible> {
        let source = Sensor {
            exposure_ms: self.exposure_ms.clone(),
            gain: self.gain.clone(),
            frames_captured: self.frames_captured.clone(),
            stage_position: self.stage_position.clone(),
        };
        let camera = SimulatedCamera::start_with(
            self.settings,
            self.mjpeg_stream.clone(),
            self.lores_mjpeg_stream.clone(),
            source,
        );
        *self.worker.lock().unwrap() = Some(camera);
        *self.thermal.lock().unwrap() = Some(Thermal::start(
            &self.health,
            self.sensor_temperature.clone(),
            self.exposure_ms.clone(),
            self.gain.clone(),
        ));
        // The history setting arms the stream's pre-trigger history, now (from the settings
        // file) and whenever it changes.
        let stream = self.mjpeg_stream.clone();
        let mut history = self.history_seconds.subscribe();
        stream.arm_history(*history.borrow_and_update());
        tokio::spawn(async move {
            while history.changed().await.is_ok() {
                let seconds = *history.borrow_and_update();
                stream.arm_history(seconds);
            }
        });
        Ok(())
    }

    async fn close(&self) {
        // Dropping the camera stops and joins its thread; do that off the async runtime.
        let camera = self.worker.lock().unwrap().take();
        let thermal = self.thermal.lock().unwrap().take();
        let _ = tokio::task::spawn_blocking(move || drop((camera, thermal))).await;
    }
}

#[thing_actions]
impl Camera {
    /// Capture a full-resolution JPEG, with the instrument's state.
    ///
    /// Waits for the next frame, so the picture is taken after the call. Every Thing's
    /// properties at that moment (stage position, exposure, gain, ...) are stored in the JPEG's
    /// comment, as `labthings-snapshot {json}`, and shown in the output's `metadata`.
    #[action(refuse_while_faulted)]
    async fn capture(&self, context: ActionContext) -> Result<Blob, String> {
        let frame = tokio::time::timeout(Duration::from_secs(5), self.mjpeg_stream.grab_frame())
            .await
            .map_err(|_| "the camera produced no frame in 5 s; is it running?".to_owned())?
            .map_err(|error| error.to_string())?;
        let capture = Capture {
            frame_index: frame.index,
            bytes: frame.frame.len() as u64,
            timestamp: frame.timestamp.to_rfc3339(),
        };
        self.captured
            .emit(capture)
            .map_err(|error| error.to_string())?;
        let snapshot = context.snapshot();
        let comment = format!("labthings-snapshot {snapshot}");
        // A state too big for one comment segment stays in the output's metadata only.
        let jpeg = labthings::stream::jpeg_with_comment(&frame.frame, comment.as_bytes())
            .unwrap_or_else(|| frame.frame.to_vec());
        Ok(Blob::new(jpeg, "image/jpeg").with_metadata(snapshot))
    }

    /// The brightness along one row of the next frame (a line profile), from 0 to 255.
    ///
    /// `row` counts from the top of the frame; by default the **middle** row. The web UI draws
    /// the result as a plot, with a CSV download.
    async fn line_profile(&self, row: Option<u32>) -> Result<Vec<f64>, String> {
        let (width, height, grey) = self.next_grey_frame().await?;
        let row = row.map_or(height / 2, |row| row as usize);
        if row >= height {
            return Err(format!("row {row} is outside the frame's {height} rows"));
        }
        Ok(grey[row * width..(row + 1) * width]
            .iter()
            .map(|&level| f64::from(level))
            .collect())
    }

    /// The next frame as a 16-bit grey image (height × width).
    ///
    /// As a scientific camera's sensor gives it: fetch it as `.npy` (NumPy) or TIFF from the
    /// output's link, or read `shape` and `dtype` there.
    #[action(refuse_while_faulted)]
    async fn capture_array(&self) -> Result<labthings::NdArray, String> {
        let (width, height, grey) = self.next_grey_frame().await?;
        // The simulated sensor's 8-bit levels, spread over the 16-bit range.
        let values: Vec<u16> = grey.iter().map(|&level| u16::from(level) * 257).collect();
        // What the numbers mean travels with them: in the output, and in the TIFF.
        labthings::NdArray::new([height, width], values)
            .and_then(|array| array.with_axes(["y", "x"]))
            .map(|array| {
                array
                    .with_unit("counts")
                    .with_metadata("exposure_ms", self.exposure_ms.get())
                    .with_metadata("gain", self.gain.get())
                    .with_metadata("sensor_temperature_c", self.sensor_temperature.get())
            })
            .map_err(|error| error.to_string())
    }

    /// A 32 × 24 grey-level thumbnail of the next frame: rows of brightness from 0 to 255.
    async fn thumbnail(&self) -> Result<Vec<Vec<u8>>, String> {
        const COLUMNS: usize = 32;
        const ROWS: usize = 24;
        let (width, height, grey) = self.next_grey_frame().await?;
        let grey = grey.as_slice();
        Ok((0..ROWS)
            .map(|row| {
                (0..COLUMNS)
                    .map(|column| {
                        // The mean of the block of pixels this cell covers.
                        let (y0, y1) = (row * height / ROWS, (row + 1) * height / ROWS);
                        let (x0, x1) = (column * width / COLUMNS, (column + 1) * width / COLUMNS);
                        let sum: u64 = (y0..y1)
                            .flat_map(|y| (x0..x1).map(move |x| u64::from(grey[y * width + x])))
                            .sum();
                        let count = ((y1 - y0) * (x1 - x0)).max(1) as u64;
                        u8::try_from(sum / count).unwrap_or(u8::MAX)
                    })
                    .collect()
            })
            .collect())
    }
}

impl Camera {
    /// The next frame of the full stream, decoded to grey levels: (width, height, pixels).
    async fn next_grey_frame(&self) -> Result<(usize, usize, Vec<u8>), String> {
        let frame = tokio::time::timeout(Duration::from_secs(5), self.mjpeg_stream.grab_frame())
            .await
            .map_err(|_| "the camera produced no frame in 5 s; is it running?".to_owned())?
            .map_err(|error| error.to_string())?;
        let mut decoder = zune_jpeg::JpegDecoder::new(frame.frame.as_ref());
        let rgb = decoder.decode().map_err(|error| error.to_string())?;
        let (width, height) = decoder.dimensions().ok_or("the frame has no size")?;
        let grey = rgb
            .chunks_exact(3)
            .map(|p| {
                ((u32::from(p[0]) * 30 + u32::from(p[1]) * 59 + u32::from(p[2]) * 11) / 100) as u8
            })
            .collect();
        Ok((width, height, grey))
    }
}

/// A stored capture.
#[labthings::data]
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// The frame's index in the stream.
    pub frame_index: u64,
    /// The JPEG's size in bytes.
    pub bytes: u64,
    /// When the frame was captured (RFC 3339).
    pub timestamp: String,
}

/// What the capture thread reads before each frame and reports after it.
struct Sensor {
    exposure_ms: Property<f64>,
    gain: Property<f64>,
    frames_captured: Property<u64>,
    stage_position: Option<Property<[i64; 3]>>,
}

impl SceneSource for Sensor {
    fn scene(&mut self) -> Scene {
        let [x, y, _] = self.stage_position.as_ref().map_or([0; 3], Property::get);
        Scene {
            offset: (x, y),
            brightness: self.exposure_ms.get() / 10.0 * self.gain.get(),
        }
    }

    fn captured(&mut self, frames: u64) {
        let _ = self.frames_captured.publish(frames);
    }
}

/// A simulated motorised stage.
#[derive(Thing)]
#[thing(title = "Simulated stage")]
pub struct Stage {
    /// Position in steps: x, y and z.
    #[property]
    pub position: Property<[i64; 3]>,
    /// A move finished: the new position.
    #[event(unit = "steps")]
    pub moved: Event<[i64; 3]>,
    /// A move was refused because it would leave the stage's travel.
    #[event]
    pub limit_reached: Event<LimitReached>,
}

/// The stage's travel: ±this many steps on each axis.
pub const TRAVEL: i64 = 100_000;

/// A move the stage refused.
#[labthings::data]
#[derive(Debug, Clone, PartialEq)]
pub struct LimitReached {
    /// Where the move would have gone (`null` on an axis that would overflow).
    pub target: [Option<i64>; 3],
    /// The travel: ±this many steps on each axis.
    pub travel: i64,
}

impl Stage {
    pub fn new() -> Self {
        Self {
            position: Property::new([0, 0, 0]),
            moved: Event::new(),
            limit_reached: Event::new(),
        }
    }

    /// Checks a target against the travel; a refused one is reported as `limit_reached`.
    fn within_travel(&self, target: [Option<i64>; 3]) -> Result<[i64; 3], String> {
        match target {
            [Some(x), Some(y), Some(z)]
                if [x, y, z]
                    .iter()
                    .all(|axis| axis.unsigned_abs() <= TRAVEL.unsigned_abs()) =>
            {
                Ok([x, y, z])
            }
            _ => {
                let _ = self.limit_reached.emit(LimitReached {
                    target,
                    travel: TRAVEL,
                });
                let shown =
                    target.map(|axis| axis.map_or("overflow".to_owned(), |a| a.to_string()));
                Err(format!(
                    "[{}] is outside the stage's travel of ±{TRAVEL} steps per axis",
                    shown.join(", ")
                ))
            }
        }
    }

    /// Stores the new position and reports the finished move.
    fn arrive(&self, position: [i64; 3]) -> Result<[i64; 3], String> {
        self.position
            .publish(position)
            .map_err(|error| error.to_string())?;
        let _ = self.moved.emit(position);
        Ok(position)
    }
}

#[thing_actions]
impl Stage {
    /// Move by a number of steps on each axis, and return the new position.
    ///
    /// Moves of one stage never overlap: a second move waits for the first.
    #[action(lock = "motion", output_unit = "steps")]
    fn move_relative(
        &self,
        #[unit = "steps"] x: i64,
        #[unit = "steps"] y: i64,
        #[unit = "steps"] z: Option<i64>,
    ) -> Result<[i64; 3], String> {
        let [px, py, pz] = self.position.get();
        let target = self.within_travel([
            px.checked_add(x),
            py.checked_add(y),
            pz.checked_add(z.unwrap_or(0)),
        ])?;
        // A real stage would take time; this one takes a moment per move.
        std::thread::sleep(Duration::from_millis(20));
        self.arrive(target)
    }

    /// Move to an absolute position, within the stage's travel of ±100000 steps per axis.
    #[action(lock = "motion", output_unit = "steps")]
    fn move_to(&self, x: i64, y: i64, z: i64) -> Result<[i64; 3], String> {
        let target = self.within_travel([Some(x), Some(y), Some(z)])?;
        std::thread::sleep(Duration::from_millis(20));
        self.arrive(target)
    }

    /// Return to [0, 0, 0], slowly (about 2 s), unless cancelled.
    #[action(lock = "motion")]
    async fn home(&self, ctx: ActionContext) -> Result<[i64; 3], Cancelled> {
        let start = self.position.get();
        for step in 1..=20 {
            ctx.sleep(Duration::from_millis(100)).await?;
            let fraction = f64::from(step) / 20.0;
            let now = start.map(|axis| axis - (axis as f64 * fraction) as i64);
            let _ = self.position.publish(now);
            ctx.set_progress(fraction);
        }
        ctx.info("homed");
        let _ = self.moved.emit(self.position.get());
        Ok(self.position.get())
    }
}

/// The simulated instruments this project ships, by type name, for configuration files.
pub fn registry() -> labthings::server::ThingRegistry {
    labthings::server::ThingRegistry::new()
        .register("simulated_stage", |_: NoArgs, _| Ok(Stage::new()))
        .register("simulated_camera", |args: CameraArgs, things| {
            args.check()?;
            let settings = CameraSettings {
                width: args.width,
                height: args.height,
                fps: args.fps,
                drift: args.drift,
                ..CameraSettings::default()
            };
            let camera = Camera::new(settings);
            Ok(match args.stage {
                true => camera.with_stage(&*things.slot::<Stage>("stage")?),
                false => camera,
            })
        })
}

/// The camera of `examples/camera.rs`, alone.
pub const CAMERA_CONFIG: &str = r#"{"things": {"camera": "simulated_camera"}}"#;

/// The microscope the README's first command starts: a stage and a camera looking through it.
pub const MICROSCOPE_CONFIG: &str = r#"{
    "title": "Simulated microscope",
    "version": "1.0.0",
    "description": "A simulated stage, and a camera that looks through it: move the stage and the image moves.",
    "things": {
        "stage": "simulated_stage",
        "camera": {"class": "simulated_camera", "kwargs": {"stage": true}}
    }
}"#;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Arguments of `simulated_camera` in a configuration file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraArgs {
    #[serde(default = "default_width")]
    width: usize,
    #[serde(default = "default_height")]
    height: usize,
    #[serde(default = "default_fps")]
    fps: f64,
    /// Whether the camera looks through the stage (slot `stage`).
    #[serde(default)]
    stage: bool,
    /// Whether the test pattern drifts over time (default true).
    #[serde(default = "default_drift")]
    drift: bool,
}

/// The largest simulated image side: a real sensor's (8K), far from what would not fit in
/// memory.
pub const MAX_SIDE: usize = 8192;

impl CameraArgs {
    /// Sizes and rates a camera can have, checked before anything is allocated: a wrong one
    /// is a one-line configuration error, not an abort after "serving on".
    fn check(&self) -> Result<(), String> {
        for (name, side) in [("width", self.width), ("height", self.height)] {
            if !(16..=MAX_SIDE).contains(&side) {
                return Err(format!(
                    "kwargs `{name}` is {side}; a camera's {name} is 16 to {MAX_SIDE} pixels"
                ));
            }
        }
        if !(self.fps.is_finite() && (0.1..=240.0).contains(&self.fps)) {
            return Err(format!(
                "kwargs `fps` is {}; a camera runs at 0.1 to 240 frames a second",
                self.fps
            ));
        }
        Ok(())
    }
}

fn default_drift() -> bool {
    true
}

fn default_width() -> usize {
    640
}
fn default_height() -> usize {
    480
}
fn default_fps() -> f64 {
    30.0
}
