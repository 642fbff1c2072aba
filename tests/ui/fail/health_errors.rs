use labthings::health::Health;
use labthings::{Property, Thing};

#[derive(Thing)]
struct Oven {
    #[health]
    first: Health,
    #[health]
    second: Health,
    #[property]
    state: Property<u8>,
}

#[derive(Thing)]
struct Keyed {
    #[health(timeout = 1)]
    health: Health,
}

#[derive(Thing)]
struct NotHealth {
    #[health]
    health: Property<u8>,
}

fn main() {}
