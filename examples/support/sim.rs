//! A simulated camera: renders a moving test pattern with the time drawn in on its own thread,
//! and hands the raw RGB frames to the framework's frame pipeline, which encodes them for two
//! [`MjpegStream`]s (full size and half) whenever someone watches. No hardware needed.
//!
//! Shared by the examples, the benchmark and the integration tests (`#[path]` includes).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use labthings::stream::MjpegStream;

/// An RGB test pattern: colour bars sliding sideways, a bouncing white square, optional noise,
/// and a caption (the time and frame number) in the top-left corner.
pub struct TestPattern {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
    noise_seed: u64,
}

const BARS: [[u8; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [40, 40, 40],
];

impl TestPattern {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            rgb: vec![0; width * height * 3],
            noise_seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Draws the scene at `seconds` since the start; `noise` (0-255) adds per-pixel grain,
    /// which makes JPEGs larger (the benchmark uses it to reach realistic frame sizes).
    pub fn render(&mut self, seconds: f64, caption: &str, noise: u8) -> &[u8] {
        self.render_scene(seconds, caption, noise, Scene::default())
    }

    /// As [`render`](Self::render), seen through a stage offset and with a brightness.
    pub fn render_scene(&mut self, seconds: f64, caption: &str, noise: u8, scene: Scene) -> &[u8] {
        let (w, h) = (self.width, self.height);
        // Colour bars, sliding by a tenth of the width per second, with a vertical gradient;
        // the stage position shifts the whole scene (one step is one pixel at full size).
        let scale = 640.0 / w as f64;
        let drift = (seconds * w as f64 / 10.0) as i64 - (scene.offset.0 as f64 / scale) as i64;
        let shift = drift.rem_euclid(w as i64) as usize;
        let y_shift = (-(scene.offset.1 as f64) / scale) as i64;
        let brightness = scene.brightness.clamp(0.0, 4.0);
        let mut row = vec![0u8; w * 3];
        for y in 0..h {
            let scene_y = (y as i64 + y_shift).rem_euclid(h as i64) as usize;
            let shade = (255 - (scene_y * 96 / h) as u16) as f64 * brightness;
            for x in 0..w {
                let bar = BARS[((x + shift) * BARS.len() / w) % BARS.len()];
                for c in 0..3 {
                    row[x * 3 + c] = (bar[c] as f64 * shade / 255.0).min(255.0) as u8;
                }
            }
            self.rgb[y * w * 3..(y + 1) * w * 3].copy_from_slice(&row);
        }
        // A white square bouncing between the edges.
        let size = h / 6;
        let bounce = |range: usize, speed: f64| {
            let period = 2 * range.max(1);
            let p = (seconds * speed) as usize % period;
            if p < range { p } else { period - p }
        };
        let (sx, sy) = (bounce(w - size, 180.0), bounce(h - size, 130.0));
        self.fill(sx, sy, size, size, [255, 255, 255]);
        if noise > 0 {
            let mut state = self.noise_seed ^ (seconds.to_bits());
            for value in self.rgb.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let grain = (state % (noise as u64 + 1)) as i16 - noise as i16 / 2;
                *value = (*value as i16 + grain).clamp(0, 255) as u8;
            }
        }
        self.caption(caption);
        &self.rgb
    }

    fn fill(&mut self, x0: usize, y0: usize, w: usize, h: usize, colour: [u8; 3]) {
        for y in y0..(y0 + h).min(self.height) {
            for x in x0..(x0 + w).min(self.width) {
                let i = (y * self.width + x) * 3;
                self.rgb[i..i + 3].copy_from_slice(&colour);
            }
        }
    }

    fn caption(&mut self, text: &str) {
        let scale = (self.height / 160).max(1);
        let (cw, ch) = (6 * scale, 8 * scale);
        let chars = text.chars().count();
        self.fill(0, 0, chars * cw + 2 * scale, ch + 2 * scale, [0, 0, 0]);
        for (n, c) in text.chars().enumerate() {
            let glyph = glyph(c);
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..5 {
                    if bits & (0b10000 >> gx) != 0 {
                        let x = scale + n * cw + gx * scale;
                        let y = scale + gy * scale;
                        self.fill(x, y, scale, scale, [255, 255, 255]);
                    }
                }
            }
        }
    }
}

/// A 5x7 bitmap font for digits and the few signs a clock needs.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        _ => [0; 7],
    }
}

