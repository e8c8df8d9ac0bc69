//! Which slot holds the stream of each id in use: a table indexed by the id, in pages of 256 ids,
//! a page allocated when its first id comes into use and freed when its last one is released.
//!
//! Ids in use are dense (first-fit from each side's end, `ids.rs`), so n streams take about n/256
//! pages: a little over 4 bytes per stream and no hashing, where a hash map took 10 to 20 bytes
//! per stream at the sizes it grows through. The last page freed is kept for the next one needed:
//! a session that opens and closes one stream at a time would otherwise allocate and free a page
//! (1 KiB) for every stream.

/// Ids per page.
const PAGE: usize = 256;
/// Pages of the whole id space.
const PAGES: usize = 65_536 / PAGE;
/// An entry that holds no slot.
const NONE: u32 = u32::MAX;

/// A map from ids in use to slot indices.
#[derive(Debug, Default)]
pub(crate) struct IdTable {
    /// Empty until the first insert, then one entry per page of the id space.
    pages: Vec<Option<Box<Page>>>,
    len: usize,
    /// A page freed, every entry empty, kept for the next page needed.
    spare: Option<Box<Page>>,
}

#[derive(Debug)]
struct Page {
    /// Entries of this page that hold a slot.
    used: u16,
    slots: [u32; PAGE],
}

fn split(id: u16) -> (usize, usize) {
    (id as usize / PAGE, id as usize % PAGE)
}

impl IdTable {
    /// The slot of `id`, if it is in use.
    pub(crate) fn get(&self, id: u16) -> Option<u32> {
        let (p, i) = split(id);
        let slot = self.pages.get(p)?.as_ref()?.slots[i];
        (slot != NONE).then_some(slot)
    }

    /// Puts `id` at `slot`, returning the slot it was at before, if any.
    pub(crate) fn insert(&mut self, id: u16, slot: u32) -> Option<u32> {
        debug_assert_ne!(slot, NONE, "slot indices stay far below u32::MAX");
        if self.pages.is_empty() {
            self.pages.resize_with(PAGES, || None);
        }
        let (p, i) = split(id);
        let spare = &mut self.spare;
        let page = self.pages[p].get_or_insert_with(|| {
            spare.take().unwrap_or_else(|| {
                Box::new(Page {
                    used: 0,
                    slots: [NONE; PAGE],
                })
            })
        });
        let old = std::mem::replace(&mut page.slots[i], slot);
        if old == NONE {
            page.used += 1;
            self.len += 1;
            None
        } else {
            Some(old)
        }
    }

    /// Takes `id` out, returning its slot, if it was in use.
    pub(crate) fn remove(&mut self, id: u16) -> Option<u32> {
        let (p, i) = split(id);
        let entry = self.pages.get_mut(p)?;
        let page = entry.as_mut()?;
        let old = std::mem::replace(&mut page.slots[i], NONE);
        if old == NONE {
            return None;
        }
        page.used -= 1;
        self.len -= 1;
        if page.used == 0 {
            // Every entry is NONE again: the page can serve any other.
            self.spare = entry.take();
        }
        Some(old)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slots of every id in use, in id order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.pages
            .iter()
            .flatten()
            .flat_map(|page| page.slots.iter().copied().filter(|&s| s != NONE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_slots_across_pages_and_empty_pages_are_freed() {
        let mut t = IdTable::default();
        assert!(t.is_empty());
        assert_eq!(t.get(7), None);
        assert_eq!(t.remove(7), None, "removing from an empty table");
        for id in [0u16, 1, 255, 256, 40_000, 65_535] {
            assert_eq!(t.insert(id, u32::from(id) * 3), None);
        }
        assert_eq!(
            t.insert(256, 9),
            Some(768),
            "insert replaces and says what was there"
        );
        assert_eq!(t.get(0), Some(0));
        assert_eq!(t.get(256), Some(9));
        assert_eq!(t.get(65_535), Some(196_605));
        assert_eq!(t.get(2), None, "an unused id in a used page");
        assert_eq!(t.get(300), None, "an unused id in a used page");
        assert_eq!(
            t.slots().collect::<Vec<_>>(),
            [0, 3, 765, 9, 120_000, 196_605]
        );
        assert_eq!(t.pages.iter().flatten().count(), 4);

        assert_eq!(t.remove(255), Some(765));
        assert_eq!(t.remove(255), None, "removed once only");
        assert_eq!(
            t.pages.iter().flatten().count(),
            4,
            "ids 0 and 1 keep page 0"
        );
        assert_eq!(t.remove(256), Some(9));
        assert_eq!(t.pages.iter().flatten().count(), 3, "page 1 is freed");
        for id in [0, 1, 40_000, 65_535] {
            assert!(t.remove(id).is_some());
        }
        assert!(t.is_empty());
        assert_eq!(t.pages.iter().flatten().count(), 0, "every page is freed");
        assert_eq!(t.slots().count(), 0);
        assert!(t.spare.is_some(), "the last page freed is kept");
        // The kept page serves another part of the id space, empty.
        assert_eq!(t.insert(1_000, 4), None);
        assert!(t.spare.is_none());
        assert_eq!(t.get(1_000), Some(4));
        assert_eq!(t.get(1_001), None);
        assert_eq!(t.slots().collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn every_id_at_once() {
        let mut t = IdTable::default();
        for id in 0..=u16::MAX {
            t.insert(id, u32::from(id));
        }
        assert_eq!(t.len, 65_536);
        assert!((0..=u16::MAX).all(|id| t.get(id) == Some(u32::from(id))));
        assert!(t.slots().eq(0..65_536));
        for id in (0..=u16::MAX).rev() {
            assert_eq!(t.remove(id), Some(u32::from(id)));
        }
        assert!(t.is_empty() && t.pages.iter().all(Option::is_none));
    }
}
