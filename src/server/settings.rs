//! Binding a Thing's settings to its settings file, and loading them at start.

use std::path::Path;
use std::sync::{Arc, Weak};

use serde_json::Map;

use crate::property::settings::SettingsFile;
use crate::thing::{Thing, ThingDescriptor};

pub(crate) fn settings_file<T: Thing>(
    name: &str,
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    settings_folder: Option<&Path>,
) -> Option<Arc<SettingsFile>> {
    let folder = settings_folder?;
    if !descriptor.properties.iter().any(|p| p.setting) {
        return None;
    }
    let weak: Weak<T> = Arc::downgrade(thing);
    let accessors: Vec<_> = descriptor
        .properties
        .iter()
        .filter(|p| p.setting)
        .map(|p| (p.name, p.access))
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
    Some(SettingsFile::new(
        folder.join(name).join("settings.json"),
        snapshot,
    ))
}

pub(crate) fn load_settings<T: Thing>(
    name: &str,
    thing: &Arc<T>,
    descriptor: &ThingDescriptor<T>,
    file: &SettingsFile,
) {
    let mut values = match SettingsFile::load(file.path()) {
        Ok(Some(loaded)) => loaded.values,
        Ok(None) => return,
        Err(corrupt) => {
            tracing::error!(thing = name, "{corrupt}");
            return;
        }
    };
    let mut rejected = Vec::new();
    for property in descriptor.properties.iter().filter(|p| p.setting) {
        if let Some(value) = values.remove(property.name) {
            if let Err(error) = (property.access)(thing).load_json(value) {
                rejected.push(format!("{}: {error}", property.name));
            }
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
}
