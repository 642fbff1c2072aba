//! Action arguments with what properties have (issue 29, point 6): limits, a unit, a
//! description and a default, in the TD, in OpenAPI and checked before the action starts; an
//! action that finds its input wrong from its body answers a 4xx problem; `Cancelled` mixes
//! with an action's own errors through `?`.

use std::time::Duration;

use labthings::problem::StatusCode;
use labthings::{ActionContext, Problem, Thing, thing_actions};
use serde_json::{Value, json};

use crate::support::{json_of, spawn_thing_server};

/// A heater that ramps its temperature.
#[derive(Thing)]
pub struct Heater {}

#[thing_actions]
impl Heater {
    /// Ramps to a target at a rate.
    async fn ramp(
        &self,
        #[min = 0.0]
        #[max = 10.0]
        #[unit = "K/min"]
        #[description = "How fast the temperature changes"]
        rate: f64,
        #[default = 3]
        #[min = 1]
        steps: u32,
        #[min_length = 2] label: Option<String>,
    ) -> Result<Value, Problem> {
        if rate == 0.0 && steps > 1 {
            // Found wrong from the body: the instrument cannot hold several steps at no rate.
            return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
                .with_title("Cannot ramp")
                .with_detail("a rate of 0 K/min holds one step only"));
        }
        Ok(json!({"rate": rate, "steps": steps, "label": label}))
    }

    /// Waits, then fails: its own error and `Cancelled` both through `?`.
    async fn soak(&self, ctx: ActionContext, seconds: f64) -> Result<f64, String> {
        ctx.sleep(Duration::from_secs_f64(seconds)).await?;
        Err(format!("soaked {seconds} s and the sample cracked"))
    }
}

async fn heater() -> (String, reqwest::Client, tokio::sync::oneshot::Sender<()>) {
    let server = crate::support::builder()
        .add_thing("heater", Heater {})
        .build()
        .unwrap();
    let (address, stop, _task) = spawn_thing_server(server).await;
    (format!("http://{address}"), reqwest::Client::new(), stop)
}

fn invoke(
    http: &reqwest::Client,
    base: &str,
    action: &str,
    body: Value,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/heater/{action}?wait=30"))
        .json(&body)
}

#[tokio::test]
async fn argument_limits_units_descriptions_and_defaults_are_in_the_td_and_openapi() {
    let (base, http, _stop) = heater().await;
    let td: Value = json_of(http.get(format!("{base}/heater/"))).await;
    let rate = &td["actions"]["ramp"]["input"]["properties"]["rate"];
    assert_eq!(rate["minimum"], 0.0, "{rate}");
    assert_eq!(rate["maximum"], 10.0, "{rate}");
    assert_eq!(rate["unit"], "K/min", "{rate}");
    assert_eq!(rate["description"], "How fast the temperature changes");
    let steps = &td["actions"]["ramp"]["input"]["properties"]["steps"];
    assert_eq!(steps["default"], 3, "{steps}");
    let required = td["actions"]["ramp"]["input"]["required"]
        .as_array()
        .unwrap();
    assert!(required.contains(&json!("rate")) && !required.contains(&json!("steps")));
    let openapi: Value = json_of(http.get(format!("{base}/openapi.json"))).await;
    let text = openapi.to_string();
    assert!(
        text.contains("How fast the temperature changes"),
        "OpenAPI lacks the description"
    );
}

#[tokio::test]
async fn arguments_are_checked_before_the_action_starts_with_a_422_naming_them() {
    let (base, http, _stop) = heater().await;
    let refused = invoke(&http, &base, "ramp", json!({"rate": 20.0}))
        .send()
        .await
        .unwrap();
    let problem = crate::support::problem(refused, 422).await;
    let text = problem.to_string();
    assert!(text.contains("rate"), "{text}");
    assert!(
        text.contains("must be at most 10 K/min, got 20 K/min"),
        "{text}"
    );
    let short = invoke(&http, &base, "ramp", json!({"rate": 1.0, "label": "x"}))
        .send()
        .await
        .unwrap();
    let text = crate::support::problem(short, 422).await.to_string();
    assert!(
        text.contains("label") && text.contains("at least 2 characters"),
        "{text}"
    );
    let wrong = invoke(&http, &base, "ramp", json!({"rate": "fast"}))
        .send()
        .await
        .unwrap();
    let text = crate::support::problem(wrong, 422).await.to_string();
    assert!(text.contains("expected a number"), "{text}");
    // Nothing was started by the refused requests.
    let list: Value = json_of(http.get(format!("{base}/heater/ramp"))).await;
    assert_eq!(list, json!([]), "refused requests make no invocation");
    // Within the limits, with the default filled in.
    let done: Value = json_of(invoke(&http, &base, "ramp", json!({"rate": 2.5}))).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["output"],
        json!({"rate": 2.5, "steps": 3, "label": null})
    );
}

#[tokio::test]
async fn an_action_that_finds_its_input_wrong_ends_with_its_own_4xx_problem() {
    let (base, http, _stop) = heater().await;
    let done: Value = json_of(invoke(&http, &base, "ramp", json!({"rate": 0.0}))).await;
    assert_eq!(done["status"], "error", "{done}");
    assert_eq!(done["error"]["status"], 422, "{done}");
    assert_eq!(done["error"]["title"], "Cannot ramp");
    assert_eq!(
        done["error"]["detail"],
        "a rate of 0 K/min holds one step only"
    );
}

#[tokio::test]
async fn cancelled_and_an_actions_own_errors_mix_through_the_question_mark() {
    let (base, http, _stop) = heater().await;
    let failed: Value = json_of(invoke(&http, &base, "soak", json!({"seconds": 0.01}))).await;
    assert_eq!(failed["status"], "error", "{failed}");
    assert_eq!(
        failed["error"]["detail"],
        "soaked 0.01 s and the sample cracked"
    );
    let started: Value = json_of(
        http.post(format!("{base}/heater/soak"))
            .json(&json!({"seconds": 600})),
    )
    .await;
    let href = started["href"].as_str().unwrap();
    assert_eq!(http.delete(href).send().await.unwrap().status(), 204);
    crate::support::eventually_async(|| async {
        let now: Value = json_of(http.get(href)).await;
        now["status"] == "cancelled"
    })
    .await;
}
