//! Stable identity: the `id` of each Thing's TD and of the server's own (`/.well-known/wot`).
//!
//! An id is a `urn:uuid:` made once and kept in `<settings folder>/identity.json`, so that it
//! is the same after a restart, or one set in the configuration (`id`, `thing_ids`). The
//! settings folder is locked while the server runs (`<settings folder>/.lock`): two servers
//! never share one, and so never share ids (or overwrite each other's settings).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ServerError;

/// The file ids are kept in, in the settings folder.
pub(crate) const IDENTITY_FILE: &str = "identity.json";

/// What `identity.json` holds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct Kept {
    /// The server's id (its `/.well-known/wot` TD).
    server: Option<String>,
    /// Each Thing's id, by name.
    things: BTreeMap<String, String>,
}

/// The ids of a server and its Things, and the lock on its settings folder (held while the
/// server lives).
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) server: String,
    pub(crate) things: BTreeMap<String, String>,
    /// Held until the server is dropped; released by the system if the process dies.
    _lock: Option<File>,
}

/// A new `urn:uuid:` (random, version 4).
fn new_id() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}

/// Whether `id` is an absolute URI (`scheme:rest`, RFC 3986), as a TD's `id` must be.
pub(crate) fn is_uri(id: &str) -> bool {
    let Some((scheme, rest)) = id.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Identity {
    /// The ids of the server and of `names`: configured ones first, then those kept in the
    /// settings folder, then new ones (which are kept). Locks the settings folder.
    ///
    /// # Errors
    ///
    /// [`ServerError::InvalidId`] for a configured id that is not a URI, or one naming a Thing
    /// the server does not have, or the same id given twice; [`ServerError::Settings`] when
    /// another running server holds the settings folder.
    pub(crate) fn resolve(
        names: &[String],
        server_id: Option<&str>,
        configured: &BTreeMap<String, String>,
        settings_folder: Option<&Path>,
    ) -> Result<Self, ServerError> {
        check_configured(names, server_id, configured)?;
        let lock = match settings_folder {
            Some(folder) => lock_folder(folder)?,
            None => None,
        };
        let path = settings_folder.map(|folder| folder.join(IDENTITY_FILE));
        let kept = path.as_deref().map(read_kept).unwrap_or_default();
        let mut next = kept.clone();
        let server = server_id
            .map(str::to_owned)
            .unwrap_or_else(|| next.server.get_or_insert_with(new_id).clone());
        let mut things = BTreeMap::new();
        for name in names {
            let id = match configured.get(name) {
                Some(id) => id.clone(),
                None => next
                    .things
                    .entry(name.clone())
                    .or_insert_with(new_id)
                    .clone(),
            };
            things.insert(name.clone(), id);
        }
        if let Some(path) = &path
            && next != kept
            && let Err(error) = write_kept(path, &next)
        {
            tracing::warn!(
                file = %path.display(),
                "the ids of this server's Things cannot be kept ({error}): they will change at \
                 the next start, and directories will list them again under new ids"
            );
        }
        Ok(Self {
            server,
            things,
            _lock: lock,
        })
    }
}

/// Configured ids are URIs, name Things the server has, and are not given twice.
fn check_configured(
    names: &[String],
    server_id: Option<&str>,
    configured: &BTreeMap<String, String>,
) -> Result<(), ServerError> {
    let mut seen = BTreeMap::new();
    for (name, id) in server_id
        .map(|id| ("the server", id))
        .into_iter()
        .chain(configured.iter().map(|(n, id)| (n.as_str(), id.as_str())))
    {
        if !is_uri(id) {
            return Err(ServerError::InvalidId(format!(
                "the id {id:?} of {name} is not a URI: use `urn:uuid:<uuid>`, or any \
                 `scheme:...` URI"
            )));
        }
        if let Some(other) = seen.insert(id, name) {
            return Err(ServerError::InvalidId(format!(
                "{other} and {name} are both given the id {id:?}: each id names one Thing"
            )));
        }
    }
    for name in configured.keys() {
        if !names.contains(name) {
            let known = names.join(", ");
            return Err(ServerError::InvalidId(format!(
                "`thing_ids` names {name:?}, which is not one of this server's Things \
                 ({known})"
            )));
        }
    }
    Ok(())
}

/// Locks `<folder>/.lock` (creating the folder), so that a second server on the same
/// settings folder is refused. A file system without locks is logged, not fatal.
fn lock_folder(folder: &Path) -> Result<Option<File>, ServerError> {
    let unusable = |reason: String| ServerError::Settings {
        path: folder.to_owned(),
        reason,
    };
    std::fs::create_dir_all(folder).map_err(|e| unusable(format!("cannot create it: {e}")))?;
    let path = folder.join(".lock");
    let file = match File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(file = %path.display(), "cannot lock the settings folder: {error}");
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(unusable(
            "another running server uses this settings folder. Give each server its own \
             (`--settings-folder`, or `settings_folder` in its configuration): servers that \
             share one would share ids and overwrite each other's settings"
                .to_owned(),
        )),
        Err(std::fs::TryLockError::Error(error)) => {
            tracing::warn!(file = %path.display(), "cannot lock the settings folder: {error}");
            Ok(None)
        }
    }
}

