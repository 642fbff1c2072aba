use labthings::{Property, Thing};

#[derive(Thing)]
struct Camera {
    #[property(minimum = 0.1)]
    exposure: Property<f64>,
    #[stream(size = 4)]
    stream: labthings::stream::MjpegStream,
}

fn main() {}
