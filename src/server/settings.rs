//! Binding a Thing's settings to its settings file, and loading them at start.

use std::path::Path;
use std::sync::{Arc, Weak};

use serde_json::Map;

use super::error::ServerError;
use crate::property::settings::{LoadError, SettingsFile};
use crate::thing::{Thing, ThingDescriptor};

/// The settings file of a Thing that has settings, in a folder checked to be usable; none
/// for a Thing without settings or a server without a settings folder (which is logged).
///
/// # Errors
///
/// [`ServerError::Settings`] if the folder cannot be created or written in.
pub(crate) fn settings_file<T: Thing>(
    name: &str,
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    settings_folder: Option<&Path>,
) -> Result<Option<Arc<SettingsFile>>, ServerError> {
    if !descriptor.properties.iter().any(|p| p.setting) {
        return Ok(None);
    }
    let Some(folder) = settings_folder else {
        tracing::warn!(
            thing = name,
            "the server has no settings folder: this Thing's settings will be lost at restart"
        );
        return Ok(None);
    };
    check_folder(folder)?;
    let path = folder.join(name).join("settings.json");
    tracing::info!(
        thing = name,
        "settings are kept in {}",
        std::path::absolute(&path)
            .unwrap_or_else(|_| path.clone())
            .display()
    );
    let weak: Weak<T> = Arc::downgrade(thing);
    let accessors: Vec<_> = descriptor
        .properties
        .iter()
        .filter(|p| p.setting)
        .map(|p| (p.name, p.access.clone()))
        .collect();
    let snapshot = Box::new(move || {
        let Some(thing) = weak.upgrade() else {
            return Map::new();
        };
        accessors
            .iter()
            .filter_map(|(name, access)| {
                Some(((*name).to_owned(), access(&thing).read_json().ok()?))
            })
            .collect()
    });
    Ok(Some(SettingsFile::new(path, snapshot)))
}

/// Checks that settings can be kept in `folder` (it is created if missing and must be
/// writable), so that an unusable folder is an error at start rather than a surprise at the
/// first write.
///
/// # Errors
///
/// [`ServerError::Settings`] naming the folder and the system's error.
pub(crate) fn check_folder(folder: &Path) -> Result<(), ServerError> {
    let unusable = |reason: String| ServerError::Settings {
        path: folder.to_owned(),
        reason,
    };
    std::fs::create_dir_all(folder).map_err(|e| unusable(format!("cannot create it: {e}")))?;
    let probe = folder.join(format!(".labthings-write-check.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| unusable(format!("cannot write in it: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Loads a Thing's saved settings. A file that is unreadable JSON is moved aside and logged
/// (defaults are used); stale temporary files of interrupted saves are removed.
///
/// # Errors
///
/// [`ServerError::Settings`] if the settings path is not a regular file (reading a FIFO would
/// wait forever) or cannot be read.
pub(crate) fn load_settings<T: Thing>(
    name: &str,
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    file: &SettingsFile,
) -> Result<(), ServerError> {
    SettingsFile::remove_stale_temporaries(file.path());
    let mut values = match SettingsFile::load(file.path()) {
        Ok(Some(loaded)) => loaded.values,
        Ok(None) => return Ok(()),
        Err(LoadError::Unusable(reason)) => {
            return Err(ServerError::Settings {
                path: file.path().to_owned(),
                reason,
            });
        }
        Err(LoadError::Corrupt(corrupt)) => {
            tracing::error!(thing = name, "{corrupt}");
            return Ok(());
        }
    };
    let mut rejected = Vec::new();
    for property in descriptor.properties.iter().filter(|p| p.setting) {
        if let Some(value) = values.remove(property.name)
            && let Err(error) = (property.access)(thing).load_json(value)
        {
            rejected.push(format!("{}: {error}", property.name));
        }
    }
    file.keep_unknown(values);
    if !rejected.is_empty() {
        let aside = SettingsFile::copy_aside(file.path())
            .map(|path| path.display().to_string())
            .unwrap_or_else(|error| format!("(could not copy it aside: {error})"));
        tracing::error!(
            thing = name,
            file = %file.path().display(),
            kept_at = %aside,
            "settings kept their defaults because the saved values do not fit: {}",
            rejected.join("; ")
        );
    }
    Ok(())
}
