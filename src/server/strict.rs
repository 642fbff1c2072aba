//! Strict reading of JSON a person wrote: a key the schema does not have names the nearest one
//! that it does (a typo never goes unnoticed), and a value of the wrong type says what was
//! expected in JSON's words ("a number"), not Rust's ("f64").

use serde_json::{Map, Value};

/// A key that the schema does not allow where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownKey {
    /// Where: `connection`, `things.camera`; empty at the top.
    pub(crate) path: String,
    /// The key as written.
    pub(crate) key: String,
    /// The valid key nearest to it, if one is near.
    pub(crate) nearest: Option<String>,
    /// Every valid key there.
    pub(crate) valid: Vec<String>,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() {
            String::new()
        } else {
            format!(" in `{}`", self.path)
        };
        write!(f, "unknown key `{}`{at}", self.key)?;
        match &self.nearest {
            Some(nearest) => write!(f, "; did you mean `{nearest}`?"),
            None => write!(f, "; valid keys: {}", self.valid.join(", ")),
        }
    }
}

/// The first key of `value` that `schema` (a JSON Schema with its `$defs`) does not allow, in
/// objects whose schema sets `additionalProperties: false`, at any depth.
pub(crate) fn unknown_key(value: &Value, schema: &Value) -> Option<UnknownKey> {
    let defs = schema.get("$defs").and_then(Value::as_object);
    walk(value, schema, defs, "")
}

fn walk(
    value: &Value,
    schema: &Value,
    defs: Option<&Map<String, Value>>,
    path: &str,
) -> Option<UnknownKey> {
    let schema = resolve(schema, defs);
    // A choice (an `Option`, an enum): the first branch that describes this kind of value.
    for choice in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(choice).and_then(Value::as_array) {
            let fits = branches
                .iter()
                .map(|branch| resolve(branch, defs))
                .find(|branch| fits(value, branch));
            return fits.and_then(|branch| walk(value, branch, defs, path));
        }
    }
    match value {
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(properties) = properties
                && schema.get("additionalProperties") == Some(&Value::Bool(false))
            {
                for key in object.keys() {
                    if !properties.contains_key(key) {
                        let valid: Vec<String> = properties.keys().cloned().collect();
                        return Some(UnknownKey {
                            path: path.to_owned(),
                            key: key.clone(),
                            nearest: nearest(key, &valid).map(str::to_owned),
                            valid,
                        });
                    }
                }
            }
            object.iter().find_map(|(key, item)| {
                let inner = properties
                    .and_then(|properties| properties.get(key))
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()))?;
                walk(item, inner, defs, &join(path, key))
            })
        }
        Value::Array(items) => {
            let inner = schema.get("items")?;
            items
                .iter()
                .enumerate()
                .find_map(|(index, item)| walk(item, inner, defs, &join(path, &index.to_string())))
        }
        _ => None,
    }
}

/// The schema a `$ref` points at, or the schema itself.
fn resolve<'a>(schema: &'a Value, defs: Option<&'a Map<String, Value>>) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .and_then(|name| defs?.get(name))
        .unwrap_or(schema)
}

/// Whether a branch of a choice describes this kind of JSON value.
fn fits(value: &Value, schema: &Value) -> bool {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    match schema.get("type") {
        Some(Value::String(t)) => t == kind || (t == "integer" && kind == "number"),
        Some(Value::Array(types)) => types.iter().any(|t| t == kind),
        // An externally tagged enum's unit variants are `{"enum": [...]}` or `{"const": ..}`.
        _ => {
            (schema.get("enum").is_some() || schema.get("const").is_some()) && kind == "string"
                || schema.get("properties").is_some() && kind == "object"
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The candidate nearest to `key` in edit distance, if it is near enough to be a typo (at most
/// a third of its letters, and at least one, differ).
pub(crate) fn nearest<'a>(key: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|candidate| (edit_distance(key, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

/// Edit distance by characters, counting a swap of two neighbours as one edit (optimal string
/// alignment: `fsp` is one edit from `fps`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: the distance between the first i letters of a and the first j of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A serde error message in JSON's words (the one rule for every error a person reads).
pub(crate) use crate::schema::plain_error as plain;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "settings_folder": {"type": ["string", "null"]},
                "connection": {"$ref": "#/$defs/Connection"},
                "tls": {"anyOf": [{"$ref": "#/$defs/Tls"}, {"type": "null"}]}
            },
            "$defs": {
                "Connection": {"type": "object", "additionalProperties": false,
                    "properties": {"write_timeout": {"type": "number"}}},
                "Tls": {"type": "object", "additionalProperties": false,
                    "properties": {"cert": {"type": "string"}, "key": {"type": "string"}}}
            }
        })
    }

    #[test]
    fn a_typo_at_the_top_names_the_nearest_key() {
        let found = unknown_key(&json!({"setting_folder": "x"}), &schema()).unwrap();
        assert_eq!(found.key, "setting_folder");
        assert_eq!(found.nearest.as_deref(), Some("settings_folder"));
        assert_eq!(
            found.to_string(),
            "unknown key `setting_folder`; did you mean `settings_folder`?"
        );
    }

    #[test]
    fn a_typo_inside_a_referenced_or_optional_object_is_found_with_its_path() {
        let found = unknown_key(&json!({"connection": {"write_timout": 3}}), &schema()).unwrap();
        assert_eq!(
            (found.path.as_str(), found.nearest.as_deref()),
            ("connection", Some("write_timeout"))
        );
        let found = unknown_key(&json!({"tls": {"cert": "a", "kee": "b"}}), &schema()).unwrap();
        assert_eq!(
            (found.path.as_str(), found.nearest.as_deref()),
            ("tls", Some("key"))
        );
    }

    #[test]
    fn a_key_far_from_every_valid_one_lists_them_all() {
        let found = unknown_key(&json!({"colour": 1}), &schema()).unwrap();
        assert_eq!(found.nearest, None);
        assert!(
            found
                .to_string()
                .contains("settings_folder, connection, tls"),
            "{found}"
        );
    }

    #[test]
    fn valid_documents_have_no_unknown_key() {
        let valid =
            json!({"settings_folder": null, "tls": null, "connection": {"write_timeout": 1}});
        assert_eq!(unknown_key(&valid, &schema()), None);
    }

    #[test]
    fn rust_type_names_become_json_words() {
        assert_eq!(
            plain("invalid type: string \"hot\", expected f64"),
            "invalid type: string \"hot\", expected a number"
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected usize"),
            "invalid value: integer `-1`, expected a whole number, at least 0"
        );
        assert_eq!(
            plain("invalid type: map, expected a tuple of size 3"),
            "invalid type: map, expected a list of 3"
        );
        assert_eq!(plain("missing field `things`"), "missing field `things`");
    }
}
