//! Links the berth executable as non-PIE. Every process of this binary (the daemon and one
//! shim per container) otherwise carries its own relocated copy of .data.rel.ro: ~570 KiB
//! of private dirty pages each, the largest part of a shim's memory. Non-PIE leaves those
//! pages clean and shared through the page cache. The trade-off is a fixed load address for
//! the executable image (shared libraries, heap, stacks and mmaps stay randomized) — the
//! same choice Go makes for containerd's shims by default.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
