//! A simulated camera, served at `/camera/`: no hardware and no configuration needed.
//!
//! ```text
//! cargo run --example camera -- [--host 127.0.0.1] [--port 5000]
//! ```
//!
//! Then open <http://127.0.0.1:5000/camera/mjpeg_stream/viewer>.

#[path = "support/camera_app.rs"]
mod camera_app;
#[path = "support/cli.rs"]
mod cli;
#[path = "support/sim.rs"]
mod sim;

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = cli::bind_address("camera", "A simulated camera with two live MJPEG streams");
    cli::init_logging();
    let app = camera_app::CameraApp::start(sim::CameraSettings::default());
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("could not listen on {address}"))?;
    let address = listener.local_addr()?;
    tracing::info!("serving the simulated camera on http://{address}/camera/");
    for name in ["mjpeg_stream", "lores_mjpeg_stream"] {
        tracing::info!("  http://{address}/camera/{name}/viewer");
    }
    let streams = (app.full.clone(), app.lores.clone());
    labthings::serve(listener, app.router())
        .with_graceful_shutdown(async move {
            cli::shutdown_signal().await;
            tracing::info!("shutting down");
            streams.0.stop();
            streams.1.stop();
        })
        .await?;
    drop(app);
    Ok(())
}
