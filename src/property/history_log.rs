//! A property's history appended to disk: `<data folder>/history/<thing>/<property>.csv`.
//!
//! The property never waits for the disk. Each finished sample goes into a bounded queue
//! (`try_send`: a full queue drops the sample and counts it); a writer thread of its own turns
//! the queue into whole CSV lines and writes them once a second with one `write` call, so the
//! file always ends at a line's end: a process killed at any moment leaves every line written
//! before readable. The file is rotated at [`ROTATE_BYTES`] (`.1.csv` the newest old one, up to
//! [`KEPT_FILES`] kept). A failed write is logged, counted and served with the history; the
//! writer tries again with the next batch.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// A log file is rotated once it is this large.
pub const ROTATE_BYTES: u64 = 16 << 20;
/// How many rotated files are kept beside the current one.
pub const KEPT_FILES: usize = 4;
/// How often the writer writes what it has.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Samples queued for the writer at most; more are dropped and counted.
const QUEUE: usize = 8192;

/// How a history's disk log is doing, served with the history.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct LogStatus {
    /// The file being written, relative to the data folder.
    pub path: String,
    /// Samples written to disk.
    pub written: u64,
    /// Samples dropped because the writer fell behind (a disk that stalls).
    pub dropped: u64,
    /// The last write error, if the last write failed.
    pub error: Option<String>,
}

/// The sending side: what the history holds.
#[derive(Debug)]
pub(crate) struct HistoryLog {
    queue: SyncSender<(DateTime<Utc>, Value)>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    shown_path: String,
    written: AtomicU64,
    dropped: AtomicU64,
    error: Mutex<Option<String>>,
}

impl HistoryLog {
    /// Opens (creating folders) `<data>/history/<thing>/<property>.csv` for appending and
    /// starts its writer thread. `header` is the CSV column of the values.
    ///
    /// # Errors
    ///
    /// A sentence naming the file, if it cannot be created or opened.
    pub(crate) fn open(
        data_folder: &Path,
        thing: &str,
        property: &str,
        header: String,
    ) -> Result<Self, String> {
        let relative = PathBuf::from("history")
            .join(thing)
            .join(format!("{property}.csv"));
        let path = data_folder.join(&relative);
        let shown_path = relative.display().to_string();
        let folder = path.parent().unwrap_or(data_folder);
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        let file = open_append(&path, &header)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let (queue, received) = std::sync::mpsc::sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            shown_path,
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            error: Mutex::new(None),
        });
        let writer = Writer {
            path,
            header,
            file,
            shared: shared.clone(),
            rotate_at: ROTATE_BYTES,
        };
        std::thread::Builder::new()
            .name(format!("history-{thing}-{property}"))
            .spawn(move || writer.run(&received))
            .map_err(|e| format!("cannot start the history writer: {e}"))?;
        Ok(Self { queue, shared })
    }

    /// Queues a finished sample; never blocks.
    pub(crate) fn send(&self, timestamp: DateTime<Utc>, value: Value) {
        match self.queue.try_send((timestamp, value)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                if self.shared.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        file = %self.shared.shown_path,
                        "the history log falls behind: samples are dropped (counted in its status)"
                    );
                }
            }
        }
    }

    /// How the log is doing.
    pub(crate) fn status(&self) -> LogStatus {
        LogStatus {
            path: self.shared.shown_path.clone(),
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            error: self
                .shared
                .error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Opens `path` for appending, writing `header` first if the file is new or empty.
fn open_append(path: &Path, header: &str) -> std::io::Result<File> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    if file.metadata()?.len() == 0 {
        file.write_all(format!("timestamp,{header}\r\n").as_bytes())?;
    }
    Ok(file)
}

/// The writer thread's side.
struct Writer {
    path: PathBuf,
    header: String,
    file: File,
    shared: Arc<Shared>,
    /// Rotate at this size ([`ROTATE_BYTES`]).
    rotate_at: u64,
}

impl Writer {
    fn run(mut self, received: &Receiver<(DateTime<Utc>, Value)>) {
        let mut batch = String::new();
        let mut lines = 0u64;
        let mut last_write = Instant::now();
        loop {
            let wait = FLUSH_EVERY.saturating_sub(last_write.elapsed());
            let open = match received.recv_timeout(wait) {
                Ok((timestamp, value)) => {
                    push_line(&mut batch, timestamp, &value);
                    lines += 1;
                    true
                }
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => false,
            };
            if !batch.is_empty() && (!open || last_write.elapsed() >= FLUSH_EVERY) {
                if self.write(&batch) {
                    self.shared.written.fetch_add(lines, Ordering::Relaxed);
                    batch.clear();
                    lines = 0;
                } else if batch.len() > 4 << 20 {
                    // A disk that refuses for long: keep memory bounded.
                    self.shared.dropped.fetch_add(lines, Ordering::Relaxed);
                    batch.clear();
                    lines = 0;
                }
                last_write = Instant::now();
            } else if batch.is_empty() {
                last_write = Instant::now();
            }
            if !open {
                return;
            }
        }
    }

    /// Writes whole lines in one call, rotating first if the file is full; false on failure
    /// (said once per different error, kept in the status).
    fn write(&mut self, batch: &str) -> bool {
        let result = self.rotate_if_full().and_then(|()| {
            self.file.write_all(batch.as_bytes())?;
            self.file.flush()
        });
        let mut error = self.shared.error.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                *error = None;
                true
            }
            Err(failure) => {
                let message = failure.to_string();
                if error.as_deref() != Some(&message) {
                    tracing::error!(file = %self.path.display(), error = %message, "the history log could not be written");
                }
                *error = Some(message);
                false
            }
        }
    }

    fn rotate_if_full(&mut self) -> std::io::Result<()> {
        if self.file.metadata()?.len() < self.rotate_at {
            return Ok(());
        }
        let numbered = |n: usize| self.path.with_extension(format!("{n}.csv"));
        for n in (1..KEPT_FILES).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = open_append(&self.path, &self.header)?;
        Ok(())
    }
}

