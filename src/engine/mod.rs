//! The container engine (content store, registry client, snapshots, runtime, shim, logs).
//! Arrives with its issues; empty on purpose so nothing pretends to work.
