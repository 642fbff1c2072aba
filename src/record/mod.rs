//! Recording a live stream to disk: the action `#[stream(record)]` gives a stream.
//!
//! A recording is written to `<data folder>/recordings/` as three files with one name:
//!
//! - `<name>.avi`: Motion JPEG in AVI, each frame the stream's own JPEG byte for byte (no
//!   re-encoding), which ffmpeg, OpenCV and ImageJ/Fiji open directly;
//! - `<name>.csv`: the index, one row per frame: `frame` (0, 1, ...), `stream_index` (the
//!   frame's index in its stream: gaps are frames skipped), `timestamp` (when it was captured,
//!   RFC 3339, UTC, microseconds) and `bytes`;
//! - `<name>.json`: what was recorded and how (stream, start, arguments) and the instrument's
//!   state at the start (every Thing's readable properties), written before the first frame and
//!   completed with the counts at the end.
//!
//! Frames go to a writer thread through a bounded queue: the recording never holds up the
//! stream or its viewers, and never buffers without bound (a disk slower than the camera loses
//! frames, counted in the log and visible as gaps in `stream_index`). A write error (a full
//! disk, a read-only folder) ends the invocation as `error`, naming the file, which stays a
//! playable AVI of the frames written before it (its header is brought up to date every 15
//! frames, so a file cut short is still valid).

pub(crate) mod avi;

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::action::{ActionContext, ActionDescriptor, Blob, InputError};
use crate::stream::{MjpegStream, RingbufferEntry, StreamError};

/// The media type of the recordings' video.
pub const AVI_MEDIA_TYPE: &str = "video/x-msvideo";
/// Frames queued for the writer thread; past this, frames are dropped (and counted).
const QUEUE_FRAMES: usize = 120;

/// The arguments of a stream's `record_<stream>` action.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "record_input")]
pub struct RecordInput {
    /// How long to record, in seconds (at most a day); `null` records until the invocation is
    /// cancelled. Cancelling always ends a recording early, keeping what was recorded.
    #[serde(default = "ten_seconds", deserialize_with = "seconds")]
    #[schemars(default = "ten_seconds", range(min = 0.001, max = 86400.0))]
    pub seconds: Option<f64>,
    /// The most frames per second to keep, to save space (frames are taken evenly from the
    /// stream's); by default every frame.
    #[serde(default, deserialize_with = "rate")]
    #[schemars(range(min = 0.001, max = 1000.0))]
    pub max_fps: Option<f64>,
    /// Start with this many seconds of frames from before the call, from those the stream
    /// still holds in memory (its ring buffer: `#[stream(ringbuffer = N)]` frames).
    #[serde(default, deserialize_with = "pre_seconds")]
    #[schemars(range(min = 0.0, max = 3600.0))]
    pub pre_seconds: f64,
}

#[allow(clippy::unnecessary_wraps)]
fn ten_seconds() -> Option<f64> {
    Some(10.0)
}

fn within<'de, D: serde::Deserializer<'de>>(
    value: f64,
    min: f64,
    max: f64,
    what: &str,
) -> Result<f64, D::Error> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "{what} must be from {min} to {max}, not {value}"
        )))
    }
}

fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(deserializer)?
        .map(|value| within::<D>(value, 0.001, 86_400.0, "seconds"))
        .transpose()
}

fn rate<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(deserializer)?
        .map(|value| within::<D>(value, 0.001, 1000.0, "max_fps"))
        .transpose()
}

fn pre_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    within::<D>(f64::deserialize(deserializer)?, 0.0, 3600.0, "pre_seconds")
}

