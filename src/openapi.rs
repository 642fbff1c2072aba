//! The OpenAPI 3.1 document, built from the same route table as the router.
//!
//! Each route the server adds comes with a [`RouteDoc`]; [`document`] turns the table into a
//! utoipa [`OpenApi`]. Value schemas come from schemars through [`crate::schema::to_openapi`]'s
//! rules (inlined subschemas, `const` as a one-value `enum`), so the TD and the OpenAPI document
//! describe the same values.

use axum::http::Method;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

use crate::action::InvocationBody;
use crate::problem::{PROBLEM_JSON, Problem};
use crate::property::Constraints;

/// One route of the server, documented.
#[derive(Debug, Clone)]
pub(crate) struct RouteDoc {
    pub(crate) method: Method,
    /// The path without the API prefix.
    pub(crate) path: String,
    /// The OpenAPI operation object.
    pub(crate) operation: Value,
    /// Shared schemas the operation refers to, by component name, besides [`components`]'s.
    pub(crate) schemas: Vec<(String, Value)>,
}

impl RouteDoc {
    pub(crate) fn get(path: String, operation: Value) -> Self {
        Self {
            method: Method::GET,
            path,
            operation,
            schemas: Vec::new(),
        }
    }

    pub(crate) fn post(path: String, operation: Value) -> Self {
        Self {
            method: Method::POST,
            path,
            operation,
            schemas: Vec::new(),
        }
    }

    pub(crate) fn delete(path: String, operation: Value) -> Self {
        Self {
            method: Method::DELETE,
            path,
            operation,
            schemas: Vec::new(),
        }
    }

    pub(crate) fn put(path: String, operation: Value) -> Self {
        Self {
            method: Method::PUT,
            path,
            operation,
            schemas: Vec::new(),
        }
    }

    /// Adds a shared schema that the operation refers to (with [`component`]).
    pub(crate) fn with_schema(mut self, name: String, schema: Value) -> Self {
        self.schemas.push((name, schema));
        self
    }
}

/// The whole document for routes under `prefix`.
///
/// # Errors
///
/// If utoipa cannot represent a schema; the message names where.
pub(crate) fn document(prefix: &str, routes: &[RouteDoc]) -> Result<OpenApi, String> {
    let mut paths = serde_json::Map::new();
    let mut schemas = components();
    for route in routes {
        for (name, schema) in &route.schemas {
            match schemas.get(name) {
                Some(existing) if existing != schema => {
                    return Err(format!(
                        "OpenAPI document: two different schemas are both named `{name}`"
                    ));
                }
                Some(_) => {}
                None => {
                    schemas.insert(name.clone(), schema.clone());
                }
            }
        }
        let item = paths
            .entry(format!("{prefix}{}", route.path))
            .or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = route.operation.clone();
    }
    let document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "labthings",
            "description": "Laboratory instruments (Things) served by labthings. Each Thing's \
                W3C Thing Description is at `/<thing>/`.\n\nBesides the statuses listed per \
                operation, the connection itself may be answered, before any route is reached: \
                `408` (the request head took too long), `431` (the request head is too large), \
                `503` with `Retry-After` (the server is at its connection limit), and, on a \
                server bound to a loopback address, `403` for a `Host` that is not one of its \
                names (the defence against DNS rebinding). Errors are RFC 9457 problem JSON.",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    });
    let document = adapt_schemas(document);
    serde_json::from_value(document.clone()).map_err(|error| {
        // serde's message for an untagged enum does not say where; find the part that fails.
        let culprit = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(_, item)| {
                serde_json::from_value::<utoipa::openapi::PathItem>((*item).clone()).is_err()
            })
            .map(|(path, _)| format!("path {path}"))
            .or_else(|| {
                document["components"]["schemas"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .find(|(_, schema)| {
                        serde_json::from_value::<utoipa::openapi::RefOr<utoipa::openapi::Schema>>(
                            (*schema).clone(),
                        )
                        .is_err()
                    })
                    .map(|(name, _)| format!("component {name}"))
            })
            .unwrap_or_else(|| "the document".to_owned());
        format!("OpenAPI document: {culprit} cannot be represented: {error}")
    })
}

