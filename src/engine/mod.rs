//! The container engine: images (content store, registry client, layer unpack, snapshots,
//! image metadata). The runtime, shim, logs and health checks arrive with issue 4; nothing
//! here pretends to do their job yet.

pub mod container;
pub mod image;
pub mod runtime;
pub mod shim;
