//! The settings file of one Thing: `<settings_folder>/<thing>/settings.json`.
//!
//! - Written atomically (a temporary file in the same folder, synced, then renamed over the old
//!   one), so a crash leaves either the old or the new file, never half of one.
//! - Loaded when the Thing is added. A file that is not a JSON object is reported and moved
//!   aside (`settings.json.corrupt-<time>`), never silently overwritten with defaults; a value
//!   that no longer fits its setting is reported, its default kept, and the file copied aside
//!   (`settings.json.rejected-<time>`) so nothing is lost.
//! - Keys that match no setting (a setting that was renamed or removed) are kept on save.
//! - A value the instrument publishes often (a setting updated every 0.5 s) is not written and
//!   synced each time: writes from `Property::publish` are coalesced, the file written at most
//!   once per [`COALESCE`] with the newest values, and the server writes it once more when it
//!   stops. A write from a client (`PUT`, `Property::set`) is written at once, so that a failure
//!   is answered.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::binding::Persist;

/// The longest a published setting waits before it is written: the bound on what a crash (not
/// a clean stop, which writes at once) can lose.
pub(crate) const COALESCE: Duration = Duration::from_secs(1);

/// Reads the current values of a Thing's settings.
pub(crate) type Snapshot = Box<dyn Fn() -> Map<String, Value> + Send + Sync>;

pub(crate) struct SettingsFile {
    path: PathBuf,
    snapshot: Snapshot,
    /// Keys in the file that match no setting; written back unchanged.
    unknown: Mutex<Map<String, Value>>,
    /// One write at a time, each with the newest values.
    writing: tokio::sync::Mutex<()>,
    /// A coalesced write is scheduled and has not started yet.
    scheduled: AtomicBool,
    /// Where a publish from a plain thread schedules its write: the runtime the file was made
    /// in, if any.
    runtime: Option<tokio::runtime::Handle>,
    me: Weak<SettingsFile>,
}

/// What loading a settings file found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) values: Map<String, Value>,
}

/// A settings file that is not JSON settings, and where it was put.
#[derive(Debug)]
pub(crate) struct CorruptSettings {
    pub(crate) path: PathBuf,
    /// Where it was moved, or why it could not be.
    pub(crate) aside: Result<PathBuf, String>,
    pub(crate) reason: String,
}

impl std::fmt::Display for CorruptSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            path,
            aside,
            reason,
        } = self;
        let path = path.display();
        match aside {
            Ok(aside) => write!(
                f,
                "settings file {path} is not usable ({reason}); it was moved to {} and defaults \
                 are used",
                aside.display()
            ),
            Err(error) => write!(
                f,
                "settings file {path} is not usable ({reason}) and could not be moved aside \
                 ({error}); defaults are used, and saving will replace it"
            ),
        }
    }
}

/// Why a settings file was not loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// Not JSON settings: moved aside (reported; the defaults are used).
    Corrupt(CorruptSettings),
    /// Not a regular file, or unreadable: the server cannot start with it.
    Unusable(String),
}

impl SettingsFile {
    pub(crate) fn new(path: PathBuf, snapshot: Snapshot) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            path,
            snapshot,
            unknown: Mutex::new(Map::new()),
            writing: tokio::sync::Mutex::new(()),
            scheduled: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::try_current().ok(),
            me: me.clone(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Remembers keys of the loaded file that match no setting.
    pub(crate) fn keep_unknown(&self, unknown: Map<String, Value>) {
        *self
            .unknown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = unknown;
    }

    /// Reads the file, if there is one.
    ///
    /// # Errors
    ///
    /// [`LoadError::Corrupt`] if it is not a JSON object (it has been moved aside), and
    /// [`LoadError::Unusable`] if it is not a regular file or cannot be read.
    pub(crate) fn load(path: &Path) -> Result<Option<Loaded>, LoadError> {
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(LoadError::Unusable(error.to_string())),
            Ok(metadata) if !metadata.is_file() => {
                return Err(LoadError::Unusable(
                    "it is not a regular file; remove it or give another settings folder"
                        .to_owned(),
                ));
            }
            Ok(_) => {}
        }
        let text = std::fs::read(path).map_err(|error| LoadError::Unusable(error.to_string()))?;
        match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(values)) => Ok(Some(Loaded { values })),
            Ok(other) => Err(LoadError::Corrupt(set_aside(
                path,
                "corrupt",
                format!("expected a JSON object, found {}", json_kind(&other)),
            ))),
            Err(error) => Err(LoadError::Corrupt(set_aside(
                path,
                "corrupt",
                format!("invalid JSON: {error}"),
            ))),
        }
    }

    /// Removes the temporary files that saves interrupted by a crash or `SIGKILL` left beside
    /// `path` (`.settings.json.<pid>.tmp`); at start, no save of this process is under way.
    pub(crate) fn remove_stale_temporaries(path: &Path) {
        let (Some(folder), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        let prefix = format!(".{name}.");
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let stale = file_name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".tmp"))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if stale {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %entry.path().display(), "removed the temporary file of an interrupted settings save")
                    }
                    Err(error) => {
                        tracing::warn!(file = %entry.path().display(), %error, "could not remove the temporary file of an interrupted settings save")
                    }
                }
            }
        }
    }

    /// Copies the file aside (when some of its values were rejected), returning the copy's path.
    pub(crate) fn copy_aside(path: &Path) -> std::io::Result<PathBuf> {
        let aside = aside_path(path, "rejected");
        std::fs::copy(path, &aside)?;
        Ok(aside)
    }

    fn contents(&self) -> Result<Vec<u8>, String> {
        let mut values = self
            .unknown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        values.extend((self.snapshot)());
        serde_json::to_vec_pretty(&Value::Object(values)).map_err(|e| e.to_string())
    }

    async fn write(&self) -> Result<(), String> {
        let _one_at_a_time = self.writing.lock().await;
        let contents = self.contents()?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &contents))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|error| format!("writing {}: {error}", self.path.display()))
    }
}

