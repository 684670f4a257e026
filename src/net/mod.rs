//! Bridges, veth, IPAM, per-network DNS and nftables port publishing. Arrives with its issue.

pub mod netns;
