//! A simulated microscope: a stage and a camera that looks through it, so the image moves
//! when the stage does. No hardware and no configuration needed.
//!
//! ```text
//! cargo run --example microscope -- [--host 127.0.0.1] [--port 5000] [--settings-folder DIR]
//! ```
//!
//! Move the stage and watch the stream:
//!
//! ```text
//! curl -X PUT -H 'Content-Type: application/json' -d '[100, 50, 0]' http://127.0.0.1:5000/stage/position
//! ```

#[path = "support/cli.rs"]
mod cli;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/things.rs"]
mod things;

use std::sync::Arc;

use labthings::ThingServer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse("microscope", "A simulated microscope: a stage and a camera");
    cli::init_logging();
    let stage = Arc::new(things::Stage::new());
    let camera = things::Camera::new(sim::CameraSettings::default()).with_stage(&stage);
    let mut server = ThingServer::builder()
        .add_thing("stage", stage)
        .add_thing("camera", camera);
    if let Some(folder) = args.settings_folder {
        server = server.settings_folder(folder);
    }
    server.build()?.serve(args.address).await?;
    Ok(())
}
