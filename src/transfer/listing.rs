//! An open directory. Its entries are listed once when it is opened (so pages are consistent),
//! held compactly and charged to the memory budget, and handed out a page at a time: OpenSSH's
//! client refuses replies over 256 KiB, and a 3,000-entry directory in one reply was 519 KB.
//! Plaintext sizes (one header read per file, a page's reads side by side) are read only for
//! the page being sent.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;

use super::{FileInfo, TransferError, entry_info};
use crate::budget::{MemoryBudget, Reservation};
use crate::storage::{Destination, Entry, EntryKind};

/// One entry as held between pages: a fraction of what a finished reply entry takes.
#[derive(Debug)]
struct Listed {
    name: Box<str>,
    is_dir: bool,
    sealed_len: u64,
    modified: SystemTime,
}

/// Header reads one listing page issues at once. Each holds one header (under 2 KiB) and one
/// store connection; 16 keeps a page to about one store round trip without crowding the
/// connection pool that uploads share.
const HEADER_READS_IN_FLIGHT: usize = 16;

/// What one held entry costs beyond its name: the struct and the name's allocation.
const LISTED_OVERHEAD: usize = std::mem::size_of::<Listed>() + 16;

pub struct DirListing {
    destination: Arc<dyn Destination>,
    /// The directory's store key ("" is the destination root).
    dir: String,
    entries: std::vec::IntoIter<Listed>,
    _reserved: Reservation,
}

