//! Reading an action's input: a JSON object of arguments, checked field by field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::property::Constraints;
use crate::schema::json_schema_of;

/// An action input that does not fit: the path of the field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input{}: {reason}", if field.is_empty() { String::new() } else { format!(" at `{field}`") })]
pub struct InputError {
    /// The offending field (empty for the whole input).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads an action's input: a JSON object of arguments, where `null` counts as `{}`.
///
/// A missing argument is found from the input type's JSON Schema (its `required` list), so
/// the error names it without reading serde's message; a wrong one is named by its path
/// (`position.x`, `steps[2]`) as serde reports it.
///
/// # Errors
///
/// [`InputError`] naming the field that does not fit, or the whole input if it is not an
/// object.
pub(crate) fn parse_input<I>(input: Value) -> Result<I, InputError>
where
    I: DeserializeOwned + schemars::JsonSchema,
{
    let object = match input {
        Value::Null => Map::new(),
        Value::Object(object) => object,
        other => {
            // serde would read a struct from an array too; an action's input is an object.
            return Err(InputError {
                field: String::new(),
                reason: format!(
                    "the input must be a JSON object of arguments, not {}",
                    kind(&other)
                ),
            });
        }
    };
    let schema = json_schema_of::<I>();
    if let Some(missing) = missing_field(&schema, &object) {
        return Err(InputError {
            reason: format!("missing field `{missing}`"),
            field: missing,
        });
    }
    check_limits(&schema, &object)?;
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|error| InputError {
        field: match error.path().to_string() {
            path if path == "." => String::new(),
            path => path,
        },
        reason: crate::schema::plain_error(&error.inner().to_string()),
    })
}

/// The first argument the input type requires that `object` lacks.
fn missing_field(schema: &Value, object: &Map<String, Value>) -> Option<String> {
    schema
        .get("required")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|name| !object.contains_key(*name))
        .map(str::to_owned)
}

/// Each argument against the limits its schema states (`#[min = 0.0]` on the argument, say),
/// before the action starts: the same rules, and the same messages with the unit, as a
/// property's.
fn check_limits(schema: &Value, object: &Map<String, Value>) -> Result<(), InputError> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, value) in object {
        let Some(property) = properties.get(name) else {
            continue;
        };
        let unit = property.get("unit").and_then(Value::as_str);
        Constraints::from_schema(property)
            .check_in(value, unit)
            .map_err(|violation| InputError {
                field: name.clone(),
                reason: violation.detail,
            })?;
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null | Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Move {
        x: i64,
        y: i64,
        speed: Option<f64>,
        #[serde(default)]
        relative: bool,
    }

    #[test]
    fn null_and_empty_objects_are_no_arguments() {
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        struct Nothing {}
        assert!(parse_input::<Nothing>(Value::Null).is_ok());
        assert!(parse_input::<Nothing>(json!({})).is_ok());
    }

    #[test]
    fn a_missing_argument_is_named() {
        let error = parse_input::<Move>(json!({"x": 1})).unwrap_err();
        assert_eq!(error.field, "y");
        assert_eq!(error.reason, "missing field `y`");
    }

    #[test]
    fn optional_and_defaulted_arguments_may_be_left_out() {
        let input = parse_input::<Move>(json!({"x": 1, "y": 2})).unwrap();
        assert_eq!(
            (input.x, input.y, input.speed, input.relative),
            (1, 2, None, false)
        );
    }

    #[test]
    fn a_wrong_argument_is_named_by_its_path() {
        let error = parse_input::<Move>(json!({"x": "left", "y": 2})).unwrap_err();
        assert_eq!(error.field, "x");
        assert!(error.reason.contains("invalid type"), "{}", error.reason);
    }

    #[test]
    fn an_unknown_argument_is_refused() {
        let error = parse_input::<Move>(json!({"x": 1, "y": 2, "z": 3})).unwrap_err();
        assert!(
            error.reason.contains("unknown field `z`"),
            "{}",
            error.reason
        );
    }

    #[test]
    fn input_that_is_not_an_object_says_what_it_is() {
        let error = parse_input::<Move>(json!([1, 2])).unwrap_err();
        assert_eq!(error.field, "");
        assert!(error.reason.contains("not an array"), "{}", error.reason);
        assert_eq!(
            error.to_string(),
            "invalid input: the input must be a JSON object of arguments, not an array"
        );
    }
}
