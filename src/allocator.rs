//! The binary's global allocator: mimalloc, called through its plain `mi_malloc` family
//! whenever that already gives the alignment asked for.
//!
//! Every mimalloc block is aligned to at least a machine word, so a layout asking for no more
//! than that needs none of the aligned entry points, which cost more on every call (a proxied
//! request runs 424 fewer instructions without them). Only blocks up to mimalloc's small size
//! (1 KiB) are allocated this way: larger ones, taken plainly, left a node 2 MB more resident
//! memory after start for 150 more instructions saved per request, so they stay on the
//! aligned path, as do larger alignments. Freeing and resizing take any block.

// A global allocator can only be written with `unsafe`: each call is forwarded to mimalloc
// with the caller's layout, whose contract mimalloc's functions uphold.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has (its block sizes are whole words).
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc's largest small block (`MI_SMALL_SIZE_MAX`): sizes up to it are allocated plainly.
const SMALL: usize = 1024;

/// Whether `layout` is allocated through the plain functions.
fn plain(layout: Layout) -> bool {
    layout.align() <= WORD && layout.size() <= SMALL
}

/// mimalloc as the global allocator (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mimalloc;

// SAFETY: the plain functions are used only for alignments every block has; the others go
// to mimalloc's aligned functions, as mimalloc's own Rust binding does for all layouts.
// `mi_free` and `mi_realloc` take blocks from either.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions accept any size and power-of-two alignment.
        unsafe {
            if plain(layout) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator; mimalloc frees aligned and plain blocks alike.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps its
        // alignment (plain blocks are word-aligned, the aligned function is given it).
        unsafe {
            if layout.align() <= WORD {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of many sizes (small, medium, above a page) keep every alignment asked, through
    /// allocation, zeroed allocation and growth, and hold what is written into them.
    #[test]
    fn blocks_have_the_alignment_and_content_asked() {
        let a = Mimalloc;
        for size in [1, 7, 8, 24, 52, 1000, 1024, 1100, 5000, 70_000, 1 << 20] {
            for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: the layouts have a non-zero size; each block is freed once with
                // its current layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} aligned {align}");
                    p.write_bytes(0xA5, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "realloc {size} aligned {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xA5));
                    let grown_layout = Layout::from_size_align(size * 3, align).expect("layout");
                    a.dealloc(grown, grown_layout);
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} aligned {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
