//! One schema source for both documents: schemars generates a JSON Schema (2020-12) for each
//! value type; [`to_td`] turns it into a W3C TD 1.1 DataSchema, and the OpenAPI document uses it
//! adapted to utoipa's model by [`for_openapi`] (no `const`; every schema has a `type`). The
//! conversions are tested below, including utoipa's round trip, so the two documents describe
//! the same values.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The JSON Schema of `T`, with every subschema inlined (TD DataSchemas cannot use `$ref`).
pub fn json_schema_of<T: JsonSchema>() -> Value {
    let schema = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(object) = &mut value {
        object.remove("$schema");
    }
    value
}

/// Turns a JSON Schema into a TD 1.1 DataSchema.
///
/// TD DataSchemas allow one `type` per schema and know `oneOf` but not `anyOf`, so a list of
/// types (`["number", "null"]` for an `Option<f64>`) becomes a `oneOf` of one schema per type,
/// `anyOf` becomes `oneOf`, and the boolean schema `true` becomes `{}`. Every DataSchema, nested
/// ones included, states its defaults (`readOnly` and `writeOnly` false; `properties` of an
/// object), as the W3C TD playground's defaults check asks, and formats that JSON Schema does
/// not define (schemars' `int64`, `uint8`, `double`, ...) are left out: validators such as
/// node-wot's ajv warn about each on every read. The range they imply stays as `minimum` and
/// `maximum` where schemars wrote them.
pub fn to_td(schema: &Value) -> Value {
    let Value::Object(object) = schema else {
        let mut empty = Map::new();
        explicit_defaults(&mut empty);
        return Value::Object(empty);
    };
    let mut object: Map<String, Value> = object
        .iter()
        .map(|(key, value)| (key.clone(), td_member(key, value)))
        .collect();
    if let Some(any_of) = object.remove("anyOf") {
        object.insert("oneOf".to_owned(), any_of);
    }
    if let Some(Value::Array(types)) = object.get("type").cloned() {
        object.remove("type");
        let branches: Vec<Value> = types
            .iter()
            .map(|kind| {
                let mut branch = Map::new();
                branch.insert("type".to_owned(), kind.clone());
                if kind != "null" {
                    // Keywords about values (minimum, items, ...) belong to the non-null branch.
                    for (key, value) in &object {
                        if !ANNOTATIONS.contains(&key.as_str()) {
                            branch.insert(key.clone(), value.clone());
                        }
                    }
                }
                explicit_defaults(&mut branch);
                Value::Object(branch)
            })
            .collect();
        object.retain(|key, _| ANNOTATIONS.contains(&key.as_str()));
        object.insert("oneOf".to_owned(), Value::Array(branches));
    }
    explicit_defaults(&mut object);
    Value::Object(object)
}

/// The formats of JSON Schema 2020-12 (§7.3); any other is an annotation validators warn about.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// States a DataSchema's defaults and drops a non-standard `format` (see [`to_td`]).
fn explicit_defaults(schema: &mut Map<String, Value>) {
    for key in ["readOnly", "writeOnly"] {
        schema.entry(key).or_insert(Value::Bool(false));
    }
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        schema
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|format| !STANDARD_FORMATS.contains(&format))
    {
        schema.remove("format");
    }
}

/// Keywords that describe the whole schema rather than one of its types.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "readOnly",
    "writeOnly",
    "examples",
];

fn td_member(key: &str, value: &Value) -> Value {
    match (key, value) {
        ("properties", Value::Object(members)) => Value::Object(
            members
                .iter()
                .map(|(name, schema)| (name.clone(), to_td(schema)))
                .collect(),
        ),
        (
            "items" | "additionalProperties" | "not",
            schema @ (Value::Object(_) | Value::Bool(true)),
        ) => to_td(schema),
        ("items" | "prefixItems" | "oneOf" | "anyOf" | "allOf", Value::Array(schemas)) => {
            Value::Array(schemas.iter().map(to_td).collect())
        }
        _ => value.clone(),
    }
}

