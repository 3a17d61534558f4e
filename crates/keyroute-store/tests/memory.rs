//! The conformance suite on the memory store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[macro_use]
mod conformance;

use keyroute_store::MemoryStore;

conformance_suite!(async { (MemoryStore::new(), ()) });