/// What `path` holds; nothing if it is missing. An unreadable file is moved aside (and
/// logged), and new ids are made.
fn read_kept(path: &Path) -> Kept {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Kept::default(),
        Err(error) => {
            tracing::error!(file = %path.display(), "cannot read the kept ids: {error}; new ids are made");
            return Kept::default();
        }
    };
    match serde_json::from_str(&text) {
        Ok(kept) => kept,
        Err(error) => {
            let aside = aside_path(path);
            let moved = std::fs::rename(path, &aside)
                .map(|()| format!("moved to {}", aside.display()))
                .unwrap_or_else(|e| format!("could not be moved aside: {e}"));
            tracing::error!(
                file = %path.display(),
                "the kept ids are not valid JSON ({error}); the file {moved}, and new ids are made"
            );
            Kept::default()
        }
    }
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    path.with_extension(format!("json.unreadable-{stamp}"))
}

/// Writes `kept` to `path` whole or not at all (a temporary file renamed over it).
fn write_kept(path: &Path, kept: &Kept) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(kept).map_err(std::io::Error::other)?;
    text.push('\n');
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text)?;
    File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn ids_are_made_once_and_read_back_and_a_thing_added_later_gets_its_own() {
        let folder = tempfile::tempdir().unwrap();
        let first = Identity::resolve(
            &names(&["camera"]),
            None,
            &BTreeMap::new(),
            Some(folder.path()),
        )
        .unwrap();
        assert!(first.server.starts_with("urn:uuid:"), "{}", first.server);
        let camera = first.things["camera"].clone();
        assert_ne!(camera, first.server);
        drop(first);
        let second = Identity::resolve(
            &names(&["camera", "stage"]),
            None,
            &BTreeMap::new(),
            Some(folder.path()),
        )
        .unwrap();
        assert_eq!(second.things["camera"], camera);
        assert!(second.things["stage"].starts_with("urn:uuid:"));
        assert_ne!(second.things["stage"], camera);
    }

    #[test]
    fn a_second_server_on_the_same_settings_folder_is_refused_until_the_first_is_gone() {
        let folder = tempfile::tempdir().unwrap();
        let none = BTreeMap::new();
        let first = Identity::resolve(&names(&["a"]), None, &none, Some(folder.path())).unwrap();
        let error = Identity::resolve(&names(&["a"]), None, &none, Some(folder.path()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("another running server"), "{error}");
        drop(first);
        Identity::resolve(&names(&["a"]), None, &none, Some(folder.path())).unwrap();
    }

    #[test]
    fn configured_ids_win_and_bad_ones_are_refused_with_the_reason() {
        let configured = BTreeMap::from([("camera".to_owned(), "urn:lab:camera-1".to_owned())]);
        let identity = Identity::resolve(
            &names(&["camera"]),
            Some("urn:lab:scope"),
            &configured,
            None,
        )
        .unwrap();
        assert_eq!(identity.server, "urn:lab:scope");
        assert_eq!(identity.things["camera"], "urn:lab:camera-1");
        let refused = |server: Option<&str>, things: &[(&str, &str)]| {
            let things = things
                .iter()
                .map(|(n, id)| ((*n).to_owned(), (*id).to_owned()))
                .collect();
            Identity::resolve(&names(&["camera"]), server, &things, None)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(Some("scope 1"), &[]).contains("not a URI"));
        assert!(refused(None, &[("stage", "urn:x:1")]).contains("not one of this server's"));
        assert!(refused(Some("urn:x:1"), &[("camera", "urn:x:1")]).contains("both given"));
    }

    #[test]
    fn an_unreadable_identity_file_is_moved_aside_and_new_ids_are_made() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join(IDENTITY_FILE), "{not json").unwrap();
        let identity =
            Identity::resolve(&names(&["a"]), None, &BTreeMap::new(), Some(folder.path())).unwrap();
        assert!(identity.things["a"].starts_with("urn:uuid:"));
        let aside = std::fs::read_dir(folder.path())
            .unwrap()
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().contains("unreadable"));
        assert!(aside, "the unreadable file is kept aside");
    }

    #[test]
    fn uris_are_told_from_other_text() {
        for good in [
            "urn:uuid:0804d572-cce8-422a-bb7c-4412fcd56f06",
            "https://lab/x",
            "x+y:z",
        ] {
            assert!(is_uri(good), "{good}");
        }
        for bad in ["", "camera", ":x", "1x:y", "urn:", "urn:a b"] {
            assert!(!is_uri(bad), "{bad}");
        }
    }
}