impl std::fmt::Debug for DirListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirListing")
            .field("dir", &self.dir)
            .field("remaining", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl DirListing {
    /// Holds `entries` of `dir`, if the budget has room for them.
    pub(super) fn new(
        destination: Arc<dyn Destination>,
        dir: String,
        entries: Vec<Entry>,
        budget: &MemoryBudget,
    ) -> Result<DirListing, TransferError> {
        let cost: usize = entries.iter().map(|e| e.name.len() + LISTED_OVERHEAD).sum();
        let Some(reserved) = budget.try_reserve(cost) else {
            tracing::warn!(
                entries = entries.len(),
                cost,
                "directory listing refused: memory budget in use"
            );
            return Err(TransferError::Failure(format!(
                "the directory's {} entries do not fit in the gateway's memory for open listings right now (part of storage.memory_budget); close other listings or try again later",
                entries.len()
            )));
        };
        let entries: Vec<Listed> = entries
            .into_iter()
            .map(|e| Listed {
                name: e.name.into_boxed_str(),
                is_dir: e.kind == EntryKind::Dir,
                sealed_len: e.sealed_len,
                modified: e.modified,
            })
            .collect();
        Ok(DirListing {
            destination,
            dir,
            entries: entries.into_iter(),
            _reserved: reserved,
        })
    }

    /// Entries not handed out yet.
    pub fn remaining(&self) -> usize {
        self.entries.len()
    }

    /// The next page: at most `max_entries` entries whose names total at most `max_name_bytes`
    /// (but always one, however long its name), or `None` at the end. Files whose size cannot
    /// be read (foreign or damaged) are skipped, as in any listing.
    pub async fn next_page(
        &mut self,
        max_entries: usize,
        max_name_bytes: usize,
    ) -> Result<Option<Vec<FileInfo>>, TransferError> {
        loop {
            let page = self.fill(max_entries, max_name_bytes).await;
            // A page whose entries were all skipped does not end the listing early.
            if !page.is_empty() || self.entries.len() == 0 {
                return Ok((!page.is_empty()).then_some(page));
            }
        }
    }

    async fn fill(&mut self, max_entries: usize, max_name_bytes: usize) -> Vec<FileInfo> {
        let mut taken = Vec::new();
        let mut name_bytes = 0;
        while taken.len() < max_entries {
            let fits = |l: &Listed| taken.is_empty() || name_bytes + l.name.len() <= max_name_bytes;
            if !self.entries.as_slice().first().is_some_and(fits) {
                break;
            }
            let Some(l) = self.entries.next() else { break };
            name_bytes += l.name.len();
            taken.push(l);
        }
        // One header read per file: issued side by side (the page's order is kept), so a page
        // costs about one round trip to the store rather than one per file.
        let destination = self.destination.as_ref();
        let dir = self.dir.as_str();
        futures::stream::iter(taken)
            .map(|l| async move {
                let key = if dir.is_empty() {
                    l.name.to_string()
                } else {
                    format!("{dir}/{}", l.name)
                };
                let name = l.name.to_string();
                let entry = Entry {
                    name: l.name.into(),
                    kind: if l.is_dir {
                        EntryKind::Dir
                    } else {
                        EntryKind::File
                    },
                    sealed_len: l.sealed_len,
                    modified: l.modified,
                };
                entry_info(destination, &key, name, entry).await
            })
            .buffered(HEADER_READS_IN_FLIGHT)
            .filter_map(|r| async move {
                r.map_err(|err| tracing::warn!(error = %err, "skipping unreadable entry"))
                    .ok()
            })
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::FsDestination;

    /// A store whose root holds `n` directories (listed without reading any header).
    async fn store_with_dirs(n: usize) -> (tempfile::TempDir, Arc<dyn Destination>, Vec<Entry>) {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..n {
            std::fs::create_dir(dir.path().join(format!("d{i:05}"))).unwrap();
        }
        let store: Arc<dyn Destination> =
            Arc::new(FsDestination::open("d", dir.path(), "DE").unwrap());
        let entries = store.list("").await.unwrap();
        assert_eq!(entries.len(), n);
        (dir, store, entries)
    }

    #[tokio::test]
    async fn pages_hand_out_every_entry_once_within_their_bounds() {
        let (_dir, store, entries) = store_with_dirs(3000).await;
        let budget = MemoryBudget::new(16 << 20);
        let mut l = DirListing::new(store, String::new(), entries, &budget).unwrap();
        let held = (16 << 20) - budget.available_bytes();
        // Compact: well under 100 bytes an entry (it was about 350 as finished reply entries).
        assert!(held <= 3000 * 100, "{held} bytes held for 3000 entries");
        let mut seen = Vec::new();
        while let Some(page) = l.next_page(100, 250).await.unwrap() {
            assert!(page.len() <= 100);
            let names: usize = page.iter().map(|e| e.name.len()).sum();
            assert!(names <= 250, "{names} name bytes in a page");
            seen.extend(page.into_iter().map(|e| e.name));
        }
        let want: Vec<String> = (0..3000).map(|i| format!("d{i:05}")).collect();
        assert_eq!(seen, want, "all, in order, once");
        assert!(l.next_page(100, 250).await.unwrap().is_none());
        drop(l);
        assert_eq!(budget.available_bytes(), 16 << 20, "the budget comes back");
    }

    #[tokio::test]
    async fn a_listing_the_budget_cannot_hold_is_refused() {
        let (_dir, store, entries) = store_with_dirs(3000).await;
        let budget = MemoryBudget::new(1 << 20).share(64 << 10);
        let e = DirListing::new(store, String::new(), entries, &budget).unwrap_err();
        assert!(e.to_string().contains("storage.memory_budget"), "{e}");
        assert!(e.to_string().contains("3000 entries"), "{e}");
        assert_eq!(budget.available_bytes(), 64 << 10, "nothing kept");
    }

    #[tokio::test]
    async fn a_name_longer_than_the_page_bound_still_comes_out() {
        let (_dir, store, entries) = store_with_dirs(3).await;
        let budget = MemoryBudget::new(16 << 20);
        let mut l = DirListing::new(store, String::new(), entries, &budget).unwrap();
        for _ in 0..3 {
            assert_eq!(l.next_page(100, 1).await.unwrap().unwrap().len(), 1);
        }
        assert!(l.next_page(100, 1).await.unwrap().is_none());
    }
}
