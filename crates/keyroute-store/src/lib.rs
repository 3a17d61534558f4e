//! keyroute's store backends: where users and API keys live.
//!
//! Every backend implements the [`keyroute_core::store`] traits and passes one
//! conformance suite, so a service moves between them by changing one line.
//!
//! | feature | backend | for |
//! |---|---|---|
//! | `memory` (default) | [`MemoryStore`] | single-process services, demos, tests above the store |
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "memory")]
pub mod memory;

#[cfg(feature = "memory")]
pub use memory::MemoryStore;