/// Adapts every schema in the document (components, parameters, bodies, responses) to utoipa's
/// model with [`crate::schema::for_openapi`].
fn adapt_schemas(mut document: Value) -> Value {
    let adapt = |schema: &mut Value| *schema = crate::schema::for_openapi(schema);
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        schemas.values_mut().for_each(adapt);
    }
    let contents = |holder: &mut Value| {
        if let Some(content) = holder.get_mut("content").and_then(Value::as_object_mut) {
            for media in content.values_mut() {
                if let Some(schema) = media.get_mut("schema") {
                    adapt(schema);
                }
            }
        }
    };
    if let Some(paths) = document["paths"].as_object_mut() {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                if let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                {
                    for parameter in parameters {
                        if let Some(schema) = parameter.get_mut("schema") {
                            adapt(schema);
                        }
                    }
                }
                if let Some(body) = operation.get_mut("requestBody") {
                    contents(body);
                }
                if let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                {
                    responses.values_mut().for_each(contents);
                }
            }
        }
    }
    document
}

/// A value schema with a property's constraints written in.
pub(crate) fn value_schema(schema: Value, constraints: &Constraints) -> Value {
    match schema {
        Value::Object(mut object) => {
            constraints.write_into(&mut object);
            Value::Object(object)
        }
        other => other,
    }
}

/// The shared schemas, each generated from the Rust type that serialises the shape (so the
/// document describes exactly what is sent): `Invocation`, `Problem`, and what they use.
fn components() -> Map<String, Value> {
    let mut generator = component_generator();
    generator.subschema_for::<InvocationBody>();
    generator.subschema_for::<Problem>();
    generator.take_definitions(true)
}

fn component_generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .for_serialize()
        .into_generator()
}

/// The component name of one action's invocation schema (`.` cannot occur in Thing or action
/// names, so two actions never share one).
pub(crate) fn action_invocation_name(thing: &str, action: &str) -> String {
    format!("{thing}.{action}.Invocation")
}

/// One action's invocation schema: the shared `Invocation` shape with the action's own `input`
/// and `output` schemas, so that a client generated from the document gets typed fields
/// (labthings-fastapi, likewise, has one invocation model per action). `output` is `null` until
/// the invocation completes.
pub(crate) fn action_invocation(thing: &str, action: &str, input: Value, output: Value) -> Value {
    let mut generator = component_generator();
    generator.subschema_for::<InvocationBody>();
    let mut schema = generator
        .take_definitions(true)
        .remove("Invocation")
        .unwrap_or_default();
    schema["description"] = format!("One run of `{thing}`'s action `{action}`.").into();
    let properties = &mut schema["properties"];
    let with_description = |mut schema: Value, description: &Value| {
        if let Value::Object(object) = &mut schema {
            object.insert("description".to_owned(), description.clone());
        }
        schema
    };
    properties["input"] = with_description(input, &properties["input"]["description"]);
    let output = if output == json!({"type": "null"}) {
        output
    } else {
        json!({"anyOf": [output, {"type": "null"}]})
    };
    properties["output"] =
        with_description(output, &json!("The output once completed (`null` before)."));
    schema
}

/// A reference to a shared schema of [`components`].
pub(crate) fn component(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A response whose body is problem JSON.
pub(crate) fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {PROBLEM_JSON: {"schema": component("Problem")}},
    })
}

pub(crate) fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// Declares the HTTP bearer scheme and requires it everywhere (the API browser then offers an
/// "Authorize" button to enter a token).
pub(crate) fn add_bearer_security(document: &mut OpenApi) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    let mut scheme = Http::new(HttpAuthScheme::Bearer);
    scheme.description = Some(
        "A token from the server's configuration: read-only tokens may read, read-write \
         tokens may also write properties and invoke and cancel actions."
            .to_owned(),
    );
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    document.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
}
