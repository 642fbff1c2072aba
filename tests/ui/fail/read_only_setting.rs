use labthings::{Property, Thing};

#[derive(Thing)]
struct Camera {
    #[setting(read_only)]
    gain: Property<f64>,
}

fn main() {}
