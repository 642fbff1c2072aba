use labthings::stream::MjpegStream;
use labthings::{Event, Thing};

#[derive(Thing)]
struct Stage {
    #[property]
    frames: MjpegStream,
    #[setting]
    moved: Event<i64>,
}

fn main() {}
