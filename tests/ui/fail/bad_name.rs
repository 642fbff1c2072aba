use labthings::{Property, Thing};

#[derive(Thing)]
struct Camera {
    #[property(rename = "exposure time")]
    exposure: Property<f64>,
    #[property]
    ws: Property<f64>,
}

fn main() {}
