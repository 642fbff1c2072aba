//! The HTTP/1.1 server underneath, usable with any axum router: [`serve`] bounds what each
//! connection queues, so a slow stream viewer gets recent frames and never holds up the others,
//! and answers clients that misbehave (too many, too slow, stalled) with problem JSON.
//!
//! Needs no other part of the framework: it is available with `default-features = false`,
//! beside [`crate::stream`].

mod connection;
#[cfg(feature = "tls")]
mod h2;
mod limits;
mod options;
mod service;
mod stall;
#[cfg(feature = "tls")]
mod tls;

pub use connection::{Serve, serve};
pub use options::ConnectionOptions;
#[cfg(feature = "server")]
pub(crate) use options::seconds;
pub use service::{ClientAddr, LocalAddr, TlsConnection};
#[cfg(feature = "tls")]
pub use tls::TlsCertificate;
