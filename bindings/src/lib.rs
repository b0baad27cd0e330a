//! uniffi bindings of the Polku core for the Android (Kotlin) and iOS (Swift) shells. Thin: objects
//! wrap the core, records are converted in `convert`, errors mapped in `error`. Bindings are
//! generated from the built library (library mode) by the `uniffi-bindgen` binary of this crate.

mod client;
mod convert;
mod error;
mod messaging;
mod safety;
mod screen;
mod sync;
mod visits;

pub use client::*;
pub use convert::*;
pub use error::{ImportProblem, PolkuError};
pub use messaging::*;
pub use safety::*;
pub use screen::*;
pub use sync::*;
pub use visits::*;

uniffi::setup_scaffolding!();
