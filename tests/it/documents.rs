//! Thing Descriptions and the OpenAPI document: valid, complete, and reviewed as snapshots.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use labthings::ThingServer;
use serde_json::Value;

use crate::support::spawn_thing_server;
use crate::things::Everything;
use crate::{example_things, sim};

const PUBLIC_URL: &str = "http://microscope.local:5000/";

pub fn td_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("../fixtures/td-json-schema-validation.json"))
                .unwrap();
        jsonschema::validator_for(&schema).expect("the W3C schema compiles")
    })
}

/// The TD playground's schema with every default stated (see `tests/fixtures/README.md`).
fn td_defaults_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("../fixtures/td-schema-full.json")).unwrap();
        jsonschema::validator_for(&schema).expect("the playground's schema compiles")
    })
}

pub fn assert_valid_td(name: &str, td: &Value) {
    for (validator, what) in [
        (td_schema(), "the W3C TD 1.1 schema"),
        (td_defaults_schema(), "the TD playground's defaults schema"),
    ] {
        let errors: Vec<String> = validator
            .iter_errors(td)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "TD of {name} breaks {what}:\n{}",
            errors.join("\n")
        );
    }
}

/// Every example Thing plus the test Thing with every kind of property, as one server.
fn all_things() -> ThingServer {
    let stage = Arc::new(example_things::Stage::new());
    let camera = example_things::Camera::new(sim::CameraSettings::default()).with_stage(&stage);
    crate::support::builder()
        .public_url(PUBLIC_URL)
        .add_thing("stage", stage)
        .add_thing("camera", camera)
        .add_thing("everything", Everything::new())
        .add_thing("lab", crate::actions::Lab::new())
        // Fixed ids, for the snapshots (without a settings folder they are new at each start).
        .id("urn:uuid:7d5f4c1e-0000-4000-8000-000000000000")
        .thing_ids([
            ("stage", "urn:uuid:7d5f4c1e-0000-4000-8000-000000000001"),
            ("camera", "urn:uuid:7d5f4c1e-0000-4000-8000-000000000002"),
            (
                "everything",
                "urn:uuid:7d5f4c1e-0000-4000-8000-000000000003",
            ),
            ("lab", "urn:uuid:7d5f4c1e-0000-4000-8000-000000000004"),
        ])
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_td_validates_against_the_w3c_schema_and_matches_its_snapshot() {
    let (address, _stop, _task) = spawn_thing_server(all_things()).await;
    let tds: Value = reqwest::get(format!("http://{address}/thing_descriptions/"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for name in ["stage", "camera", "everything", "lab"] {
        let response = reqwest::get(format!("http://{address}/{name}/"))
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "application/td+json");
        let td: Value = response.json().await.unwrap();
        assert_eq!(td, tds[name], "both routes serve the same TD");
        assert_eq!(td["base"], PUBLIC_URL);
        assert_valid_td(name, &td);
        insta::assert_json_snapshot!(format!("td_{name}"), td);
    }
}

#[test]
fn the_schema_check_catches_an_invalid_td() {
    let mut td: Value = serde_json::json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "x",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {"p": {"type": ["number", "null"], "forms": [{"href": "p"}]}},
    });
    assert!(
        !td_schema().is_valid(&td),
        "a list of types is not a TD DataSchema"
    );
    td["properties"]["p"]["type"] = "number".into();
    assert!(td_schema().is_valid(&td));

    // The defaults schema wants every default stated, nested DataSchemas and forms included.
    td["properties"]["p"] = serde_json::json!({
        "type": "array", "readOnly": false, "writeOnly": false, "observable": false,
        "items": {"type": "number"},
        "forms": [{"href": "p", "op": ["readproperty"], "contentType": "application/json"}],
    });
    assert!(
        !td_defaults_schema().is_valid(&td),
        "nested items without readOnly/writeOnly"
    );
    td["properties"]["p"]["items"] =
        serde_json::json!({"type": "number", "readOnly": false, "writeOnly": false});
    let errors: Vec<String> = td_defaults_schema()
        .iter_errors(&td)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// The served `/openapi.json`, and its operations as (method, path).
pub async fn openapi_operations(
    address: std::net::SocketAddr,
) -> (Value, BTreeSet<(String, String)>) {
    let document: Value = reqwest::get(format!("http://{address}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    (document, documented)
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot_and_every_operation_answers_as_documented() {
    let server = all_things();
    let (address, _stop, _task) = spawn_thing_server(server).await;
    let (document, documented) = openapi_operations(address).await;
    assert_eq!(document["openapi"], "3.1.0");

    // Each documented route is really served: GETs answer (streams with their headers, we do
    // not read them), and PUTs exist (a wrong body is a 4xx from the route, not a 404/405).
    let client = reqwest::Client::new();
    let mut operation_ids = BTreeSet::new();
    for (method, path) in &documented {
        let operation = &document["paths"][path][method.to_ascii_lowercase()];
        assert!(
            operation_ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
            "operationIds are unique"
        );
        // Paths with an id are tried with one that does not exist: a documented 404.
        let with_id = path.contains("{id}");
        let url = format!(
            "http://{address}{}",
            path.replace("{id}", "00000000-0000-4000-8000-000000000000")
        );
        let response = match method.as_str() {
            // A plain GET of the websocket route is a documented 426.
            "GET" if path.ends_with("/ws") => client.get(&url).send().await.unwrap(),
            "GET" => client.head(&url).send().await.unwrap(),
            "PUT" | "POST" => client
                .request(method.parse().unwrap(), &url)
                .body("not json")
                .send()
                .await
                .unwrap(),
            "DELETE" => client.delete(&url).send().await.unwrap(),
            other => panic!("unexpected method {other}"),
        };
        let status = response.status().as_u16();
        assert!(status != 405, "{method} {path} answered {status}");
        assert!(
            status != 404 || with_id,
            "{method} {path} answered {status}"
        );
        let documented_statuses: Vec<&String> =
            operation["responses"].as_object().unwrap().keys().collect();
        if method == "GET" && !with_id && !path.ends_with("/ws") && status != 503 {
            assert_eq!(status, 200, "{path}");
        }
        assert!(
            documented_statuses
                .iter()
                .any(|s| *s == &status.to_string()),
            "{method} {path} answered {status}, which is not documented: {documented_statuses:?}"
        );
    }
    insta::assert_json_snapshot!("openapi", document);
}

#[tokio::test]
async fn docs_are_served_with_no_network() {
    let (address, _stop, _task) = spawn_thing_server(all_things()).await;
    let page = reqwest::get(format!("http://{address}/docs/"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            let url = part.split('"').next().unwrap();
            assert!(!url.contains("://"), "the docs load {url} from elsewhere");
            assets.push(url.to_owned());
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    for asset in &assets {
        let url = format!("http://{address}/docs/{}", asset.trim_start_matches("./"));
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body = response.text().await.unwrap_or_default();
        assert!(
            !body.contains("https://unpkg.com") && !body.contains("cdn.jsdelivr"),
            "{url}"
        );
    }
    let initializer = reqwest::get(format!("http://{address}/docs/swagger-initializer.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"), "{initializer}");
}

/// Code generators need each action's invocation typed by its own input and output (issue 18,
/// point 3): a shared `Invocation` with "any JSON" fields gave untyped or no models at all.
#[tokio::test]
async fn each_action_has_its_own_invocation_schema_and_any_json_is_written_as_no_type() {
    let (address, _stop, _task) = spawn_thing_server(all_things()).await;
    let (document, _) = openapi_operations(address).await;
    let schemas = &document["components"]["schemas"];
    let add = &schemas["lab.add.Invocation"];
    assert_eq!(
        add["properties"]["input"]["required"],
        serde_json::json!(["a"])
    );
    assert_eq!(
        add["properties"]["output"]["anyOf"],
        serde_json::json!([{"type": "integer", "format": "int64", "title": "int64"}, {"type": "null"}])
    );
    let reference = serde_json::json!({"$ref": "#/components/schemas/lab.add.Invocation"});
    let invoke = &document["paths"]["/lab/add"]["post"]["responses"];
    for status in ["200", "201"] {
        assert_eq!(
            invoke[status]["content"]["application/json"]["schema"],
            reference
        );
    }
    let list = &document["paths"]["/lab/add"]["get"]["responses"]["200"];
    assert_eq!(
        list["content"]["application/json"]["schema"]["items"],
        reference
    );
    // The shared shape (for `/action_invocations/{id}`) keeps "any JSON", written as no `type`.
    let shared = &schemas["Invocation"]["properties"];
    for field in ["input", "output"] {
        assert!(
            shared[field].get("type").is_none(),
            "{field}: {}",
            shared[field]
        );
    }

    // What the server answers fits the action's schema, and would not fit another action's.
    let body = crate::support::json_of(
        reqwest::Client::new()
            .post(format!("http://{address}/lab/add?wait=5"))
            .json(&serde_json::json!({"a": 2, "b": 3})),
    )
    .await;
    assert_eq!(body["output"], 5);
    let validator = |name: &str| {
        let schema = serde_json::json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": document["components"],
        });
        jsonschema::validator_for(&schema).unwrap()
    };
    let errors: Vec<String> = validator("lab.add.Invocation")
        .iter_errors(&body)
        .map(|error| error.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {body}");
    assert!(!validator("stage.move_to.Invocation").is_valid(&body));
}
