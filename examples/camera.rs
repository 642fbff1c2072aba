//! A simulated camera Thing, served at `/camera/`: no hardware and no configuration needed.
//!
//! ```text
//! cargo run --example camera -- [--config FILE] [--host 127.0.0.1] [--port 5000]
//! ```
//!
//! Then open <http://127.0.0.1:5000/>, the stream alone at
//! <http://127.0.0.1:5000/camera/mjpeg_stream/viewer>, or the API browser at
//! <http://127.0.0.1:5000/docs/>. A configuration file (the shape of `CAMERA_CONFIG` in
//! `support/things.rs`) can set the camera's size and frame rate, a settings folder, and an API
//! prefix.

#[path = "support/sim.rs"]
mod sim;
#[path = "support/things.rs"]
mod things;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // No logging set up here: the framework logs to the terminal (`RUST_LOG` to filter).
    labthings::run(&things::registry(), things::CAMERA_CONFIG).await?;
    Ok(())
}
