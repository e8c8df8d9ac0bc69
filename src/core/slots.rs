//! A slab with generations: a handle's key stays tied to its own stream even after the slot is
//! reused, so a stale handle can never act on a newer stream.

/// Names one stream for its whole life; never reused for another stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    index: u32,
    generation: u32,
}

impl StreamKey {
    /// The slot index (for maps that point at live values; see [`Slots::key_at`]).
    pub(crate) fn index(self) -> u32 {
        self.index
    }
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Slots are stored in chunks of this many that never move: growing never copies the streams,
/// and never holds more than one chunk of unused room.
const CHUNK: usize = 256;

/// Values addressed by [`StreamKey`].
#[derive(Debug)]
pub(crate) struct Slots<T> {
    chunks: Vec<Vec<Slot<T>>>,
    free: Vec<u32>,
    len: usize,
    /// Every removal takes a fresh generation, so keys stay unique even when the slab is emptied
    /// and its memory given back.
    next_generation: u32,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            chunks: Vec::new(),
            free: Vec::new(),
            len: 0,
            next_generation: 1,
        }
    }
}

impl<T> Slots<T> {
    pub(crate) fn insert(&mut self, value: T) -> StreamKey {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = self.slot_mut(index).expect("free slots exist");
            slot.value = Some(value);
            return StreamKey {
                index,
                generation: slot.generation,
            };
        }
        if self.chunks.last().map_or(true, |c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let index =
            ((self.chunks.len() - 1) * CHUNK + self.chunks.last().expect("pushed").len()) as u32;
        let generation = self.fresh_generation();
        self.chunks.last_mut().expect("pushed").push(Slot {
            generation,
            value: Some(value),
        });
        StreamKey { index, generation }
    }

    fn slot(&self, index: u32) -> Option<&Slot<T>> {
        let i = index as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<T>> {
        let i = index as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// The key of the live value at `index`.
    pub(crate) fn key_at(&self, index: u32) -> Option<StreamKey> {
        let slot = self.slot(index)?;
        slot.value.as_ref()?;
        Some(StreamKey {
            index,
            generation: slot.generation,
        })
    }

    pub(crate) fn get(&self, key: StreamKey) -> Option<&T> {
        let slot = self.slot(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: StreamKey) -> Option<&mut T> {
        let slot = self.slot_mut(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_mut()
    }

    pub(crate) fn remove(&mut self, key: StreamKey) -> Option<T> {
        let slot = self.slot_mut(key.index)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        let generation = self.fresh_generation();
        self.slot_mut(key.index).expect("just found").generation = generation;
        self.free.push(key.index);
        self.len -= 1;
        if self.len == 0 {
            // All gone: give the memory back; generations keep counting, so old keys stay dead.
            self.chunks = Vec::new();
            self.free = Vec::new();
        }
        Some(value)
    }

    fn fresh_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        generation
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn keys(&self) -> Vec<StreamKey> {
        self.chunks
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| StreamKey {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }
}