impl Persist for SettingsFile {
    fn save(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let result = self.write().await;
            if let Err(error) = &result {
                tracing::error!(%error, "could not save settings");
            }
            result
        })
    }

    fn save_soon(&self) {
        let Some(me) = self.me.upgrade() else { return };
        // One scheduled write takes every change until it starts.
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone());
        match runtime {
            Some(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(COALESCE).await;
                    me.scheduled.store(false, Ordering::Release);
                    let _ = me.save().await;
                });
            }
            None => {
                // No runtime at all (a file made and published outside one): write now.
                self.scheduled.store(false, Ordering::Release);
                let result = me.contents().and_then(|contents| {
                    write_atomically(&me.path, &contents).map_err(|e| e.to_string())
                });
                if let Err(error) = result {
                    tracing::error!(%error, path = %me.path.display(), "could not save settings");
                }
            }
        }
    }
}

/// Writes `contents` to `path` through a synced temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("settings.json");
    let temporary = folder.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    // Make the rename itself durable; not every platform can open a folder, so best effort.
    if let Ok(folder) = std::fs::File::open(folder) {
        let _ = folder.sync_all();
    }
    Ok(())
}

fn aside_path(path: &Path, why: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{why}-{stamp}"));
    path.with_file_name(name)
}

fn set_aside(path: &Path, why: &str, reason: String) -> CorruptSettings {
    let aside = aside_path(path, why);
    CorruptSettings {
        path: path.to_owned(),
        aside: std::fs::rename(path, &aside)
            .map(|()| aside)
            .map_err(|error| error.to_string()),
        reason,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn published_values_are_written_once_per_interval_with_the_newest_value() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("settings.json");
        let value = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let file = {
            let (value, writes) = (value.clone(), writes.clone());
            SettingsFile::new(
                path.clone(),
                Box::new(move || {
                    writes.fetch_add(1, Ordering::SeqCst);
                    let mut values = Map::new();
                    values.insert("gain".into(), value.load(Ordering::SeqCst).into());
                    values
                }),
            )
        };
        // Ten publishes in half a second: one write, a second later, of the last value.
        for step in 1..=10 {
            value.store(step, Ordering::SeqCst);
            file.save_soon();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(writes.load(Ordering::SeqCst), 0, "nothing written yet");
        tokio::time::sleep(COALESCE).await;
        for _ in 0..100 {
            if path.exists() {
                break;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(10));
        }
        let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved["gain"], 10);
        assert_eq!(
            writes.load(Ordering::SeqCst),
            1,
            "one write for ten changes"
        );
        // A later change schedules a new write.
        value.store(11, Ordering::SeqCst);
        file.save_soon();
        assert!(file.scheduled.load(Ordering::SeqCst));
    }

    #[test]
    fn a_file_that_could_not_be_moved_aside_is_not_said_to_have_been() {
        let failed = CorruptSettings {
            path: PathBuf::from("/s/settings.json"),
            aside: Err("Read-only file system (os error 30)".to_owned()),
            reason: "invalid JSON".to_owned(),
        };
        let message = failed.to_string();
        assert!(!message.contains("was moved"), "{message}");
        assert!(
            message.contains("could not be moved aside (Read-only file system"),
            "{message}"
        );
    }

    #[test]
    fn corrupt_files_are_moved_aside_not_overwritten() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("settings.json");
        std::fs::write(&path, b"{\"gain\": 2.0,").unwrap();
        let corrupt = |path: &Path| match SettingsFile::load(path) {
            Err(LoadError::Corrupt(corrupt)) => corrupt,
            other => panic!("{other:?}"),
        };
        let error = corrupt(&path);
        assert!(!path.exists(), "the bad file is no longer in the way");
        assert_eq!(
            std::fs::read(error.aside.as_ref().unwrap()).unwrap(),
            b"{\"gain\": 2.0,"
        );
        assert!(error.to_string().contains("invalid JSON"), "{error}");

        std::fs::write(&path, b"[1, 2]").unwrap();
        let error = corrupt(&path);
        assert!(error.reason.contains("an array"), "{error}");
    }

    #[test]
    fn a_missing_file_is_not_an_error() {
        let folder = tempfile::tempdir().unwrap();
        assert!(
            SettingsFile::load(&folder.path().join("none.json"))
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn saving_keeps_unknown_keys_and_writes_atomically() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("camera").join("settings.json");
        let file = SettingsFile::new(
            path.clone(),
            Box::new(|| Map::from_iter([("gain".to_owned(), Value::from(3.5))])),
        );
        file.keep_unknown(Map::from_iter([("old".to_owned(), Value::from(true))]));
        file.save().await.unwrap();
        let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved, serde_json::json!({"old": true, "gain": 3.5}));
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["settings.json"], "no temporary file is left");
    }
}
