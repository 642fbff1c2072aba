use labthings::Thing;

#[derive(Thing)]
enum Camera {
    On,
    Off,
}

#[derive(Thing)]
struct Stage(i64);

fn main() {}
