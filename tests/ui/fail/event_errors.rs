use labthings::{Event, Thing};

#[derive(Thing)]
struct Stage {
    /// An unknown key.
    #[event(size = 3)]
    moved: Event<[i64; 3]>,
    /// Taken by the server's stream of every event.
    #[event]
    events: Event<u8>,
}

fn main() {}
