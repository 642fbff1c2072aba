//! The simulated camera's HTTP app, shared by `examples/camera.rs` and the integration tests.
#![allow(dead_code)]

use axum::Router;
use labthings::stream::{self, MjpegStream};

use super::sim::{CameraSettings, SimulatedCamera};

/// The camera's streams and the thread that feeds them.
pub struct CameraApp {
    pub full: MjpegStream,
    pub lores: MjpegStream,
    pub camera: SimulatedCamera,
}

impl CameraApp {
    pub fn start(settings: CameraSettings) -> Self {
        let full = MjpegStream::new();
        let lores = MjpegStream::with_ringbuffer_size(4);
        let camera = SimulatedCamera::start(settings, full.clone(), lores.clone());
        Self {
            full,
            lores,
            camera,
        }
    }

    /// `/camera/mjpeg_stream` and `/camera/lores_mjpeg_stream`, each with `/snapshot` and
    /// `/viewer`.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(stream::routes("/camera/mjpeg_stream", self.full.clone()))
            .merge(stream::routes(
                "/camera/lores_mjpeg_stream",
                self.lores.clone(),
            ))
    }

    /// Ends every viewer (used at shutdown).
    pub fn stop_streams(&self) {
        self.full.stop();
        self.lores.stop();
    }
}
