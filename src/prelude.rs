//! The names a Thing author writes every day, in one line: `use labthings::prelude::*;`.
//!
//! # Examples
//!
//! ```
//! use labthings::prelude::*;
//!
//! /// A lamp on the bench.
//! #[derive(Thing)]
//! struct Lamp {
//!     /// Whether the lamp is on.
//!     #[property]
//!     on: Property<bool>,
//! }
//!
//! let server = ThingServer::builder()
//!     .add_thing("lamp", Lamp { on: Property::new(false) })
//!     .without_settings_folder()
//!     .build();
//! assert!(server.is_ok());
//! ```

pub use crate::action::{ActionContext, Blob, Cancelled, NdArray};
pub use crate::event::Event;
pub use crate::problem::Problem;
pub use crate::property::Property;
pub use crate::server::ThingServer;
pub use crate::thing::Thing;
pub use labthings_macros::{Thing, data, thing_actions};
pub use schemars::JsonSchema;
