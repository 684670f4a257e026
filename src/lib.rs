//! berth: a Compose-style multi-service orchestrator with its own container engine.
//!
//! Layers (dependencies flow one way): `cli` → `compose` / `scheduler` → engine API → `engine`,
//! `net`, `volumes`. See docs/architecture.md.

pub mod api;
pub mod cli;
pub mod compose;
pub mod engine;
pub mod net;
pub mod scheduler;
pub mod trim;
pub mod volumes;
