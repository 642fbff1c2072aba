use labthings::{Thing, thing_actions};

#[derive(Thing)]
struct Heater {}

#[thing_actions]
impl Heater {
    /// A limit that is not a number.
    fn ramp(&self, #[min = "zero"] _rate: f64) {}

    /// A unit that is not a string.
    fn hold(&self, #[unit = 5] _seconds: f64) {}
}

fn main() {}
