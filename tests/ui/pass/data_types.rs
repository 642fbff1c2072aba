use labthings::{Property, Thing};

/// A region of interest.
#[labthings::data]
#[derive(Clone, Debug, PartialEq)]
struct Roi {
    x: u32,
    #[serde(rename = "y-offset")]
    y: u32,
}

#[labthings::data]
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    Auto,
    Manual { exposure_ms: f64 },
}

#[derive(Thing)]
struct Camera {
    #[property]
    roi: Property<Roi>,
    #[property]
    mode: Property<Mode>,
}

fn main() {
    let camera = Camera {
        roi: Property::new(Roi { x: 1, y: 2 }),
        mode: Property::new(Mode::Manual { exposure_ms: 5.0 }),
    };
    let descriptor = <Camera as Thing>::descriptor();
    let schema = (descriptor.properties[0].schema)();
    assert!(schema["properties"].get("y-offset").is_some(), "{schema}");
    assert_eq!(camera.roi.get(), Roi { x: 1, y: 2 });
    assert!(matches!(camera.mode.get(), Mode::Manual { .. }));
}