/// One CSV line: the timestamp, then the value (a number, string or boolean as itself, any
/// other value as its JSON, quoted).
fn push_line(batch: &mut String, timestamp: DateTime<Utc>, value: &Value) {
    batch.push_str(&timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    batch.push(',');
    let cell = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    };
    batch.push_str(&csv_field(&cell));
    batch.push_str("\r\n");
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_are_whole_and_a_reopened_log_appends() {
        let folder = tempfile::tempdir().unwrap();
        let log = HistoryLog::open(folder.path(), "oven", "t", "t [°C]".into()).unwrap();
        let start = Utc::now();
        for i in 0..5 {
            log.send(
                start + chrono::TimeDelta::milliseconds(i),
                json!(i as f64 + 0.5),
            );
        }
        log.send(start + chrono::TimeDelta::seconds(1), json!({"a": "b,c"}));
        let status = log.status();
        assert_eq!(status.path, "history/oven/t.csv");
        drop(log); // the writer writes what it has and ends
        let path = folder.path().join("history/oven/t.csv");
        let deadline = Instant::now() + Duration::from_secs(5);
        let text = loop {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.lines().count() == 7 || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "timestamp,t [°C]");
        assert!(lines[1].ends_with(",0.5"), "{text}");
        assert_eq!(
            lines[6].split_once(',').unwrap().1,
            "\"{\"\"a\"\":\"\"b,c\"\"}\""
        );
        assert_eq!(lines[7], "", "the file ends at a line's end");

        // A reopened log appends without a second header.
        let log = HistoryLog::open(folder.path(), "oven", "t", "t [°C]".into()).unwrap();
        log.send(Utc::now(), json!(9));
        drop(log);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap().lines().count() < 8 {
            assert!(Instant::now() < deadline, "appended");
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("timestamp,").count(), 1);
    }

    #[test]
    fn a_failed_write_is_kept_in_the_status_and_the_batch_is_tried_again() {
        let shared = Arc::new(Shared {
            shown_path: "history/oven/t.csv".into(),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            error: Mutex::new(None),
        });
        // A disk that is full: every write fails with ENOSPC.
        let file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut writer = Writer {
            path: PathBuf::from("/dev/full"),
            header: "t".into(),
            file,
            shared: shared.clone(),
            rotate_at: ROTATE_BYTES,
        };
        assert!(!writer.write("2026-12-06T14:00:00.000000Z,1\r\n"));
        let error = shared.error.lock().unwrap().clone().unwrap();
        assert!(error.contains("No space left"), "{error}");
        // Room again (a file that takes writes): the error goes.
        let folder = tempfile::tempdir().unwrap();
        writer.file = File::create(folder.path().join("t.csv")).unwrap();
        writer.path = folder.path().join("t.csv");
        assert!(writer.write("2026-12-06T14:00:00.000000Z,1\r\n"));
        assert!(shared.error.lock().unwrap().is_none());
    }

    #[test]
    fn a_full_file_is_rotated_and_only_so_many_old_ones_are_kept() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("t.csv");
        let mut writer = Writer {
            path: path.clone(),
            header: "t".into(),
            file: open_append(&path, "t").unwrap(),
            shared: Arc::new(Shared {
                shown_path: "t.csv".into(),
                written: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                error: Mutex::new(None),
            }),
            rotate_at: 100,
        };
        let line = "2026-12-06T14:00:00.000000Z,1.5\r\n";
        for _ in 0..30 {
            assert!(writer.write(&line.repeat(2)));
        }
        let mut names: Vec<String> = std::fs::read_dir(folder.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["t.1.csv", "t.2.csv", "t.3.csv", "t.4.csv", "t.csv"]);
        for name in names {
            let text = std::fs::read_to_string(folder.path().join(name)).unwrap();
            assert!(
                text.starts_with("timestamp,t\r\n") && text.ends_with("\r\n"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_a_clear_error() {
        let folder = tempfile::tempdir().unwrap();
        let blocker = folder.path().join("history");
        std::fs::write(&blocker, b"a file where the folder should be").unwrap();
        let error = HistoryLog::open(folder.path(), "oven", "t", "t".into()).unwrap_err();
        assert!(error.starts_with("cannot create"), "{error}");
    }
}
