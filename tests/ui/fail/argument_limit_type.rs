use labthings::{Thing, thing_actions};

#[derive(Thing)]
struct Heater {}

#[thing_actions]
impl Heater {
    /// A number's limit on a string.
    fn label(&self, #[max = 3] _name: String) {}
}

fn main() {}
