use labthings::{Property, Thing};

struct Opaque {
    handle: u32,
}

#[derive(Thing)]
struct Stage {
    #[property]
    handle: Property<Opaque>,
}

fn main() {}
