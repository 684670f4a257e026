//! Images: references, the content store, the registry client, secure layer unpack, overlay
//! snapshots and the image index. Laid out after containerd: content, snapshots and metadata
//! are separate pieces with narrow interfaces, everything keyed by digest, writes staged in
//! `ingest/` and committed by rename.

pub mod archive;
pub mod content;
pub mod digest;
pub mod fsutil;
pub mod imagespec;
pub mod reference;
pub mod registry;
pub mod service;
pub mod snapshot;
pub mod store;
#[doc(hidden)]
pub mod testkit;
pub mod unpack;
