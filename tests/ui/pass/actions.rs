use std::time::Duration;

use labthings::{ActionContext, Blob, Cancelled, Property, Thing, thing_actions};

#[derive(Thing)]
struct Camera {
    #[property]
    exposure: Property<f64>,
}

#[thing_actions]
impl Camera {
    /// Capture.
    ///
    /// A longer description.
    async fn capture(&self, ctx: ActionContext) -> Result<Blob, String> {
        ctx.info("capturing");
        Ok(Blob::new(vec![0xFF, 0xD8, 0xFF, 0xD9], "image/jpeg"))
    }

    /// A blocking action with the context in the middle of its arguments.
    #[action(lock, rename = "set-exposure")]
    fn set_exposure(&self, value: f64, ctx: ActionContext, #[unit = "ms"] settle_ms: Option<u64>) -> Result<f64, Cancelled> {
        ctx.check()?;
        std::thread::sleep(Duration::from_millis(settle_ms.unwrap_or(0)));
        Ok(value)
    }

    /// Returns nothing.
    #[action(lock = "motion")]
    async fn reset(&self) {}

    #[action(skip)]
    fn helper(&self) -> u8 {
        1
    }

    /// An associated function stays in the block when skipped.
    #[action(skip)]
    fn new() -> Self {
        Camera { exposure: Property::new(1.0) }
    }
}

fn main() {
    let descriptor = <Camera as Thing>::descriptor();
    let names: Vec<&str> = descriptor.actions.iter().map(|a| a.name).collect();
    assert_eq!(names, ["capture", "set-exposure", "reset"]);
    assert_eq!(descriptor.actions[1].lock, Some("set-exposure"), "its own lock, by its name");
    assert_eq!(descriptor.actions[2].lock, Some("motion"));
    let input = (descriptor.actions[1].input_schema)();
    assert_eq!(input["properties"]["settle_ms"]["unit"], "ms");
    assert!(input["properties"]["value"].get("unit").is_none());
    let input = (descriptor.actions[1].input_schema)();
    assert_eq!(input["required"], serde_json::json!(["value"]));
    assert_eq!(Camera::new().helper(), 1);
}
