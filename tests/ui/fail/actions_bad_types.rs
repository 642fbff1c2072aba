use labthings::{Property, Thing, thing_actions};

#[derive(Thing)]
struct Clock {
    #[property]
    ticks: Property<u64>,
}

struct NotSerde;

#[thing_actions]
impl Clock {
    /// An argument that cannot come from JSON.
    fn wait_until(&self, when: std::time::Instant) {}

    /// An output that cannot become JSON.
    fn make(&self) -> NotSerde {
        NotSerde
    }
}

fn main() {}
