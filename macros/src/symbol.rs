//! Every attribute key of both macros, in one table: parsing matches against these, and the
//! "unknown key" messages list them, so the two cannot disagree.

use std::fmt;

/// An attribute key, such as `read_only` in `#[property(read_only)]`.
#[derive(Copy, Clone)]
pub struct Key(pub &'static str);

// `#[thing(...)]`
pub const TITLE: Key = Key("title");
pub const DESCRIPTION: Key = Key("description");
pub const ON_START: Key = Key("on_start");
pub const ON_STOP: Key = Key("on_stop");
pub const INSTANCE_PROPERTIES: Key = Key("instance_properties");

// `#[property(...)]` and `#[setting(...)]`
pub const READ_ONLY: Key = Key("read_only");
pub const OBSERVABLE: Key = Key("observable");
pub const RENAME: Key = Key("rename");
pub const MIN: Key = Key("min");
pub const MAX: Key = Key("max");
pub const EXCLUSIVE_MIN: Key = Key("exclusive_min");
pub const EXCLUSIVE_MAX: Key = Key("exclusive_max");
pub const MULTIPLE_OF: Key = Key("multiple_of");
pub const MIN_LENGTH: Key = Key("min_length");
pub const MAX_LENGTH: Key = Key("max_length");
pub const PATTERN: Key = Key("pattern");
pub const UNIT: Key = Key("unit");
pub const DEFAULT: Key = Key("default");
pub const HISTORY: Key = Key("history");
pub const HISTORY_INTERVAL: Key = Key("history_interval");
pub const HISTORY_LOG: Key = Key("history_log");

// `#[stream(...)]`
pub const RINGBUFFER: Key = Key("ringbuffer");
pub const RECORD: Key = Key("record");

// `#[action(...)]`
pub const SKIP: Key = Key("skip");
pub const REFUSE_WHILE_FAULTED: Key = Key("refuse_while_faulted");
pub const OUTPUT_UNIT: Key = Key("output_unit");
pub const LOCK: Key = Key("lock");

/// The keys of `#[thing(...)]`.
pub const THING_KEYS: &[Key] = &[TITLE, DESCRIPTION, ON_START, ON_STOP, INSTANCE_PROPERTIES];
/// The keys of `#[property(...)]` and `#[setting(...)]`.
pub const PROPERTY_KEYS: &[Key] = &[
    READ_ONLY,
    OBSERVABLE,
    RENAME,
    TITLE,
    DESCRIPTION,
    MIN,
    MAX,
    EXCLUSIVE_MIN,
    EXCLUSIVE_MAX,
    MULTIPLE_OF,
    MIN_LENGTH,
    MAX_LENGTH,
    PATTERN,
    UNIT,
    HISTORY,
    HISTORY_INTERVAL,
    HISTORY_LOG,
];
/// The keys of `#[stream(...)]`.
pub const STREAM_KEYS: &[Key] = &[RINGBUFFER, RECORD, RENAME];
/// The keys of `#[event(...)]`.
pub const EVENT_KEYS: &[Key] = &[RENAME, TITLE, DESCRIPTION, UNIT];
/// The keys of `#[action(...)]`.
pub const ACTION_KEYS: &[Key] = &[SKIP, RENAME, LOCK, REFUSE_WHILE_FAULTED, OUTPUT_UNIT];
/// The attributes an action's argument may carry (`#[min = 0.0] rate: f64`).
pub const ARGUMENT_KEYS: &[Key] = &[
    UNIT,
    MIN,
    MAX,
    EXCLUSIVE_MIN,
    EXCLUSIVE_MAX,
    MULTIPLE_OF,
    MIN_LENGTH,
    MAX_LENGTH,
    DESCRIPTION,
    DEFAULT,
];

/// The field attributes of `#[derive(Thing)]`.
pub const PROPERTY: &str = "property";
pub const SETTING: &str = "setting";
pub const STREAM: &str = "stream";
pub const EVENT: &str = "event";
pub const HEALTH: &str = "health";
/// The method attribute of `#[thing_actions]`.
pub const ACTION: &str = "action";

impl PartialEq<Key> for syn::Path {
    fn eq(&self, key: &Key) -> bool {
        self.is_ident(key.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.0)
    }
}

/// The error for a key that is not in `known`, listing them all.
pub fn unknown(meta: &syn::meta::ParseNestedMeta<'_>, known: &[Key]) -> syn::Error {
    let key = meta
        .path
        .get_ident()
        .map_or_else(|| "this key".to_owned(), |i| format!("`{i}`"));
    let list: Vec<String> = known.iter().map(ToString::to_string).collect();
    meta.error(format!(
        "unknown key {key}; the keys are {}",
        list.join(", ")
    ))
}
