use labthings::{Property, Thing};

#[derive(Thing)]
struct Camera {
    #[property]
    gain: Property<f64>,
    #[setting(rename = "gain")]
    saved_gain: Property<f64>,
}

fn main() {}
