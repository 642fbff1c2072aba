use labthings::{Property, Thing};

#[derive(Thing)]
struct Stage {
    /// A property is not an event.
    #[event]
    moved: Property<i64>,
}

fn main() {}
