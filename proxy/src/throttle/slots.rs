//! Values by a dense number (an API key's slot), in fixed chunks made on first use: a lookup is
//! two indexes, with no hashing and no probing.
//!
//! Each chunk is one 2 MiB-aligned allocation that the kernel is asked to back with a huge page
//! (`madvise(MADV_HUGEPAGE)`): with 100,000 keys spread over 4 KiB pages, a check for a random
//! key would miss the TLB and wait for a page walk on top of the cache miss for the entry.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::sync::lock;

/// Slots per chunk: 16,384 entries of 128 bytes fill one 2 MiB huge page.
const CHUNK_BITS: u32 = 14;
const CHUNK: usize = 1 << CHUNK_BITS;
/// Chunks: 2048 × 16,384 = 33.5 million slots, more than a node makes in its life (a slot is
/// taken per API key id, never per request).
const CHUNKS: usize = 1 << 11;
/// The alignment that lets the kernel use a huge page for a chunk.
const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// `CHUNK` values in one allocation.
struct ChunkMemory<T> {
    values: NonNull<Mutex<T>>,
    layout: Layout,
}

// SAFETY: a chunk owns its values, as a `Box<[Mutex<T>]>` would; `Mutex<T>` is `Send` and
// `Sync` when `T` is `Send`.
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for ChunkMemory<T> {}
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for ChunkMemory<T> {}

impl<T> std::fmt::Debug for ChunkMemory<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkMemory")
            .field("bytes", &self.layout.size())
            .finish_non_exhaustive()
    }
}

#[allow(unsafe_code)]
impl<T: Default> ChunkMemory<T> {
    fn new() -> Self {
        let size = std::mem::size_of::<Mutex<T>>().max(1) * CHUNK;
        let align = HUGE_PAGE.max(std::mem::align_of::<Mutex<T>>());
        let Ok(layout) = Layout::from_size_align(size, align) else {
            // Not reached: CHUNK values of any type the limiter keeps fit easily.
            panic!("a slot chunk of {size} bytes cannot be laid out");
        };
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc(layout) }.cast::<Mutex<T>>();
        let Some(values) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the range is the allocation just made. A refusal (no huge pages, or a
        // kernel without THP) only means 4 KiB pages.
        unsafe {
            libc::madvise(raw.cast(), size, libc::MADV_HUGEPAGE);
        }
        for i in 0..CHUNK {
            // SAFETY: `i < CHUNK`, inside the allocation, and each value is written once.
            unsafe { raw.add(i).write(Mutex::default()) };
        }
        Self { values, layout }
    }
}

#[allow(unsafe_code)]
impl<T> ChunkMemory<T> {
    fn get(&self, index: usize) -> &Mutex<T> {
        assert!(index < CHUNK);
        // SAFETY: `index < CHUNK` and all CHUNK values were written in `new`.
        unsafe { &*self.values.as_ptr().add(index) }
    }
}

#[allow(unsafe_code)]
impl<T> Drop for ChunkMemory<T> {
    fn drop(&mut self) {
        // SAFETY: the CHUNK values were written in `new` and are dropped once, here; then the
        // allocation is freed with the layout it was made with.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.values.as_ptr(),
                CHUNK,
            ));
            dealloc(self.values.as_ptr().cast(), self.layout);
        }
    }
}

/// A table of `T` by slot number; a slot never used reads as `T::default()`.
#[derive(Debug)]
pub struct SlotTable<T> {
    chunks: Box<[OnceLock<ChunkMemory<T>>]>,
}

impl<T: Default> Default for SlotTable<T> {
    fn default() -> Self {
        Self {
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl<T: Default> SlotTable<T> {
    /// The value in `slot`, locked; `None` past the table's end.
    pub fn get(&self, slot: u64) -> Option<MutexGuard<'_, T>> {
        let chunk = usize::try_from(slot >> CHUNK_BITS).ok()?;
        let index = (slot as usize) & (CHUNK - 1);
        let chunk = self.chunks.get(chunk)?.get_or_init(ChunkMemory::new);
        Some(lock(chunk.get(index)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_hold_their_values_and_end() {
        let table: SlotTable<u64> = SlotTable::default();
        *table.get(0).unwrap() = 1;
        *table.get(20_000).unwrap() = 2;
        assert_eq!(*table.get(0).unwrap(), 1);
        assert_eq!(*table.get(20_000).unwrap(), 2);
        assert_eq!(*table.get(19_999).unwrap(), 0);
        let last = (CHUNK * CHUNKS) as u64 - 1;
        assert_eq!(*table.get(last).unwrap(), 0);
        assert!(table.get(last + 1).is_none());
    }

    #[test]
    fn values_are_dropped_with_the_table() {
        let counted = std::sync::Arc::new(());
        {
            let table: SlotTable<Option<std::sync::Arc<()>>> = SlotTable::default();
            *table.get(3).unwrap() = Some(counted.clone());
            assert_eq!(std::sync::Arc::strong_count(&counted), 2);
        }
        assert_eq!(std::sync::Arc::strong_count(&counted), 1);
    }
}
