use labthings::{Property, Thing};

#[derive(Thing)]
struct Camera {
    #[property(min = 1)]
    name: Property<String>,
    #[property(max_length = 3)]
    count: Property<u32>,
}

fn main() {}
