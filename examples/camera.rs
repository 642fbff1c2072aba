//! A simulated camera Thing, served at `/camera/`: no hardware and no configuration needed.
//!
//! ```text
//! cargo run --example camera -- [--host 127.0.0.1] [--port 5000] [--settings-folder DIR]
//! ```
//!
//! Then open <http://127.0.0.1:5000/camera/mjpeg_stream/viewer>, or the Thing Description at
//! <http://127.0.0.1:5000/camera/> and the API browser at <http://127.0.0.1:5000/docs/>.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/sim.rs"]
mod sim;
#[path = "support/things.rs"]
mod things;

use labthings::ThingServer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse("camera", "A simulated camera with two live MJPEG streams");
    cli::init_logging();
    let camera = things::Camera::new(sim::CameraSettings::default());
    let mut server = ThingServer::builder().add_thing("camera", camera);
    if let Some(folder) = args.settings_folder {
        server = server.settings_folder(folder);
    }
    server.build()?.serve(args.address).await?;
    Ok(())
}
