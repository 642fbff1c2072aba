use labthings::{Property, Thing, thing_actions};

#[derive(Thing)]
struct Stage {
    #[property]
    position: Property<i64>,
}

#[thing_actions]
impl Stage {
    /// Needs `&self`.
    fn recalibrate(&mut self) {}

    /// Takes the Thing by value.
    fn consume(self) {}

    /// A constructor, not an action.
    fn new() -> Self {
        Stage { position: Property::new(0) }
    }
}

fn main() {}
