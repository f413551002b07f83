//! An open directory. Its entries are listed once when it is opened (so pages are consistent),
//! held compactly and charged to the memory budget, and handed out a page at a time: OpenSSH's
//! client refuses replies over 256 KiB, and a 3,000-entry directory in one reply was 519 KB.
//! Plaintext sizes follow from the stored lengths when every object has the fixed-length
//! header of format version 3; otherwise (`storage.legacy_objects`) each file's header is read
//! for the page being sent, a page's reads side by side.

use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;

use super::{FileInfo, TransferError, entry_info};
use crate::budget::{MemoryBudget, Reservation};
use crate::crypto::{HEADER_FIXED_LEN, plaintext_len};
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

/// Where a listing takes each file's plaintext size from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingSizes {
    /// Every object is format version 3: the size follows from the stored length, no request
    /// per file. A length no version 3 object can have is an older object: its header is read.
    FromStoredLengths,
    /// The stores may hold objects of versions 1 and 2, whose header length varies: one header
    /// read per file.
    FromHeaders,
}

/// What one held entry costs beyond its name: the struct and the name's allocation.
const LISTED_OVERHEAD: usize = std::mem::size_of::<Listed>() + 16;

pub struct DirListing {
    destination: Arc<dyn Destination>,
    /// The directory's store key ("" is the destination root).
    dir: String,
    entries: std::vec::IntoIter<Listed>,
    sizes: ListingSizes,
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
        sizes: ListingSizes,
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
            sizes,
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
        // Where a header must be read: issued side by side (the page's order is kept), so a
        // page costs about one round trip to the store rather than one per file.
        let destination = self.destination.as_ref();
        let dir = self.dir.as_str();
        let sizes = self.sizes;
        futures::stream::iter(taken)
            .map(|l| async move {
                if let Some(info) = l.info_from_length(sizes) {
                    return Ok(info);
                }
                let key = if dir.is_empty() {
                    l.name.to_string()
                } else {
                    format!("{dir}/{}", l.name)
                };
                let name = l.name.to_string();
                entry_info(destination, &key, name, l.into_entry()).await
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

impl Listed {
    /// The entry's listing without a request, where its stored length says everything.
    fn info_from_length(&self, sizes: ListingSizes) -> Option<FileInfo> {
        let size = if self.is_dir {
            0
        } else if sizes == ListingSizes::FromStoredLengths {
            plaintext_len(HEADER_FIXED_LEN as u64, self.sealed_len).ok()?
        } else {
            return None;
        };
        Some(FileInfo {
            name: self.name.to_string(),
            is_dir: self.is_dir,
            size,
            modified: self.modified,
        })
    }

    fn into_entry(self) -> Entry {
        Entry {
            name: self.name.into(),
            kind: if self.is_dir {
                EntryKind::Dir
            } else {
                EntryKind::File
            },
            sealed_len: self.sealed_len,
            modified: self.modified,
        }
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

    /// A listing of the store's root that reads each file's header.
    fn root_listing(
        store: Arc<dyn Destination>,
        entries: Vec<Entry>,
        budget: &MemoryBudget,
    ) -> Result<DirListing, TransferError> {
        DirListing::new(
            store,
            String::new(),
            entries,
            budget,
            ListingSizes::FromHeaders,
        )
    }

    #[tokio::test]
    async fn pages_hand_out_every_entry_once_within_their_bounds() {
        let (_dir, store, entries) = store_with_dirs(3000).await;
        let budget = MemoryBudget::new(16 << 20);
        let mut l = root_listing(store, entries, &budget).unwrap();
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
        let e = root_listing(store, entries, &budget).unwrap_err();
        assert!(e.to_string().contains("storage.memory_budget"), "{e}");
        assert!(e.to_string().contains("3000 entries"), "{e}");
        assert_eq!(budget.available_bytes(), 64 << 10, "nothing kept");
    }

    /// Every file of a listing of `store`'s root, with its size, in `sizes` mode.
    async fn list_sizes(store: &Arc<dyn Destination>, sizes: ListingSizes) -> Vec<(String, u64)> {
        let entries = store.list("").await.unwrap();
        let budget = MemoryBudget::new(16 << 20);
        let mut l = DirListing::new(store.clone(), String::new(), entries, &budget, sizes).unwrap();
        let mut out = Vec::new();
        while let Some(page) = l.next_page(100, 10_000).await.unwrap() {
            out.extend(page.into_iter().map(|e| (e.name, e.size)));
        }
        out
    }

    fn sealed(layout: crate::crypto::Layout, plaintext_len: usize) -> Vec<u8> {
        let ctx = crate::crypto::ObjectContext {
            tenant: "acme".into(),
            key_id: "k".into(),
            key_version: 1,
            object_id: [7; 16],
            external: None,
        };
        let mut s = crate::crypto::Sealer::with_layout_material(
            layout, &[1; 32], &ctx, &[2; 32], &[3; 32], &[4; 12],
        )
        .unwrap();
        let mut out = s.header().to_vec();
        s.push(&vec![0x5a; plaintext_len], &mut out).unwrap();
        s.finish(&mut out).unwrap();
        out
    }

    #[tokio::test]
    async fn version_3_sizes_come_from_the_stored_length_without_a_read() {
        use crate::crypto::{Layout, SEGMENT_SIZE};
        let dir = tempfile::tempdir().unwrap();
        let lens = [
            0,
            1,
            SEGMENT_SIZE - 1,
            SEGMENT_SIZE,
            SEGMENT_SIZE + 1,
            3 * SEGMENT_SIZE,
        ];
        for (i, len) in lens.iter().enumerate() {
            std::fs::write(
                dir.path().join(format!("v3-{i}")),
                sealed(Layout::Fixed, *len),
            )
            .unwrap();
        }
        // Not an object at all, with the length of a 100-byte version 3 object: listed from its
        // length alone, which shows that no header was read (a header read skips it).
        std::fs::write(dir.path().join("w-unread"), vec![0u8; 2048 + 100 + 16]).unwrap();
        // A version 1 object too short to be read as version 3: its header is read.
        std::fs::write(dir.path().join("x-v1"), sealed(Layout::Compact, 100)).unwrap();
        let store: Arc<dyn Destination> =
            Arc::new(FsDestination::open("d", dir.path(), "DE").unwrap());

        let fast = list_sizes(&store, ListingSizes::FromStoredLengths).await;
        let mut want: Vec<(String, u64)> = lens
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("v3-{i}"), *l as u64))
            .collect();
        want.push(("w-unread".into(), 100));
        want.push(("x-v1".into(), 100));
        assert_eq!(fast, want);

        let read = list_sizes(&store, ListingSizes::FromHeaders).await;
        want.retain(|(n, _)| n != "w-unread");
        assert_eq!(read, want, "header reads skip what is not an object");
    }

    #[tokio::test]
    async fn a_name_longer_than_the_page_bound_still_comes_out() {
        let (_dir, store, entries) = store_with_dirs(3).await;
        let budget = MemoryBudget::new(16 << 20);
        let mut l = root_listing(store, entries, &budget).unwrap();
        for _ in 0..3 {
            assert_eq!(l.next_page(100, 1).await.unwrap().unwrap().len(), 1);
        }
        assert!(l.next_page(100, 1).await.unwrap().is_none());
    }
}
