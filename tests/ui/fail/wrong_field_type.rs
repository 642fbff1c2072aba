use labthings::Thing;

#[derive(Thing)]
struct Camera {
    #[property]
    exposure: f64,
    #[stream]
    stream: Vec<u8>,
}

fn main() {}
