//! The window policy of downloads, on an in-memory source that records every fetch.

use std::sync::Mutex;

use super::*;
use crate::crypto::SEALED_SEGMENT_SIZE;

/// An object in memory; every fetch (offset, length asked) is recorded, and the capacity of
/// the buffer it was given.
struct Mem {
    data: Bytes,
    fetches: Fetches,
    given: Arc<Mutex<Vec<usize>>>,
}

#[async_trait]
impl RangeSource for Mem {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    async fn fetch(
        &self,
        offset: u64,
        len: usize,
        mut buf: BytesMut,
    ) -> Result<Bytes, StorageError> {
        self.fetches.lock().unwrap().push((offset, len));
        self.given.lock().unwrap().push(buf.capacity());
        let end = (offset as usize + len).min(self.data.len());
        buf.clear();
        buf.extend_from_slice(&self.data[offset as usize..end]);
        Ok(buf.freeze())
    }
}

type Fetches = Arc<Mutex<Vec<(u64, usize)>>>;

fn object(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn reader(data: &Bytes, budget: &MemoryBudget) -> (WindowReader<Mem>, Fetches) {
    let (r, fetches, _) = reader_given(data, budget);
    (r, fetches)
}

fn reader_given(
    data: &Bytes,
    budget: &MemoryBudget,
) -> (WindowReader<Mem>, Fetches, Arc<Mutex<Vec<usize>>>) {
    let fetches = Fetches::default();
    let given = Arc::<Mutex<Vec<usize>>>::default();
    let mem = Mem {
        data: data.clone(),
        fetches: fetches.clone(),
        given: given.clone(),
    };
    (WindowReader::new(mem, budget.clone()), fetches, given)
}

/// Reads the whole object from `start` in sealed-segment steps, as a download does.
async fn read_through(r: &mut WindowReader<Mem>, data: &Bytes, start: u64) {
    let mut at = start;
    while at < data.len() as u64 {
        let got = r.read_at(at, SEALED_SEGMENT_SIZE).await.unwrap();
        let end = (at as usize + SEALED_SEGMENT_SIZE).min(data.len());
        assert!(got == data.slice(at as usize..end), "bytes at {at}");
        at = end as u64;
    }
    assert!(r.read_at(at, 10).await.unwrap().is_empty(), "past the end");
}

#[tokio::test]
async fn a_sequential_download_grows_its_windows_and_gives_the_budget_back() {
    let data = object(40 << 20);
    let budget = MemoryBudget::new(64 << 20);
    let (mut r, fetches) = reader(&data, &budget);
    // The header first, then the segments after it.
    assert!(r.read_at(0, 4096).await.unwrap() == data.slice(..4096));
    read_through(&mut r, &data, 2048).await;
    let held = (64 << 20) - budget.available_bytes();
    assert!(held <= 3 * MAX_WINDOW, "{held} bytes held");
    drop(r);
    assert_eq!(
        budget.available_bytes(),
        64 << 20,
        "every window's reservation is back"
    );

    let mut f = fetches.lock().unwrap().clone();
    f.sort();
    let lens: Vec<usize> = f.iter().map(|(_, l)| *l).collect();
    // 256 KiB first, doubling to 8 MiB: about ten requests for 640 segments.
    assert_eq!(
        &lens[..6],
        &[FIRST_WINDOW, 512 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20]
    );
    assert!(lens.iter().all(|&l| l <= MAX_WINDOW), "{lens:?}");
    assert!(f.len() <= 16, "{} fetches: {f:?}", f.len());
    // Consecutive: each window starts where the one before it ended.
    for w in f.windows(2) {
        assert_eq!(w[0].0 + w[0].1 as u64, w[1].0, "{f:?}");
    }
}

#[tokio::test]
async fn reading_only_a_header_fetches_one_small_window_and_nothing_ahead() {
    let data = object(100 << 20);
    let budget = MemoryBudget::new(64 << 20);
    let (mut r, fetches) = reader(&data, &budget);
    r.read_at(0, 4096).await.unwrap();
    drop(r);
    tokio::task::yield_now().await;
    assert_eq!(*fetches.lock().unwrap(), vec![(0, FIRST_WINDOW)]);
}

#[tokio::test]
async fn without_budget_a_read_fetches_only_what_it_asks_for() {
    let data = object(3 << 20);
    // A share far smaller than one window: nothing can be reserved.
    let budget = MemoryBudget::new(64 << 20).share(64 << 10);
    let (mut r, fetches) = reader(&data, &budget);
    read_through(&mut r, &data, 0).await;
    let f = fetches.lock().unwrap().clone();
    assert!(f.iter().all(|&(_, l)| l == SEALED_SEGMENT_SIZE), "{f:?}");
    assert_eq!(f.len(), (3usize << 20).div_ceil(SEALED_SEGMENT_SIZE));
}

#[tokio::test]
async fn a_jump_drops_the_read_ahead_and_reads_on_from_the_new_place() {
    let data = object(30 << 20);
    let budget = MemoryBudget::new(64 << 20);
    let (mut r, fetches) = reader(&data, &budget);
    for at in [0u64, 65_552, 131_104] {
        r.read_at(at, SEALED_SEGMENT_SIZE).await.unwrap();
    }
    // Far ahead, then back to the start: both served exactly.
    let far = 20 << 20;
    assert!(r.read_at(far, 1000).await.unwrap() == data.slice(far as usize..far as usize + 1000));
    assert!(r.read_at(5, 10).await.unwrap() == data.slice(5..15));
    read_through(&mut r, &data, 7 << 20).await;
    let f = fetches.lock().unwrap().clone();
    assert!(
        f.contains(&(far, FIRST_WINDOW)),
        "a fresh window at the jump: {f:?}"
    );
    drop(r);
    assert_eq!(budget.available_bytes(), 64 << 20);
}

#[tokio::test]
async fn reads_across_a_window_boundary_are_joined() {
    let data = object(2 << 20);
    let budget = MemoryBudget::new(64 << 20);
    let (mut r, _) = reader(&data, &budget);
    r.read_at(0, 100).await.unwrap();
    // Starts inside the first window (256 KiB), ends in the next.
    r.read_at(100, 1000).await.unwrap();
    let at = FIRST_WINDOW as u64 - 500;
    let got = r.read_at(at, 1000).await.unwrap();
    assert!(got == data.slice(at as usize..at as usize + 1000));
}

#[tokio::test]
async fn window_buffers_are_reused_once_no_slice_is_left() {
    let data = object(80 << 20);
    let budget = MemoryBudget::new(64 << 20);
    let (mut r, fetches, given) = reader_given(&data, &budget);
    read_through(&mut r, &data, 0).await;
    let fetches = fetches.lock().unwrap().clone();
    let given = given.lock().unwrap().clone();
    // Once windows stop growing, every fetch gets the buffer of a window read to its end.
    let full: Vec<usize> = fetches
        .iter()
        .zip(&given)
        .filter(|((_, len), _)| *len == MAX_WINDOW)
        .map(|(_, cap)| *cap)
        .collect();
    let reused = full.iter().filter(|&&cap| cap >= MAX_WINDOW).count();
    assert!(full.len() >= 6, "{fetches:?}");
    assert!(
        reused + READ_AHEAD + 1 >= full.len(),
        "{given:?} for {fetches:?}"
    );
    assert!(r.spare.len() <= READ_AHEAD + 1);

    // A slice still held keeps its window's buffer from being reused (and overwritten).
    let (mut r, _) = reader(&data, &budget);
    let kept = r.read_at(0, 1000).await.unwrap();
    r.read_at(FIRST_WINDOW as u64 * 3, 1000).await.unwrap();
    assert!(
        r.spare.is_empty(),
        "a window with a live slice is not recycled"
    );
    assert!(kept == data.slice(..1000));
}
