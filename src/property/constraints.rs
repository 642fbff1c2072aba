//! Validation rules of a property, applied the same way to HTTP writes and to writes from Rust.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The validation keys of a property (`#[property(min = 0.1, max = 1000.0)]`).
///
/// Numeric keys apply to numbers, length and pattern keys to strings; a value of another JSON
/// type (such as `null` for an `Option`) is not checked by them. The same keys are written into
/// the property's schema in the Thing Description and the OpenAPI document.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Constraints {
    /// Smallest allowed number (JSON Schema `minimum`).
    pub minimum: Option<f64>,
    /// Largest allowed number (`maximum`).
    pub maximum: Option<f64>,
    /// Numbers must be greater than this (`exclusiveMinimum`).
    pub exclusive_minimum: Option<f64>,
    /// Numbers must be less than this (`exclusiveMaximum`).
    pub exclusive_maximum: Option<f64>,
    /// Numbers must be a multiple of this (`multipleOf`).
    pub multiple_of: Option<f64>,
    /// Shortest allowed string, in characters (`minLength`).
    pub min_length: Option<u64>,
    /// Longest allowed string, in characters (`maxLength`).
    pub max_length: Option<u64>,
    /// A regular expression strings must match somewhere (`pattern`, as in JSON Schema).
    pub pattern: Option<&'static str>,
    /// The only values allowed (JSON Schema `enum`), such as a camera's pixel formats read at
    /// run time; the web UI offers them as a list. `null` is not checked by it.
    pub one_of: Option<Vec<Value>>,
}

/// A value that broke a constraint: which one, and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ConstraintViolation {
    /// The JSON Schema keyword that was broken, such as `minimum`.
    pub keyword: &'static str,
    /// What was wrong, for example `must be at least 0.1, got 0.01`.
    pub detail: String,
}

impl Constraints {
    /// The numeric and length constraints a JSON Schema object states (`minimum`, `maximum`,
    /// `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`, `maxLength`): how an
    /// action's arguments are checked from its input schema. A `pattern` and an `enum` are not
    /// read (an argument's type checks its enumerations).
    pub(crate) fn from_schema(schema: &Value) -> Self {
        let number = |key: &str| schema.get(key).and_then(Value::as_f64);
        let length = |key: &str| schema.get(key).and_then(Value::as_u64);
        Self {
            minimum: number("minimum"),
            maximum: number("maximum"),
            exclusive_minimum: number("exclusiveMinimum"),
            exclusive_maximum: number("exclusiveMaximum"),
            multiple_of: number("multipleOf"),
            min_length: length("minLength"),
            max_length: length("maxLength"),
            pattern: None,
            one_of: None,
        }
    }

    /// Checks a value against every constraint.
    ///
    /// # Errors
    ///
    /// The first constraint the value breaks.
    pub fn check(&self, value: &Value) -> Result<(), ConstraintViolation> {
        self.check_in(value, None)
    }