/// Adapts a JSON Schema to what utoipa's OpenAPI model can hold, without changing its meaning:
/// every `const` becomes a one-value `enum` (utoipa has no `const`), and a schema that allows
/// any value (`true`, or an object with no `type` and no combinator) gets `"type": null`.
///
/// That `null` is how utoipa's model reads "no type" (its `SchemaType::AnyValue`, which it
/// requires to be spelled out); utoipa leaves it out again when it writes the document, so the
/// served schema is the plain `{}` every code generator reads as "any JSON". (Listing all seven
/// JSON types instead, as this once did, made openapi-python-client drop the model.)
pub(crate) fn for_openapi(schema: &Value) -> Value {
    match schema {
        Value::Bool(true) => serde_json::json!({"type": null}),
        Value::Object(object) => {
            let mut adapted: Map<String, Value> = object
                .iter()
                .map(|(key, value)| match key.as_str() {
                    "const" => ("enum".to_owned(), Value::Array(vec![value.clone()])),
                    // Maps whose values are schemas, and lists of schemas.
                    "properties" | "$defs" | "patternProperties" => (
                        key.clone(),
                        Value::Object(
                            value
                                .as_object()
                                .map(|members| {
                                    members
                                        .iter()
                                        .map(|(k, v)| (k.clone(), for_openapi(v)))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                    ),
                    "items"
                    | "additionalProperties"
                    | "not"
                    | "prefixItems"
                    | "oneOf"
                    | "anyOf"
                    | "allOf" => (key.clone(), for_openapi(value)),
                    // Anything else (examples, defaults, enums) is data, not schema.
                    _ => (key.clone(), value.clone()),
                })
                .collect();
            const SHAPED: &[&str] = &[
                "type", "$ref", "oneOf", "anyOf", "allOf", "not", "enum", "const",
            ];
            if !SHAPED.iter().any(|key| object.contains_key(*key)) {
                adapted.insert("type".to_owned(), Value::Null);
            }
            Value::Object(adapted)
        }
        Value::Array(items) => Value::Array(items.iter().map(for_openapi).collect()),
        other => other.clone(),
    }
}

/// A serde error message in JSON's words: `invalid type: string "hot", expected f64` becomes
/// `invalid type: string "hot", expected a number`.
pub(crate) fn plain_error(message: &str) -> String {
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    let words = match expected {
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, at least 0",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "a sequence" => "a list",
        "a map" => "an object",
        "a boolean" => "true or false",
        "a string" => "a string",
        "path string" => "a path (a string)",
        other if other.starts_with("struct ") => "an object",
        other if other.starts_with("a tuple of size ") => {
            return format!("{head}, expected a list of {}", &other[16..]);
        }
        other if other.starts_with("an array of length ") => {
            return format!("{head}, expected a list of {}", &other[19..]);
        }
        other => other,
    };
    format!("{head}, expected {words}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use utoipa::openapi::{RefOr, Schema};

    fn to_openapi(schema: &Value) -> Result<RefOr<Schema>, serde_json::Error> {
        serde_json::from_value(for_openapi(schema))
    }

    #[derive(serde::Serialize, serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    enum Mode {
        Auto,
        Manual,
    }

    #[derive(serde::Serialize, serde::Deserialize, JsonSchema)]
    #[serde(tag = "kind")]
    #[allow(dead_code)]
    enum Shape {
        Circle { radius: f64 },
        Square { side: f64 },
    }

    #[derive(serde::Serialize, serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Settings {
        /// Which mode.
        mode: Mode,
        shape: Option<Shape>,
        limits: Option<f64>,
        position: [i64; 3],
        tags: Vec<String>,
    }

    #[test]
    fn option_types_become_one_of_for_the_td() {
        let td = to_td(&json_schema_of::<Option<f64>>());
        let stated = |mut schema: Value| {
            schema["readOnly"] = false.into();
            schema["writeOnly"] = false.into();
            schema
        };
        assert_eq!(
            td,
            stated(json!({"title": "Nullable_double", "oneOf": [
                stated(json!({"type": "number"})), stated(json!({"type": "null"}))
            ]}))
        );
    }

    #[test]
    fn td_schemas_state_their_defaults_and_only_standard_formats() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Reading {
            count: u64,
            at: chrono::DateTime<chrono::Utc>,
            empty: Empty,
        }
        #[derive(JsonSchema)]
        struct Empty {}
        let td = to_td(&json_schema_of::<Reading>());
        let count = &td["properties"]["count"];
        assert_eq!(count["type"], "integer");
        assert!(count.get("format").is_none(), "{count}");
        assert_eq!(count["minimum"], 0, "the range stays");
        assert_eq!(td["properties"]["at"]["format"], "date-time");
        assert_eq!(td["properties"]["empty"]["properties"], json!({}));
        for schema in [&td, count, &td["properties"]["empty"]] {
            assert_eq!(schema["readOnly"], false, "{schema}");
            assert_eq!(schema["writeOnly"], false, "{schema}");
        }
    }

    #[test]
    fn nested_types_are_inlined_and_td_compatible() {
        let td = to_td(&json_schema_of::<Settings>());
        let text = td.to_string();
        assert!(!text.contains("$ref") && !text.contains("$defs"), "{text}");
        assert!(!text.contains("anyOf"), "{text}");
        // Every `type` is a single string.
        fn single_types(value: &Value) -> bool {
            match value {
                Value::Object(object) => object.iter().all(|(key, value)| {
                    (key != "type" || value.is_string()) && single_types(value)
                }),
                Value::Array(items) => items.iter().all(single_types),
                _ => true,
            }
        }
        assert!(single_types(&td), "{text}");
        assert_eq!(td["properties"]["mode"]["enum"], json!(["Auto", "Manual"]));
        assert_eq!(td["properties"]["mode"]["description"], "Which mode.");
    }

    /// "No type" is read by utoipa from `"type": null` and written as nothing.
    fn without_null_types(value: Value) -> Value {
        match value {
            Value::Object(object) => Value::Object(
                object
                    .into_iter()
                    .filter(|(key, value)| !(key == "type" && value.is_null()))
                    .map(|(key, value)| (key, without_null_types(value)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(without_null_types).collect())
            }
            other => other,
        }
    }

    #[test]
    fn openapi_schemas_round_trip_every_keyword_but_const() {
        for schema in [
            json_schema_of::<Settings>(),
            json_schema_of::<Option<f64>>(),
            json_schema_of::<u8>(),
            json_schema_of::<String>(),
            json_schema_of::<Value>(),
            json_schema_of::<std::collections::BTreeMap<String, Value>>(),
            serde_json::json!({"description": "anything"}),
        ] {
            let converted = to_openapi(&schema).unwrap();
            let back = serde_json::to_value(&converted).unwrap();
            assert_eq!(
                back,
                without_null_types(for_openapi(&schema)),
                "utoipa kept every keyword"
            );
        }
    }

    #[test]
    fn unconstrained_schemas_are_served_as_any_value() {
        assert_eq!(
            for_openapi(&json!({"description": "anything"})),
            json!({"description": "anything", "type": null})
        );
        assert_eq!(for_openapi(&json!(true)), json!({"type": null}));
        // What the document then says: no `type` at all, the plain "any JSON" schema.
        let served = serde_json::to_value(to_openapi(&json!(true)).unwrap()).unwrap();
        assert_eq!(served, json!({}));
        let shaped = json!({"oneOf": [{"type": "null"}, {"$ref": "#/x"}]});
        assert_eq!(
            for_openapi(&shaped),
            shaped,
            "combinators and refs are left alone"
        );
    }

    #[test]
    fn const_becomes_a_one_value_enum() {
        let schema = json!({"type": "string", "const": "Circle"});
        let back = serde_json::to_value(to_openapi(&schema).unwrap()).unwrap();
        assert_eq!(back, json!({"type": "string", "enum": ["Circle"]}));
    }
}
