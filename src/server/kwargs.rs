//! A Thing's `kwargs` from a configuration file, read strictly whatever its type says: a key
//! the type does not read is an error naming it and the keys the type has, even when the type
//! does not `deny_unknown_fields`. A setting that silently did not apply is the worst kind of
//! error in a lab.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

use super::strict;

/// `A` from `kwargs`, refusing keys `A` ignores and naming what was wrong in JSON's words.
pub(crate) fn deserialize<A: DeserializeOwned>(kwargs: Value) -> Result<A, String> {
    let mut ignored = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
    let tracked = serde_ignored::Deserializer::new(kwargs, &mut note);
    let args = serde_path_to_error::deserialize(tracked).map_err(|error| {
        let path = error.path().to_string();
        let message = strict::plain(&error.inner().to_string());
        if path == "." {
            format!("invalid kwargs: {message}")
        } else {
            format!("invalid kwargs at `{path}`: {message}")
        }
    })?;
    if let Some(key) = ignored.first() {
        let valid: Vec<String> = fields_of::<A>().iter().map(|f| (*f).to_owned()).collect();
        let hint = match strict::nearest(key, &valid) {
            Some(nearest) => format!("did you mean `{nearest}`?"),
            None if valid.is_empty() => "it takes none".to_owned(),
            None => format!("valid keys: {}", valid.join(", ")),
        };
        return Err(format!("unknown kwargs key `{key}`; {hint}"));
    }
    Ok(args)
}

/// The field names a derived `Deserialize` struct reads: it hands them to
/// `deserialize_struct`, which this deserializer records and then refuses.
fn fields_of<A: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = A::deserialize(FieldNames(&mut fields));
    fields
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("only field names are read")
    }
}

impl std::error::Error for Refused {}

impl de::Error for Refused {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Refused
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Refused> {
        *self.0 = fields;
        Err(Refused)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// No `deny_unknown_fields`: the strictness is ours.
    #[derive(Debug, Deserialize)]
    struct Args {
        #[serde(default)]
        fps: f64,
        #[serde(default)]
        width: u32,
    }

    #[test]
    fn a_typo_is_an_error_naming_the_nearest_key() {
        let error = deserialize::<Args>(json!({"fsp": 10})).unwrap_err();
        assert_eq!(error, "unknown kwargs key `fsp`; did you mean `fps`?");
        let error = deserialize::<Args>(json!({"colour": "red"})).unwrap_err();
        assert_eq!(error, "unknown kwargs key `colour`; valid keys: fps, width");
    }

    #[test]
    fn a_wrong_type_says_what_was_expected_in_json_words() {
        let error = deserialize::<Args>(json!({"width": "wide"})).unwrap_err();
        assert_eq!(
            error,
            "invalid kwargs at `width`: invalid type: string \"wide\", expected a whole number, at least 0"
        );
    }

    #[test]
    fn known_keys_are_read() {
        let args = deserialize::<Args>(json!({"fps": 15, "width": 640})).unwrap();
        assert_eq!((args.fps, args.width), (15.0, 640));
    }
}