/// The recording action of a stream: `record_<stream>` for `#[stream(record)]`.
pub(crate) fn action<T: Send + Sync + 'static>(
    name: &'static str,
    stream: &'static str,
    access: for<'a> fn(&'a T) -> &'a MjpegStream,
) -> ActionDescriptor<T> {
    let mut action = ActionDescriptor::from_async(
        name,
        move |thing: Arc<T>, input: RecordInput, context: ActionContext| {
            let live = access(&thing).clone();
            async move { record(&live, stream, &input, &context).await }
        },
    )
    .with_docs(
        Some("Record the stream to a video file"),
        Some(
            "Records the live stream as Motion JPEG in AVI (each frame as the camera gave it), \
             with an index of every frame's capture time (CSV) and the instrument's state at the \
             start (JSON) beside it, in the server's data folder. The output is the video. \
             Cancel to stop early: what was recorded is kept. The server runs a few \
             recordings at once (`max_recordings`, `max_recordings_per_stream`): past them, \
             503 with Retry-After.",
        ),
    )
    .with_cancellable(true);
    // `pre_seconds` is checked against the history armed now, with the rest of the input:
    // asking for more is bad input (422) before anything runs.
    let parse = action.prepare.clone();
    action.prepare = Arc::new(move |thing, input| {
        let pre_seconds = input.get("pre_seconds").and_then(Value::as_f64);
        let history = access(&thing).history_seconds();
        let starter = parse(thing, input)?;
        check_history(pre_seconds.unwrap_or(0.0), history)?;
        Ok(starter)
    });
    action.recording = true;
    action
}

/// A recording's `pre_seconds` must be within the stream's armed pre-trigger history: frames
/// from before the call exist only if the stream kept encoding with nobody watching.
fn check_history(pre_seconds: f64, armed: f64) -> Result<(), InputError> {
    if pre_seconds <= armed {
        return Ok(());
    }
    let held = if armed > 0.0 {
        format!("only {armed} s are armed")
    } else {
        "none is armed (the stream stops encoding when nobody watches)".to_owned()
    };
    Err(InputError {
        field: "pre_seconds".to_owned(),
        reason: format!(
            "asks for {pre_seconds} s of frames from before the call, but the stream keeps \
             pre-trigger history only while it is armed, and {held}; arm at least that much \
             (the Thing's history setting, or `MjpegStream::arm_history`) and let it fill, or \
             ask for less"
        ),
    })
}

/// What the writer thread did.
#[derive(Debug, Default)]
struct Written {
    frames: u64,
    bytes: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    /// Why it stopped early, if it did (not an error: the file size limit).
    stopped: Option<String>,
}

async fn record(
    live: &MjpegStream,
    stream: &str,
    input: &RecordInput,
    context: &ActionContext,
) -> Result<Blob, String> {
    let folder = context
        .data_folder()
        .ok_or("this server keeps no data folder (`data_folder` is null): a recording has nowhere to go")?
        .join("recordings");
    record_into(&folder, live, stream, input, context).await
}

