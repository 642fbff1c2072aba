//! The settings file of one Thing: `<settings_folder>/<thing>/settings.json`.
//!
//! - Written atomically (a temporary file in the same folder, synced, then renamed over the old
//!   one), so a crash leaves either the old or the new file, never half of one.
//! - Loaded when the Thing is added. A file that is not a JSON object is reported and moved
//!   aside (`settings.json.corrupt-<time>`), never silently overwritten with defaults; a value
//!   that no longer fits its setting is reported, its default kept, and the file copied aside
//!   (`settings.json.rejected-<time>`) so nothing is lost.
//! - Keys that match no setting (a setting that was renamed or removed) are kept on save.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::Persist;

/// Reads the current values of a Thing's settings.
pub(crate) type Snapshot = Box<dyn Fn() -> Map<String, Value> + Send + Sync>;

pub(crate) struct SettingsFile {
    path: PathBuf,
    snapshot: Snapshot,
    /// Keys in the file that match no setting; written back unchanged.
    unknown: Mutex<Map<String, Value>>,
    /// One write at a time, each with the newest values.
    writing: tokio::sync::Mutex<()>,
    me: Weak<SettingsFile>,
}

/// What loading a settings file found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) values: Map<String, Value>,
}

/// A settings file that could not be used, and where it was put.
#[derive(Debug, thiserror::Error)]
#[error(
    "settings file {path} is not usable ({reason}); it was moved to {aside} and defaults are used"
)]
pub(crate) struct CorruptSettings {
    pub(crate) path: PathBuf,
    pub(crate) aside: PathBuf,
    pub(crate) reason: String,
}

impl SettingsFile {
    pub(crate) fn new(path: PathBuf, snapshot: Snapshot) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            path,
            snapshot,
            unknown: Mutex::new(Map::new()),
            writing: tokio::sync::Mutex::new(()),
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
    /// [`CorruptSettings`] if it exists but is not a JSON object; it has been moved aside.
    pub(crate) fn load(path: &Path) -> Result<Option<Loaded>, CorruptSettings> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(set_aside(path, "corrupt", error.to_string())),
        };
        match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(values)) => Ok(Some(Loaded { values })),
            Ok(other) => Err(set_aside(
                path,
                "corrupt",
                format!("expected a JSON object, found {}", json_kind(&other)),
            )),
            Err(error) => Err(set_aside(path, "corrupt", format!("invalid JSON: {error}"))),
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
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { me.save().await });
            }
            Err(_) => {
                // Outside any runtime (a plain thread): write here and now.
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
    if let Err(error) = std::fs::rename(path, &aside) {
        tracing::error!(%error, path = %path.display(), "could not move a bad settings file aside");
    }
    CorruptSettings {
        path: path.to_owned(),
        aside,
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

    #[test]
    fn corrupt_files_are_moved_aside_not_overwritten() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("settings.json");
        std::fs::write(&path, b"{\"gain\": 2.0,").unwrap();
        let error = SettingsFile::load(&path).unwrap_err();
        assert!(!path.exists(), "the bad file is no longer in the way");
        assert_eq!(std::fs::read(&error.aside).unwrap(), b"{\"gain\": 2.0,");
        assert!(error.to_string().contains("invalid JSON"), "{error}");

        std::fs::write(&path, b"[1, 2]").unwrap();
        let error = SettingsFile::load(&path).unwrap_err();
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
