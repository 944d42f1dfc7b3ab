//! An allocation counter for the benchmarks (cargo feature `count-allocations`): wraps the
//! global allocator and counts allocations, which `/status` reports as `allocations`.

// A global allocator can only be written with `unsafe`: this module forwards each call
// unchanged to the wrapped allocator, and is compiled into the binary only for benchmarks.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Allocations made by the process so far (0 unless the binary counts them).
pub fn count() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// A global allocator that counts the allocations of the one it wraps.
#[derive(Debug)]
pub struct Counting<A>(pub A);

// SAFETY: every call is forwarded unchanged to the wrapped allocator, which upholds the
// `GlobalAlloc` contract; the counter has no effect on memory.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}
