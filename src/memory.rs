//! Handing freed heap back to the kernel.

/// Asks glibc to return freed heap to the kernel (a no-op elsewhere:
/// musl returns large frees by itself). Start-up allocates and frees a lot
/// at once; without this the process keeps that peak as its resident size.
#[allow(unsafe_code)]
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes the allocator's locks and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
