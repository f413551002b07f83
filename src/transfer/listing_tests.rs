//! Tests of `listing.rs`: pages within their bounds, budgets, sizes from lengths or headers,
//! and store pages fetched one at a time.
use super::*;
use crate::storage::fs::FsDestination;

/// A store whose root holds `n` directories (listed without reading any header).
async fn store_with_dirs(n: usize) -> (tempfile::TempDir, Arc<dyn Destination>, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        std::fs::create_dir(dir.path().join(format!("d{i:05}"))).unwrap();
    }
    let store: Arc<dyn Destination> = Arc::new(FsDestination::open("d", dir.path(), "DE").unwrap());
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
        ListPage {
            entries,
            next: None,
        },
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
    assert!(
        e.to_string().contains("a page of 3000 directory entries"),
        "{e}"
    );
    assert_eq!(budget.available_bytes(), 64 << 10, "nothing kept");
}

/// Every file of a listing of `store`'s root, with its size, in `sizes` mode.
async fn list_sizes(store: &Arc<dyn Destination>, sizes: ListingSizes) -> Vec<(String, u64)> {
    let entries = store.list("").await.unwrap();
    let budget = MemoryBudget::new(16 << 20);
    let first = ListPage {
        entries,
        next: None,
    };
    let mut l = DirListing::new(store.clone(), String::new(), first, &budget, sizes).unwrap();
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
    let store: Arc<dyn Destination> = Arc::new(FsDestination::open("d", dir.path(), "DE").unwrap());

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

/// An fs store whose listings come in store pages of `page` entries, as S3 pages by 1,000;
/// counts the pages asked for.
struct Paged {
    inner: Arc<dyn Destination>,
    page: usize,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Destination for Paged {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn location(&self) -> (crate::policy::Location, crate::policy::Evidence) {
        self.inner.location()
    }
    async fn ensure_root(&self, prefix: &str) -> Result<(), crate::storage::StorageError> {
        self.inner.ensure_root(prefix).await
    }
    async fn begin(
        &self,
        grant: crate::policy::Grant,
        key: &crate::storage::Key,
        publish: crate::storage::Publish,
        meta: crate::storage::ObjectMeta,
    ) -> Result<Box<dyn crate::storage::Upload>, crate::storage::StorageError> {
        self.inner.begin(grant, key, publish, meta).await
    }
    async fn stat(&self, key: &crate::storage::Key) -> Result<Entry, crate::storage::StorageError> {
        self.inner.stat(key).await
    }
    async fn list(
        &self,
        dir: &crate::storage::Key,
    ) -> Result<Vec<Entry>, crate::storage::StorageError> {
        self.inner.list(dir).await
    }
    async fn list_page(
        &self,
        dir: &crate::storage::Key,
        from: Option<String>,
    ) -> Result<ListPage, crate::storage::StorageError> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let start: usize = from.map(|f| f.parse().unwrap()).unwrap_or(0);
        let all = self.inner.list(dir).await?;
        let end = (start + self.page).min(all.len());
        Ok(ListPage {
            entries: all[start..end].to_vec(),
            next: (end < all.len()).then(|| end.to_string()),
        })
    }
    async fn open(
        &self,
        key: &crate::storage::Key,
    ) -> Result<Box<dyn crate::storage::ObjectReader>, crate::storage::StorageError> {
        self.inner.open(key).await
    }
    async fn remove(&self, key: &crate::storage::Key) -> Result<(), crate::storage::StorageError> {
        self.inner.remove(key).await
    }
    async fn rename(
        &self,
        grant: &crate::policy::Grant,
        from: &crate::storage::Key,
        to: &crate::storage::Key,
    ) -> Result<(), crate::storage::StorageError> {
        self.inner.rename(grant, from, to).await
    }
    async fn mkdir(
        &self,
        grant: &crate::policy::Grant,
        key: &crate::storage::Key,
    ) -> Result<(), crate::storage::StorageError> {
        self.inner.mkdir(grant, key).await
    }
    async fn rmdir(&self, key: &crate::storage::Key) -> Result<(), crate::storage::StorageError> {
        self.inner.rmdir(key).await
    }
}

#[tokio::test]
async fn a_listing_holds_one_store_page_at_a_time() {
    let (_dir, inner, _) = store_with_dirs(2500).await;
    let paged = Arc::new(Paged {
        inner,
        page: 1000,
        asked: Default::default(),
    });
    let store: Arc<dyn Destination> = paged.clone();
    let budget = MemoryBudget::new(16 << 20);
    let mut l = DirListing::open(store, String::new(), &budget, ListingSizes::FromHeaders)
        .await
        .unwrap();
    assert_eq!(
        paged.asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the first page at open"
    );
    let one_page = (16 << 20) - budget.available_bytes();
    let mut seen = Vec::new();
    let mut most_held = 0;
    while let Some(page) = l.next_page(100, 256 << 10).await.unwrap() {
        most_held = most_held.max((16 << 20) - budget.available_bytes());
        seen.extend(page.into_iter().map(|e| e.name));
    }
    assert_eq!(
        paged.asked.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "2,500 entries, 3 store pages"
    );
    let want: Vec<String> = (0..2500).map(|i| format!("d{i:05}")).collect();
    assert_eq!(seen, want, "all, in order, once");
    assert!(
        most_held <= one_page,
        "{most_held} bytes held, one page is {one_page}"
    );
    drop(l);
    assert_eq!(budget.available_bytes(), 16 << 20, "the budget comes back");
}

#[tokio::test]
async fn a_missing_directory_fails_at_open() {
    let (_dir, inner, _) = store_with_dirs(1).await;
    let budget = MemoryBudget::new(1 << 20);
    let e = DirListing::open(inner, "nope".into(), &budget, ListingSizes::FromHeaders)
        .await
        .unwrap_err();
    assert!(matches!(e, TransferError::NotFound(_)), "{e:?}");
}
