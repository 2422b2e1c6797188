//! Values by a dense number (an API key's or a quota count's slot), in fixed chunks made on
//! first use: a lookup is two indexes, with no hashing and no probing, so the state of one of
//! 100,000 keys costs one memory access that is likely a cache miss rather than several.

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::sync::lock;

/// Slots per chunk.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
/// Chunks: 8192 × 4096 = 33.5 million slots, more than a node makes in its life (a slot is
/// taken per API key id and per key's plan change, never per request).
const CHUNKS: usize = 1 << 13;

/// `CHUNK` slots, made when the first of them is used.
type Chunk<T> = OnceLock<Box<[Mutex<T>]>>;

/// A table of `T` by slot number; a slot never used reads as `T::default()`.
#[derive(Debug)]
pub struct SlotTable<T> {
    chunks: Box<[Chunk<T>]>,
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
        let chunk = self
            .chunks
            .get(chunk)?
            .get_or_init(|| (0..CHUNK).map(|_| Mutex::default()).collect());
        Some(lock(&chunk[index]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_hold_their_values_and_end() {
        let table: SlotTable<u64> = SlotTable::default();
        *table.get(0).unwrap() = 1;
        *table.get(5000).unwrap() = 2;
        assert_eq!(*table.get(0).unwrap(), 1);
        assert_eq!(*table.get(5000).unwrap(), 2);
        assert_eq!(*table.get(4999).unwrap(), 0);
        let last = (CHUNK * CHUNKS) as u64 - 1;
        assert_eq!(*table.get(last).unwrap(), 0);
        assert!(table.get(last + 1).is_none());
    }
}