/// Records `live` into `folder` as the `record_<stream>` action does (files named after
/// `stream` and the start time), reporting to `context` (use
/// [`ActionContext::detached`] outside an action): for recording from your own code.
///
/// # Errors
///
/// The folder cannot be made, a file cannot be written (the files keep what was written), or
/// no frame came.
pub async fn record_into(
    folder: &Path,
    live: &MjpegStream,
    stream: &str,
    input: &RecordInput,
    context: &ActionContext,
) -> Result<Blob, String> {
    std::fs::create_dir_all(folder)
        .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
    let started = Utc::now();
    let stem = format!(
        "{stream}_{}_{}",
        started.format("%Y%m%d-%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let files = Files {
        video: folder.join(format!("{stem}.avi")),
        index: folder.join(format!("{stem}.csv")),
        about: folder.join(format!("{stem}.json")),
    };
    let mut about = json!({
        "stream": stream,
        "started": started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "seconds": input.seconds,
        "max_fps": input.max_fps,
        "pre_seconds": input.pre_seconds,
        "video": file_name(&files.video),
        "index": file_name(&files.index),
        "snapshot": context.snapshot(),
    });
    write_json(&files.about, &about)?;
    context.info(format!("recording to {}", files.video.display()));

    // The stream stays watched between two frames, so a producer that pauses while nobody
    // watches (a frame pipeline) keeps producing for the recording.
    let _demand = live.demand();
    let mut picker = Picker::new(input.max_fps);
    let mut offered = Offered::default();
    // The frames from before the call: already in memory (shared, not copied), so they go to
    // the writer whole, however many there are; only live frames can be dropped for a slow
    // disk.
    let from = started
        - chrono::Duration::from_std(Duration::from_secs_f64(input.pre_seconds))
            .unwrap_or_default();
    let mut last_index = None;
    let mut before = Vec::new();
    for entry in live.held_frames() {
        if input.pre_seconds > 0.0 && entry.timestamp >= from {
            last_index = Some(entry.index);
            if picker.keep(entry.timestamp) {
                before.push(entry);
            }
        }
    }
    // Say so when the history holds less than was asked for (armed too recently, or a ring
    // buffer shorter than the armed time at this frame rate): never silently less.
    let available = live.held_frames().first().map_or(0.0, |oldest| {
        ((started - oldest.timestamp).num_milliseconds() as f64 / 1000.0).max(0.0)
    });
    if input.pre_seconds > 0.0 && available + 0.05 < input.pre_seconds {
        context.warn(format!(
            "asked for {} s before the call; the stream held {available:.2} s ({} frames): \
             all of it is recorded",
            input.pre_seconds,
            before.len()
        ));
    }
    if input.pre_seconds > 0.0 {
        about["pre_seconds_available"] = json!((available * 1000.0).round() / 1000.0);
    }
    let (queue, frames) = std::sync::mpsc::sync_channel::<RingbufferEntry>(QUEUE_FRAMES);
    let writer = {
        let files = files.clone();
        let fps = input.max_fps.unwrap_or(30.0);
        std::thread::Builder::new()
            .name("labthings-recorder".into())
            .spawn(move || write_frames(before.into_iter().chain(frames), &files, fps))
            .map_err(|error| format!("cannot start the recording thread: {error}"))?
    };
    if last_index.is_none() {
        last_index = live.latest().map(|entry| entry.index);
    }
    let deadline = input
        .seconds
        .map(|seconds| tokio::time::Instant::now() + Duration::from_secs_f64(seconds));
    let until = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    let stopped = loop {
        let next = async {
            match last_index {
                Some(index) => live.next_frame_after(index).await,
                None => live.grab_frame().await,
            }
        };
        tokio::select! {
            () = &mut until => break None,
            () = context.cancelled() => break Some("cancelled".to_owned()),
            frame = next => match frame {
                Ok(entry) => {
                    if let Some(last) = last_index {
                        offered.skipped += entry.index.saturating_sub(last + 1);
                    }
                    last_index = Some(entry.index);
                    if !offered.offer(&queue, &mut picker, entry) {
                        break None; // the writer has stopped: its result says why
                    }
                }
                Err(StreamError::Stopped) => break Some("the stream stopped".to_owned()),
                Err(error) => break Some(error.to_string()),
            },
        }
        if let Some(seconds) = input.seconds {
            let elapsed = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
            context.set_progress((elapsed / seconds).clamp(0.0, 1.0));
        }
    };
    drop(queue);
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|error| format!("the recording thread failed: {error}"))?
        .map_err(|_| "the recording thread panicked".to_owned())?;
    let written = match written {
        Ok(written) => written,
        Err((written, error)) => {
            about["frames"] = json!(written.frames);
            about["error"] = json!(error);
            let _ = write_json(&files.about, &about);
            return Err(format!(
                "the recording stopped: {error}; the {} frames written before it are in {}",
                written.frames,
                files.video.display()
            ));
        }
    };
    if let Some(why) = &stopped {
        context.info(format!("recording ended early: {why}"));
    }
    if let Some(why) = &written.stopped {
        context.warn(why.clone());
    }
    if offered.skipped + offered.dropped > 0 {
        context.warn(format!(
            "{} frames were not recorded: {} skipped by the stream for a slow reader, {} \
             dropped because the disk was slower than the camera",
            offered.skipped + offered.dropped,
            offered.skipped,
            offered.dropped
        ));
    }
    context.info(format!(
        "recorded {} frames ({} bytes)",
        written.frames, written.bytes
    ));
    about["ended"] = json!(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    about["frames"] = json!(written.frames);
    about["frames_dropped"] = json!(offered.dropped);
    about["frames_skipped"] = json!(offered.skipped);
    about["first_frame"] = json!(
        written
            .first
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    );
    about["last_frame"] = json!(
        written
            .last
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    );
    write_json(&files.about, &about)?;
    if written.frames == 0 {
        return Err(format!(
            "no frame came from the stream while recording ({}); is the camera running?",
            stopped.as_deref().unwrap_or("the time ran out")
        ));
    }
    Ok(Blob::from_file(&files.video, AVI_MEDIA_TYPE))
}

#[derive(Debug, Clone)]
struct Files {
    video: PathBuf,
    index: PathBuf,
    about: PathBuf,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    let text = serde_json::to_vec_pretty(value).unwrap_or_default();
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Takes frames evenly at a capped rate, by their timestamps: a frame is kept when it falls
/// in a later slot of `1 / max_fps` seconds than the last one kept.
struct Picker {
    interval_us: Option<i64>,
    origin: Option<DateTime<Utc>>,
    last_slot: Option<i64>,
}

impl Picker {
    fn new(max_fps: Option<f64>) -> Self {
        Self {
            interval_us: max_fps.map(|fps| ((1e6 / fps).round() as i64).max(1)),
            origin: None,
            last_slot: None,
        }
    }

    fn keep(&mut self, timestamp: DateTime<Utc>) -> bool {
        let Some(interval) = self.interval_us else {
            return true;
        };
        let origin = *self.origin.get_or_insert(timestamp);
        let slot = (timestamp - origin).num_microseconds().unwrap_or(i64::MAX) / interval;
        if self.last_slot.is_some_and(|last| slot <= last) {
            return false;
        }
        self.last_slot = Some(slot);
        true
    }
}

#[derive(Default)]
struct Offered {
    /// Frames the writer could not take in time.
    dropped: u64,
    /// Frames the stream moved past before the recorder read them.
    skipped: u64,
}

impl Offered {
    /// Queues a frame if the rate cap keeps it; `false` once the writer has gone.
    fn offer(
        &mut self,
        queue: &std::sync::mpsc::SyncSender<RingbufferEntry>,
        picker: &mut Picker,
        entry: RingbufferEntry,
    ) -> bool {
        if !picker.keep(entry.timestamp) {
            return true;
        }
        match queue.try_send(entry) {
            Ok(()) => true,
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                self.dropped += 1;
                true
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The writer thread: an AVI and its CSV index, frame by frame, until the queue closes.
fn write_frames(
    frames: impl Iterator<Item = RingbufferEntry>,
    files: &Files,
    fps_guess: f64,
) -> Result<Written, (Written, String)> {
    let mut written = Written::default();
    let mut avi: Option<avi::AviWriter<BufWriter<File>>> = None;
    let mut index: Option<BufWriter<File>> = None;
    let failed = |written: Written, path: &Path, error: std::io::Error| {
        Err((
            written,
            format!("writing {} failed: {error}", path.display()),
        ))
    };
    for entry in frames {
        if avi.is_none() {
            let Some((width, height)) = avi::jpeg_size(&entry.frame) else {
                continue;
            };
            let file = match File::create(&files.video) {
                Ok(file) => file,
                Err(error) => return failed(written, &files.video, error),
            };
            match avi::AviWriter::new(
                BufWriter::with_capacity(64 * 1024, file),
                width,
                height,
                fps_guess,
            ) {
                Ok(writer) => avi = Some(writer),
                Err(error) => return failed(written, &files.video, error),
            }
            let created = File::create(&files.index)
                .map(BufWriter::new)
                .and_then(|mut csv| {
                    csv.write_all(b"frame,stream_index,timestamp,bytes\n")?;
                    Ok(csv)
                });
            match created {
                Ok(csv) => index = Some(csv),
                Err(error) => return failed(written, &files.index, error),
            }
        }
        let (Some(writer), Some(csv)) = (avi.as_mut(), index.as_mut()) else {
            continue;
        };
        if !writer.fits(entry.frame.len()) {
            written.stopped = Some(format!(
                "the recording reached the AVI size limit ({} bytes) and stopped there",
                avi::MAX_FILE_BYTES
            ));
            break;
        }
        if let Err(error) = writer.write_frame(&entry.frame) {
            return failed(written, &files.video, error);
        }
        let row = format!(
            "{},{},{},{}\n",
            written.frames,
            entry.index,
            entry
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            entry.frame.len()
        );
        if let Err(error) = csv.write_all(row.as_bytes()) {
            return failed(written, &files.index, error);
        }
        written.frames += 1;
        written.bytes += entry.frame.len() as u64;
        written.first.get_or_insert(entry.timestamp);
        written.last = Some(entry.timestamp);
    }
    if let Some(mut writer) = avi {
        // The header states the rate the frames really came at.
        if let (Some(first), Some(last)) = (written.first, written.last)
            && written.frames > 1
        {
            let seconds = (last - first).num_microseconds().unwrap_or(0) as f64 / 1e6;
            if seconds > 0.0 {
                writer.set_rate((written.frames - 1) as f64 / seconds);
            }
        }
        let finished = writer
            .finish()
            .and_then(|out| {
                out.into_inner()
                    .map_err(std::io::IntoInnerError::into_error)
            })
            .and_then(|file| file.sync_all());
        if let Err(error) = finished {
            return failed(written, &files.video, error);
        }
    }
    if let Some(mut csv) = index {
        let finished = csv
            .flush()
            .and_then(|()| {
                csv.into_inner()
                    .map_err(std::io::IntoInnerError::into_error)
            })
            .and_then(|file| file.sync_all());
        if let Err(error) = finished {
            return failed(written, &files.index, error);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_cap_takes_frames_evenly() {
        let start = Utc::now();
        let mut picker = Picker::new(Some(10.0));
        // A 15 fps stream for 2 s: about 20 frames kept, not 15 (every other one).
        let kept = (0..30)
            .filter(|n| picker.keep(start + chrono::Duration::microseconds(n * 66_667)))
            .count();
        assert!((19..=21).contains(&kept), "{kept}");
        let mut every = Picker::new(None);
        assert!((0..5).all(|n| every.keep(start + chrono::Duration::milliseconds(n))));
    }

    #[test]
    fn arguments_out_of_range_are_refused_naming_them() {
        let input: RecordInput = serde_json::from_value(json!({})).unwrap();
        assert_eq!(input.seconds, Some(10.0));
        assert_eq!(input.pre_seconds, 0.0);
        let forever: RecordInput = serde_json::from_value(json!({"seconds": null})).unwrap();
        assert_eq!(forever.seconds, None);
        for bad in [
            json!({"seconds": -1}),
            json!({"max_fps": 0}),
            json!({"pre_seconds": 1e9}),
        ] {
            let error = serde_json::from_value::<RecordInput>(bad.clone()).unwrap_err();
            let key = bad.as_object().unwrap().keys().next().unwrap().clone();
            assert!(error.to_string().contains(&key), "{error}");
        }
    }

    /// The frames a stream already holds are recorded whole, however many more than the
    /// writer's queue they are (issue 28, point 10): none is "dropped because the disk was
    /// slower than the camera", since none had to wait for the camera.
    #[tokio::test]
    async fn every_pre_trigger_frame_in_memory_is_recorded() {
        let stream = MjpegStream::with_ringbuffer_size(400);
        let jpeg = {
            let mut image = Vec::new();
            jpeg_encoder::Encoder::new(&mut image, 90)
                .encode(&[128u8; 16 * 16], 16, 16, jpeg_encoder::ColorType::Luma)
                .unwrap();
            image
        };
        let held = QUEUE_FRAMES * 3;
        for _ in 0..held {
            stream.add_frame(&jpeg).unwrap();
        }
        let folder = tempfile::tempdir().unwrap();
        let input: RecordInput =
            serde_json::from_value(json!({"pre_seconds": 3600, "seconds": 0.05})).unwrap();
        let context = ActionContext::detached();
        let blob = record_into(folder.path(), &stream, "test", &input, &context)
            .await
            .unwrap();
        let about = std::fs::read_dir(folder.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|e| e == "json"))
            .unwrap();
        let about: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(about).unwrap()).unwrap();
        assert_eq!(about["frames_dropped"], 0, "{about}");
        assert_eq!(about["frames"], held, "{about}");
        assert!(blob.file().is_some());
    }
}
