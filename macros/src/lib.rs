//! Procedural macros for [`labthings`](https://docs.rs/labthings).
//!
//! This crate only turns syntax into calls of the framework's public API; it holds no runtime
//! logic. The `#[derive(Thing)]` and `#[thing_actions]` macros land here with the Things issue;
//! until then the crate exports nothing, so that the workspace layout is fixed from the start.
