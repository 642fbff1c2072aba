use labthings::{Property, Thing, thing_actions};

#[derive(Thing)]
struct Stage {
    #[property]
    position: Property<i64>,
}

#[thing_actions]
impl Stage {
    #[action(locked)]
    fn home(&self) {}

    #[action(lock = "")]
    fn park(&self) {}

    fn speed(&self, #[unit] metres_per_second: f64) -> f64 {
        metres_per_second
    }

    #[action(rename = "move to")]
    fn move_to(&self, x: i64) -> i64 {
        x
    }

    fn swap(&self, (a, b): (i64, i64)) -> (i64, i64) {
        (b, a)
    }

    fn generic<T: Default>(&self) {}
}

fn main() {}
