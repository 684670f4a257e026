use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_char, c_int, CStr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

/// One allocator per role, chosen before the first allocation. Loading a large project is
/// allocation-bound and mimalloc roughly halves that cost, so the CLI uses it. The daemon
/// and the shims are long-lived and allocate little: glibc's malloc touches a few pages
/// where mimalloc's arenas and per-thread heaps cost ~250 KiB per process (×30 shims).
struct RoleAllocator;

static SYSTEM_MALLOC: AtomicBool = AtomicBool::new(false);

#[global_allocator]
static GLOBAL: RoleAllocator = RoleAllocator;

// SAFETY (all four): each call goes to the allocator chosen by `choose_allocator`, which runs
// from .init_array before any Rust code allocates and never changes afterwards, so every
// block is freed by the allocator that made it.
unsafe impl GlobalAlloc for RoleAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if SYSTEM_MALLOC.load(Ordering::Relaxed) {
            System.alloc(layout)
        } else {
            mimalloc::MiMalloc.alloc(layout)
        }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if SYSTEM_MALLOC.load(Ordering::Relaxed) {
            System.alloc_zeroed(layout)
        } else {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SYSTEM_MALLOC.load(Ordering::Relaxed) {
            System.dealloc(ptr, layout)
        } else {
            mimalloc::MiMalloc.dealloc(ptr, layout)
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if SYSTEM_MALLOC.load(Ordering::Relaxed) {
            System.realloc(ptr, layout, new_size)
        } else {
            mimalloc::MiMalloc.realloc(ptr, layout, new_size)
        }
    }
}

/// glibc calls .init_array entries with (argc, argv, envp) before `main` and before the Rust
/// runtime could allocate. `berth shim ...` and `berth [global options] daemon` get glibc's
/// malloc. The daemon test is a plain word match: a CLI command that happens to carry the
/// word `daemon` as an argument only trades mimalloc's speed for glibc's, which is harmless.
#[used]
#[link_section = ".init_array"]
static CHOOSE_ALLOCATOR: extern "C" fn(c_int, *const *const c_char, *const *const c_char) =
    choose_allocator;

extern "C" fn choose_allocator(argc: c_int, argv: *const *const c_char, _: *const *const c_char) {
    if argv.is_null() {
        return;
    }
    let arg = |i: c_int| {
        // SAFETY: glibc passes argc valid, NUL-terminated argv entries.
        unsafe {
            let p = *argv.offset(i as isize);
            (!p.is_null()).then(|| CStr::from_ptr(p).to_bytes())
        }
    };
    let system = arg(1) == Some(b"shim".as_slice()) || (1..argc).any(|i| arg(i) == Some(b"daemon"));
    SYSTEM_MALLOC.store(system, Ordering::Relaxed);
}

fn main() -> ExitCode {
    // Each container's monitor runs for its lifetime: keep the CLI parser out of it.
    if let Some(code) = berth::engine::shim::start_fast_path() {
        return code;
    }
    berth::cli::run(berth::cli::Cli::parse())
}
