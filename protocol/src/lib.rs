//! What a device and the server must agree on, and nothing else: the sync wire format
//! ([`wire`]), the record kinds and the checks every operation passes ([`op`]), the hybrid
//! logical clock that orders them ([`hlc`]), the diary entry data they carry and its plausibility limits ([`entry`], [`validate`]) and the
//! roles a token grants ([`role`]), and the key directory of end-to-end encrypted messaging
//! ([`keys`]), its relay of ciphertext ([`relay`]) and its sealed attachments ([`attachment`]); [`mutation`] makes near-valid inputs for
//! the tests of every decoder of untrusted bytes; [`visit`] holds the service plans of home-care and
//! outreach visits. No storage and no I/O: the server links this crate, not the
//! device's core (docs/architecture.md).

pub mod attachment;
pub mod entry;
pub mod hlc;
pub mod keys;
pub mod mutation;
pub mod op;
pub mod relay;
pub mod role;
pub mod validate;
pub mod visit;
pub mod wire;

pub use role::Role;