    /// [`check`](Self::check), with the value's unit in the message (`must be at least 0.1 ms,
    /// got 0.01 ms`).
    pub(crate) fn check_in(
        &self,
        value: &Value,
        unit: Option<&str>,
    ) -> Result<(), ConstraintViolation> {
        if let Some(allowed) = &self.one_of
            && !value.is_null()
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(ConstraintViolation {
                keyword: "enum",
                detail: format!("must be one of {}, got {value}", list.join(", ")),
            });
        }
        match value {
            Value::Number(number) => {
                let Some(x) = number.as_f64() else {
                    return Ok(());
                };
                self.check_number(x, unit.map_or_else(String::new, |unit| format!(" {unit}")))
            }
            Value::String(text) => self.check_string(text),
            _ => Ok(()),
        }
    }

    fn check_number(&self, x: f64, unit: String) -> Result<(), ConstraintViolation> {
        let violation = |keyword, detail: String| Err(ConstraintViolation { keyword, detail });
        if let Some(min) = self.minimum.filter(|min| x < *min) {
            return violation(
                "minimum",
                format!("must be at least {min}{unit}, got {x}{unit}"),
            );
        }
        if let Some(max) = self.maximum.filter(|max| x > *max) {
            return violation(
                "maximum",
                format!("must be at most {max}{unit}, got {x}{unit}"),
            );
        }
        if let Some(min) = self.exclusive_minimum.filter(|min| x <= *min) {
            return violation(
                "exclusiveMinimum",
                format!("must be greater than {min}{unit}, got {x}{unit}"),
            );
        }
        if let Some(max) = self.exclusive_maximum.filter(|max| x >= *max) {
            return violation(
                "exclusiveMaximum",
                format!("must be less than {max}{unit}, got {x}{unit}"),
            );
        }
        if let Some(step) = self.multiple_of {
            let quotient = x / step;
            // Allow for binary floating point: 0.3 is a multiple of 0.1.
            if (quotient - quotient.round()).abs() > 1e-9 * quotient.abs().max(1.0) {
                return violation(
                    "multipleOf",
                    format!("must be a multiple of {step}{unit}, got {x}{unit}"),
                );
            }
        }
        Ok(())
    }

    fn check_string(&self, text: &str) -> Result<(), ConstraintViolation> {
        let violation = |keyword, detail: String| Err(ConstraintViolation { keyword, detail });
        let length = text.chars().count() as u64;
        if let Some(min) = self.min_length.filter(|min| length < *min) {
            return violation(
                "minLength",
                format!("must be at least {min} characters long, got {length}"),
            );
        }
        if let Some(max) = self.max_length.filter(|max| length > *max) {
            return violation(
                "maxLength",
                format!("must be at most {max} characters long, got {length}"),
            );
        }
        if let Some(pattern) = self.pattern {
            match compiled(pattern) {
                Some(regex) if regex.is_match(text) => {}
                Some(_) => {
                    return violation(
                        "pattern",
                        format!("must match the pattern `{pattern}`, got {text:?}"),
                    );
                }
                None => {
                    return violation(
                        "pattern",
                        format!("cannot be checked: the pattern `{pattern}` is not valid"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Writes the constraints into a JSON Schema object, under their JSON Schema names.
    pub fn write_into(&self, schema: &mut Map<String, Value>) {
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                schema.insert(key.to_owned(), value);
            }
        };
        put("minimum", self.minimum.map(number));
        put("maximum", self.maximum.map(number));
        put("exclusiveMinimum", self.exclusive_minimum.map(number));
        put("exclusiveMaximum", self.exclusive_maximum.map(number));
        put("multipleOf", self.multiple_of.map(number));
        put("minLength", self.min_length.map(Value::from));
        put("maxLength", self.max_length.map(Value::from));
        put("pattern", self.pattern.map(Value::from));
        put("enum", self.one_of.clone().map(Value::Array));
    }
}

/// A JSON number that stays an integer when it is one (`1`, not `1.0`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

/// Compiled patterns (`None` for one that does not compile), by pattern.
type PatternCache = std::sync::Mutex<Vec<(&'static str, Option<&'static regex_lite::Regex>)>>;

/// Patterns are `'static` (they come from attributes), so each is compiled once and kept.
fn compiled(pattern: &'static str) -> Option<&'static regex_lite::Regex> {
    static CACHE: OnceLock<PatternCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, regex)) = cache.iter().find(|(p, _)| *p == pattern) {
        return *regex;
    }
    let regex = regex_lite::Regex::new(pattern)
        .ok()
        .map(|regex| &*Box::leak(Box::new(regex)));
    cache.push((pattern, regex));
    regex
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_checked_against_every_numeric_keyword() {
        let range = Constraints {
            minimum: Some(0.1),
            maximum: Some(1000.0),
            ..Default::default()
        };
        assert!(range.check(&json!(0.1)).is_ok());
        assert_eq!(range.check(&json!(0.01)).unwrap_err().keyword, "minimum");
        assert_eq!(range.check(&json!(1001)).unwrap_err().keyword, "maximum");
        let open = Constraints {
            exclusive_minimum: Some(0.0),
            exclusive_maximum: Some(1.0),
            ..Default::default()
        };
        assert_eq!(
            open.check(&json!(0)).unwrap_err().keyword,
            "exclusiveMinimum"
        );
        assert_eq!(
            open.check(&json!(1.0)).unwrap_err().keyword,
            "exclusiveMaximum"
        );
        let steps = Constraints {
            multiple_of: Some(0.1),
            ..Default::default()
        };
        assert!(steps.check(&json!(0.3)).is_ok());
        assert_eq!(steps.check(&json!(0.35)).unwrap_err().keyword, "multipleOf");
    }

    #[test]
    fn a_list_of_values_allows_those_alone_and_is_written_as_enum() {
        let formats = Constraints {
            one_of: Some(vec![json!("Mono8"), json!("Mono16")]),
            ..Constraints::default()
        };
        assert!(formats.check(&json!("Mono16")).is_ok());
        assert!(formats.check(&Value::Null).is_ok(), "null is not checked");
        let refused = formats.check(&json!("Mono12")).unwrap_err();
        assert_eq!(refused.keyword, "enum");
        assert_eq!(
            refused.detail,
            r#"must be one of "Mono8", "Mono16", got "Mono12""#
        );
        let mut schema = Map::new();
        formats.write_into(&mut schema);
        assert_eq!(Value::Object(schema), json!({"enum": ["Mono8", "Mono16"]}));
    }

    #[test]
    fn strings_are_checked_for_length_and_pattern() {
        let name = Constraints {
            min_length: Some(2),
            max_length: Some(4),
            pattern: Some("^[a-z]+$"),
            ..Default::default()
        };
        assert!(name.check(&json!("abc")).is_ok());
        assert_eq!(name.check(&json!("a")).unwrap_err().keyword, "minLength");
        assert_eq!(
            name.check(&json!("abcde")).unwrap_err().keyword,
            "maxLength"
        );
        let error = name.check(&json!("AB")).unwrap_err();
        assert_eq!(error.keyword, "pattern");
        assert!(error.detail.contains("^[a-z]+$"), "{}", error.detail);
        // Characters, not bytes.
        assert!(name.check(&json!("é")).is_err());
        assert!(name.check(&json!("éé")).is_err(), "pattern is ASCII");
    }

    #[test]
    fn other_json_types_pass_numeric_and_string_keywords() {
        let all = Constraints {
            minimum: Some(1.0),
            min_length: Some(3),
            ..Default::default()
        };
        assert!(all.check(&Value::Null).is_ok());
        assert!(all.check(&json!([0, 0])).is_ok());
    }

    #[test]
    fn constraints_are_written_under_json_schema_names() {
        let mut schema = Map::new();
        Constraints {
            minimum: Some(0.1),
            maximum: Some(1000.0),
            pattern: Some("x"),
            ..Default::default()
        }
        .write_into(&mut schema);
        assert_eq!(
            Value::Object(schema),
            json!({"minimum": 0.1, "maximum": 1000, "pattern": "x"})
        );
    }
}
