//! Polku core: the encrypted local store, the self-care diary, clinical analytics, CGM import and
//! the Kanta PHR FHIR export. Platform shells reach it through `polku-ffi`; the `polku` CLI links it
//! directly. No uniffi here: the core stays a plain Rust library.

pub mod analytics;
pub mod client;
pub mod content;
mod context;
mod crash;
pub mod details;
pub mod diary;
pub mod error;
pub mod fhir;
pub mod import;
pub mod instrument;
pub mod messaging;
pub mod pathway;
pub mod questionnaire;
pub mod safety;
pub mod screen;
pub mod store;
pub mod sync;
pub mod time;
pub mod visits;

pub use client::{ConcernRaised, OpenOptions, Polku, DEFAULT_TZ};
pub use error::{Error, ImportProblem, Result};
pub use store::keys::{self, DbKey};
