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

    /// An optional argument that cannot come from JSON: one error, at its content's type.
    fn wait_maybe(&self, _when: Option<NotSerde>) {}

    /// An output that cannot become JSON.
    fn make(&self) -> NotSerde {
        NotSerde
    }

    /// The same, inside a `Result`.
    fn try_make(&self) -> Result<NotSerde, String> {
        Ok(NotSerde)
    }
}

fn main() {}
