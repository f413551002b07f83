//! An open directory, listed a store page at a time (S3: one LIST request of up to 1,000
//! entries) as the client reads on, so that a directory of any size holds one page. Each
//! page is held compactly and charged to the memory budget, and handed out in client pages:
//! OpenSSH's client refuses replies over 256 KiB, and a 3,000-entry directory in one reply was
//! 519 KB. Plaintext sizes follow from the stored lengths when every object has the
//! fixed-length header of format version 3; otherwise (`storage.legacy_objects`) each file's
//! header is read for the page being sent, a page's reads side by side.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;

use super::{FileInfo, TransferError, entry_info};
use crate::budget::{MemoryBudget, Reservation};
use crate::crypto::{HEADER_FIXED_LEN, plaintext_len};
use crate::storage::{Destination, Entry, EntryKind, ListPage};

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
    /// The current store page's entries not handed out yet.
    entries: VecDeque<Listed>,
    /// Where the store's next page starts; `None` after the last one.
    next: Option<String>,
    sizes: ListingSizes,
    budget: MemoryBudget,
    /// What the current store page holds of the budget.
    reserved: Option<Reservation>,
}

impl std::fmt::Debug for DirListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirListing")
            .field("dir", &self.dir)
            .field("page_remaining", &self.entries.len())
            .field("more_pages", &self.next.is_some())
            .finish_non_exhaustive()
    }
}

/// A store page's entries in their compact form, with the budget they hold.
fn hold(
    entries: Vec<Entry>,
    budget: &MemoryBudget,
) -> Result<(VecDeque<Listed>, Reservation), TransferError> {
    let cost: usize = entries.iter().map(|e| e.name.len() + LISTED_OVERHEAD).sum();
    let Some(reserved) = budget.try_reserve(cost) else {
        tracing::warn!(
            entries = entries.len(),
            cost,
            "directory listing refused: memory budget in use"
        );
        return Err(TransferError::Failure(format!(
            "a page of {} directory entries does not fit in the gateway's memory for open listings right now (part of storage.memory_budget); close other listings or try again later",
            entries.len()
        )));
    };
    let entries = entries
        .into_iter()
        .map(|e| Listed {
            name: e.name.into_boxed_str(),
            is_dir: e.kind == EntryKind::Dir,
            sealed_len: e.sealed_len,
            modified: e.modified,
        })
        .collect();
    Ok((entries, reserved))
}

impl DirListing {
    /// Opens `dir`: its first store page is listed now, so that a missing directory fails
    /// here, and each further page once the client has read the one before.
    pub(super) async fn open(
        destination: Arc<dyn Destination>,
        dir: String,
        budget: &MemoryBudget,
        sizes: ListingSizes,
    ) -> Result<DirListing, TransferError> {
        let first = destination.list_page(&dir, None).await?;
        DirListing::new(destination, dir, first, budget, sizes)
    }

    /// Holds the first store page `first` of `dir`, if the budget has room for it.
    pub(super) fn new(
        destination: Arc<dyn Destination>,
        dir: String,
        first: ListPage,
        budget: &MemoryBudget,
        sizes: ListingSizes,
    ) -> Result<DirListing, TransferError> {
        let (entries, reserved) = hold(first.entries, budget)?;
        Ok(DirListing {
            destination,
            dir,
            entries,
            next: first.next,
            sizes,
            budget: budget.clone(),
            reserved: Some(reserved),
        })
    }

    /// Replaces the handed-out page with the store's next one; `false` after the last.
    async fn load_next(&mut self) -> Result<bool, TransferError> {
        let Some(from) = self.next.take() else {
            return Ok(false);
        };
        // The page before is handed out: its budget goes back before the next is held.
        self.reserved = None;
        let page = self.destination.list_page(&self.dir, Some(from)).await?;
        let (entries, reserved) = hold(page.entries, &self.budget)?;
        self.entries = entries;
        self.reserved = Some(reserved);
        self.next = page.next;
        Ok(true)
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
            if self.entries.is_empty() && !self.load_next().await? {
                return Ok(None);
            }
            let page = self.fill(max_entries, max_name_bytes).await;
            // A page whose entries were all skipped does not end the listing early.
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
    }

    async fn fill(&mut self, max_entries: usize, max_name_bytes: usize) -> Vec<FileInfo> {
        let mut taken = Vec::new();
        let mut name_bytes = 0;
        while taken.len() < max_entries {
            let fits = |l: &Listed| taken.is_empty() || name_bytes + l.name.len() <= max_name_bytes;
            if !self.entries.front().is_some_and(fits) {
                break;
            }
            let Some(l) = self.entries.pop_front() else {
                break;
            };
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
#[path = "listing_tests.rs"]
mod tests;
