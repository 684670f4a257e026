//! Giving memory back to the kernel in berth's long-lived processes: each shim once its
//! container runs, and the daemon when it has been idle for a while.
//!
//! Two things are released. The heap's free pages (`malloc_trim`). And the mappings of the
//! executable's read-only segments (code and constants, from `__executable_start` up to
//! `etext`): starting a container or serving a burst of API calls runs code a shim's poll
//! loop or an idle daemon never touches again, yet those pages would stay mapped — and
//! counted in the process's resident size — for the life of the process. They are clean
//! file-backed pages: dropping the mapping loses nothing (they stay in the page cache), and
//! the next access maps them again. The writable and RELRO segments, which hold relocated
//! data, start after `etext` and are never touched here.

/// Returns free heap pages and unmaps the executable's clean read-only pages (see the module
/// documentation). Safe to call from any thread at any time; costs page faults later.
pub fn release_unused_memory() {
    extern "C" {
        // Defined by the GNU linker's default script for every executable.
        static __executable_start: u8;
        static etext: u8;
    }
    const PAGE: usize = 4096;
    // SAFETY: only the addresses of the linker symbols are taken. malloc_trim locks the
    // arenas itself. MADV_DONTNEED on a clean private file mapping makes the next access
    // read the same bytes from the page cache, even while other threads run that code.
    unsafe {
        libc::malloc_trim(0);
        let start = std::ptr::addr_of!(__executable_start) as usize & !(PAGE - 1);
        let end = std::ptr::addr_of!(etext) as usize & !(PAGE - 1);
        if end > start {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}