/// What the camera sees besides time: where the stage is, and how bright the image is.
#[derive(Debug, Clone, Copy)]
pub struct Scene {
    /// Stage position (x, y) in steps.
    pub offset: (i64, i64),
    /// 1.0 is the pattern as designed.
    pub brightness: f64,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            offset: (0, 0),
            brightness: 1.0,
        }
    }
}

/// Encodes RGB pixels as a baseline JPEG.
pub fn encode_jpeg(rgb: &[u8], width: usize, height: usize, quality: u8) -> Vec<u8> {
    let mut jpeg = Vec::with_capacity(rgb.len() / 8);
    let encoder = jpeg_encoder::Encoder::new(&mut jpeg, quality);
    encoder
        .encode(
            rgb,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("the pattern has the size it says");
    jpeg
}

/// A camera thread rendering, encoding and adding frames to a full-size and a low-resolution
/// stream. Stops (and joins the thread) when dropped.
pub struct SimulatedCamera {
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What the simulated camera produces.
#[derive(Debug, Clone, Copy)]
pub struct CameraSettings {
    pub width: usize,
    pub height: usize,
    pub fps: f64,
    pub quality: u8,
    /// Whether the pattern drifts over time (off in tests that look for the stage's effect).
    pub drift: bool,
}

impl Default for CameraSettings {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps: 30.0,
            quality: 85,
            drift: true,
        }
    }
}

/// Called before each frame for the scene, and after it with the frame count.
pub trait SceneSource: Send + 'static {
    fn scene(&mut self) -> Scene {
        Scene::default()
    }
    fn captured(&mut self, _frames: u64) {}
}

impl SceneSource for () {}

impl SimulatedCamera {
    /// Starts the camera thread; `lores` gets frames at half the width and height. The thread
    /// renders raw RGB frames; a [`labthings::stream::FramePipeline`] encodes them.
    pub fn start(settings: CameraSettings, full: MjpegStream, lores: MjpegStream) -> Self {
        Self::start_with(settings, full, lores, ())
    }

    /// Starts the camera thread, asking `source` for the scene before each frame.
    pub fn start_with(
        settings: CameraSettings,
        full: MjpegStream,
        lores: MjpegStream,
        source: impl SceneSource,
    ) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let thread = std::thread::Builder::new()
            .name("simulated-camera".into())
            .spawn({
                let running = running.clone();
                move || capture_loop(settings, &full, &lores, &running, source)
            })
            .expect("a thread can be spawned");
        Self {
            running,
            thread: Some(thread),
        }
    }
}

impl Drop for SimulatedCamera {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn capture_loop(
    settings: CameraSettings,
    full: &MjpegStream,
    lores: &MjpegStream,
    running: &AtomicBool,
    mut source: impl SceneSource,
) {
    let mut pattern = TestPattern::new(settings.width, settings.height);
    // The framework encodes: both streams from one raw frame, and nothing while unwatched.
    let pipeline = labthings::stream::FramePipeline::builder(full)
        .lores(lores, 2)
        .quality(settings.quality)
        .build();
    let interval = Duration::from_secs_f64(1.0 / settings.fps.max(0.1));
    let start = Instant::now();
    let mut next = start;
    let mut frame = 0u64;
    while running.load(Ordering::Relaxed) {
        if !pipeline.is_watched() {
            // Nobody watches, records or captures, and no history is armed: a real sensor
            // would idle now. Check again each frame time, so a viewer waits at most that.
            std::thread::sleep(interval);
            next = Instant::now();
            continue;
        }
        let seconds = if settings.drift {
            start.elapsed().as_secs_f64()
        } else {
            0.0
        };
        let caption = format!("{} #{frame}", chrono::Utc::now().format("%H:%M:%S%.3f"));
        let scene = source.scene();
        let (w, h) = (pattern.width(), pattern.height());
        let rgb = pattern.render_scene(seconds, &caption, 0, scene).to_vec();
        let raw = labthings::stream::RawFrame::new(
            labthings::stream::PixelFormat::Rgb8,
            u16::try_from(w).expect("a simulated frame fits"),
            u16::try_from(h).expect("a simulated frame fits"),
            rgb,
        )
        .expect("the pattern is width x height RGB");
        pipeline.push(raw);
        frame += 1;
        source.captured(frame);
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Running late (a slow machine): skip ahead rather than burst.
            next = now;
        }
    }
}
