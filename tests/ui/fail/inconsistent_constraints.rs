use labthings::{Property, Thing};

#[derive(Thing)]
struct Camera {
    #[property(min = 10, max = 1)]
    exposure: Property<f64>,
    #[property(pattern = "([a-z]")]
    label: Property<String>,
    #[property(min_length = 5, max_length = 2)]
    code: Property<String>,
    #[stream(ringbuffer = 0)]
    stream: labthings::stream::MjpegStream,
}

fn main() {}
