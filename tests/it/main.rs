//! Integration tests: a real server on an ephemeral port, spoken to over real HTTP.
//!
//! One test binary with modules keeps link time down.

mod support;

mod camera_example;
mod stream_http;
