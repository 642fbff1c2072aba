use labthings::{Property, Thing, thing_actions};

#[derive(Thing)]
struct Stage {
    #[property]
    position: Property<i64>,
}

#[thing_actions]
impl Stage {
    /// Would be served where the Thing's websocket is.
    async fn ws(&self) {}

    #[action(rename = "ws")]
    async fn observe(&self) {}

    async fn home(&self) {}

    #[action(rename = "home")]
    async fn go_home(&self) {}
}

fn main() {}
