//! The reorder window of one upload: writes that arrive ahead of a gap are held until it fills.
//! What they may hold is capped three ways: bytes past the gap (`server.reorder_window`), the
//! number of held writes (`limits.max_held_writes`: one-byte writes at every other offset cost
//! about 104 bytes of memory per byte held), and the gateway's memory budget, which every
//! upload's held writes share (so 200 uploads holding full windows cannot exhaust memory).
//!
//! At a cap the WRITE is refused, not delayed: one channel's requests are answered in order,
//! so a held write that waited for room would block the very write that fills its gap.

use std::collections::BTreeMap;

use super::TransferError;
use super::upload::Chunk;
use crate::budget::{MemoryBudget, Reservation};

/// Memory a held write costs beyond its bytes: the map node, the allocation, the chunk.
/// Charged to the budget so that tiny writes cannot hold much more than they are charged.
pub const HELD_WRITE_OVERHEAD: u64 = 128;

/// What every upload's reorder window may hold.
#[derive(Debug, Clone)]
pub struct ReorderLimits {
    /// Bytes from the first missing byte to the end of the furthest held write.
    pub window: u64,
    /// Writes held at once.
    pub max_held: usize,
    /// The share of the memory budget held writes (all uploads together) may use.
    pub budget: MemoryBudget,
}

/// Reorders writes that arrive at out-of-order offsets, within bounded limits.
#[derive(Debug)]
pub struct Reorder {
    /// Every byte before `next` has been forwarded.
    next: u64,
    pending: BTreeMap<u64, Chunk>,
    pending_bytes: u64,
    limits: ReorderLimits,
    /// Budget for what `pending` holds (bytes plus per-write overhead).
    reserved: Reservation,
}

impl Reorder {
    pub fn new(limits: ReorderLimits) -> Reorder {
        Reorder {
            next: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            reserved: limits.budget.empty(),
            limits,
        }
    }

    /// Accepts one write; returns the chunks that are now contiguous, in order.
    pub fn accept(&mut self, offset: u64, data: Chunk) -> Result<Vec<Chunk>, TransferError> {
        let len = data.len() as u64;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| TransferError::Failure("write offset overflows".into()))?;
        if len == 0 {
            return Ok(Vec::new());
        }
        if offset < self.next {
            return Err(TransferError::Failure(format!(
                "write at offset {offset} overlaps bytes already sealed (below {}); each byte can be written once",
                self.next
            )));
        }
        if offset > self.next {
            self.hold(offset, end, data)?;
            return Ok(Vec::new());
        }
        let released = self.advance(offset, len)?;
        let mut ready = Vec::with_capacity(1 + released.len());
        ready.push(data);
        ready.extend(released);
        Ok(ready)
    }

    /// Holds a write ahead of the gap, if every limit allows it.
    fn hold(&mut self, offset: u64, end: u64, data: Chunk) -> Result<(), TransferError> {
        if end - self.next > self.limits.window {
            return Err(TransferError::Failure(format!(
                "write at offset {offset} is {} bytes ahead of the next expected byte {}; the reorder window is {} bytes (server.reorder_window); write sequentially or in a narrower window",
                offset - self.next,
                self.next,
                self.limits.window
            )));
        }
        let before = self.pending.range(..offset).next_back();
        let overlaps_before = before.is_some_and(|(o, d)| o + d.len() as u64 > offset);
        let overlaps_after = self.pending.range(offset..end).next().is_some();
        if overlaps_before || overlaps_after {
            return Err(TransferError::Failure(format!(
                "write at offset {offset} overlaps another pending write; each byte can be written once"
            )));
        }
        if self.pending.len() >= self.limits.max_held {
            return Err(TransferError::Failure(format!(
                "write at offset {offset} would be held ahead of the missing byte {}, but {} writes are held already: an upload may hold at most {} out-of-order writes (limits.max_held_writes); write sequentially or keep fewer writes in flight",
                self.next,
                self.pending.len(),
                self.limits.max_held
            )));
        }
        let len = end - offset;
        let need = self.cost(self.pending.len() + 1, self.pending_bytes + len);
        if need > self.reserved.bytes() {
            let Some(more) = self.limits.budget.try_reserve(need - self.reserved.bytes()) else {
                return Err(TransferError::Failure(format!(
                    "write at offset {offset} cannot be held ahead of the missing byte {}: the gateway's memory for out-of-order writes ({} bytes, part of storage.memory_budget) is in use; write sequentially or try again later",
                    self.next,
                    self.limits.budget.total_bytes()
                )));
            };
            self.reserved.merge(more);
        }
        self.pending.insert(offset, data);
        self.pending_bytes += len;
        Ok(())
    }

    /// Budget bytes for `count` held writes of `bytes` in all.
    fn cost(&self, count: usize, bytes: u64) -> usize {
        let total = bytes.saturating_add(count as u64 * HELD_WRITE_OVERHEAD);
        usize::try_from(total).unwrap_or(usize::MAX)
    }

    /// Accepts an in-order write of `len` bytes at `offset` (== [`Reorder::next`]), whose
    /// bytes the caller uses directly; returns the held chunks that now follow it, in order.
    pub fn advance(&mut self, offset: u64, len: u64) -> Result<Vec<Chunk>, TransferError> {
        debug_assert_eq!(offset, self.next);
        let end = offset
            .checked_add(len)
            .ok_or_else(|| TransferError::Failure("write offset overflows".into()))?;
        if self.pending.range(offset..end).next().is_some() {
            return Err(TransferError::Failure(format!(
                "write at offset {offset} overlaps another pending write; each byte can be written once"
            )));
        }
        self.next = end;
        let mut ready = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let chunk = entry.remove();
            self.next += chunk.len() as u64;
            self.pending_bytes -= chunk.len() as u64;
            ready.push(chunk);
        }
        if !ready.is_empty() {
            // The released chunks are sealed right away and dropped; their budget goes back
            // now (the caller holds them only until then).
            let still = self.cost(self.pending.len(), self.pending_bytes);
            self.reserved.shrink_to(still);
        }
        Ok(ready)
    }

    /// Bytes received past a gap.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Writes held past a gap.
    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    pub fn next(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn z(v: &[u8]) -> Chunk {
        Chunk::new(v.to_vec())
    }

    fn limits(window: u64) -> ReorderLimits {
        ReorderLimits {
            window,
            max_held: 1024,
            budget: MemoryBudget::new(64 << 20),
        }
    }

    impl Reorder {
        fn with_window(window: u64) -> Reorder {
            Reorder::new(limits(window))
        }
    }

    #[test]
    fn in_order_passes_through() {
        let mut r = Reorder::with_window(100);
        assert_eq!(r.accept(0, z(b"abc")).unwrap().len(), 1);
        assert_eq!(r.accept(3, z(b"de")).unwrap().len(), 1);
        assert_eq!(r.next(), 5);
    }

    #[test]
    fn out_of_order_within_window_is_released_in_order() {
        let mut r = Reorder::with_window(100);
        assert!(r.accept(3, z(b"de")).unwrap().is_empty());
        assert_eq!(r.pending_bytes(), 2);
        let ready = r.accept(0, z(b"abc")).unwrap();
        let joined: Vec<u8> = ready.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(joined, b"abcde");
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn beyond_window_refused_with_message() {
        let mut r = Reorder::with_window(10);
        let e = r.accept(8, z(b"xyz")).unwrap_err();
        assert!(e.to_string().contains("reorder window is 10 bytes"), "{e}");
        assert!(
            r.accept(7, z(b"xyz")).is_ok(),
            "end exactly at the window edge"
        );
    }

    #[test]
    fn overlaps_refused() {
        let mut r = Reorder::with_window(100);
        r.accept(0, z(b"abcd")).unwrap();
        assert!(r.accept(2, z(b"zz")).is_err(), "rewrite of sealed bytes");
        r.accept(10, z(b"0123")).unwrap();
        assert!(r.accept(12, z(b"zz")).is_err(), "inside a pending chunk");
        assert!(r.accept(8, z(b"zzz")).is_err(), "runs into a pending chunk");
        assert!(r.accept(14, z(b"ok")).is_ok());
    }

    #[test]
    fn in_order_advance_releases_what_follows_and_refuses_overlaps() {
        let mut r = Reorder::with_window(100);
        assert!(r.accept(5, z(b"fg")).unwrap().is_empty());
        assert!(r.accept(10, z(b"kl")).unwrap().is_empty());
        // 0..5 in order: releases 5..7, not 10..12 (gap at 7).
        let ready = r.advance(0, 5).unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(&ready[0][..], b"fg");
        assert_eq!(r.next(), 7);
        // 7..11 runs into the held 10..12.
        let e = r.advance(7, 4).unwrap_err();
        assert!(
            e.to_string().contains("overlaps another pending write"),
            "{e}"
        );
        assert_eq!(r.next(), 7, "a refused write changes nothing");
        assert_eq!(r.advance(7, 3).unwrap().len(), 1);
        assert_eq!(r.next(), 12);
        assert_eq!(r.pending_bytes(), 0);
    }

    #[test]
    fn the_held_write_count_is_capped() {
        let mut r = Reorder::new(ReorderLimits {
            window: 1 << 20,
            max_held: 4,
            budget: MemoryBudget::new(64 << 20),
        });
        // One-byte writes at every other offset: each is held, none releases another.
        for i in 1..=4u64 {
            assert!(r.accept(2 * i, z(b"x")).unwrap().is_empty());
        }
        assert_eq!(r.pending_writes(), 4);
        let e = r.accept(10, z(b"x")).unwrap_err();
        assert!(e.to_string().contains("limits.max_held_writes"), "{e}");
        assert!(e.to_string().contains("at most 4"), "{e}");
        assert_eq!(r.pending_writes(), 4, "the refused write is not held");
        // Filling the gaps releases them, and frees room for more.
        let ready = r.accept(0, z(b"ab")).unwrap();
        assert_eq!(ready.len(), 2, "0..2 and the held byte at 2");
        assert_eq!(r.pending_writes(), 3);
        assert!(r.accept(10, z(b"x")).unwrap().is_empty());
    }

    #[test]
    fn held_bytes_are_charged_to_the_shared_budget_and_given_back() {
        let budget = MemoryBudget::new(4 << 20).share(1 << 20);
        let limits = ReorderLimits {
            window: 8 << 20,
            max_held: 1024,
            budget: budget.clone(),
        };
        let mut a = Reorder::new(limits.clone());
        let mut b = Reorder::new(limits);
        let chunk = || Chunk::new(vec![7; 256 << 10]);
        // Upload a holds 3 × 256 KiB (plus overhead): 13 units of the 16.
        for i in 1..=3u64 {
            a.accept(i * (256 << 10), chunk()).unwrap();
        }
        assert!(budget.available_bytes() < 256 << 10);
        // Upload b finds the shared budget spent: refused, with the reason.
        let e = b.accept(256 << 10, chunk()).unwrap_err();
        assert!(e.to_string().contains("storage.memory_budget"), "{e}");
        assert_eq!(b.pending_writes(), 0);
        // a's gap fills: everything it held is released and its budget comes back.
        assert_eq!(a.accept(0, chunk()).unwrap().len(), 4);
        assert_eq!(budget.available_bytes(), 1 << 20);
        b.accept(256 << 10, chunk()).unwrap();
        // Dropping an upload (a client gone) gives back what it held.
        drop(b);
        assert_eq!(budget.available_bytes(), 1 << 20);
    }

    #[test]
    fn tiny_held_writes_are_charged_their_overhead() {
        let budget = MemoryBudget::new(16 << 20).share(1 << 20);
        let mut r = Reorder::new(ReorderLimits {
            window: 1 << 30,
            max_held: 1_000_000,
            budget: budget.clone(),
        });
        // 1 MiB of budget holds at most 1 MiB / (1 + 128) one-byte writes, not a million.
        let mut held = 0u64;
        while r.accept(2 + 2 * held, z(b"x")).is_ok() {
            held += 1;
        }
        assert!(held <= (1 << 20) / (1 + HELD_WRITE_OVERHEAD), "{held} held");
        assert!(held > 7000, "{held} held");
    }

    proptest! {
        /// Any permutation of chunks inside the window reassembles to the original bytes, and
        /// pending data never exceeds the window.
        #[test]
        fn permutations_reassemble(
            sizes in proptest::collection::vec(1usize..50, 1..20),
            seed in any::<u64>(),
        ) {
            let total: usize = sizes.iter().sum();
            let data: Vec<u8> = (0..total).map(|i| (i * 7 + 3) as u8).collect();
            let mut chunks = Vec::new();
            let mut off = 0;
            for s in &sizes {
                chunks.push((off as u64, data[off..off + s].to_vec()));
                off += s;
            }
            // Deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..chunks.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                chunks.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let window = total as u64;
            let mut r = Reorder::with_window(window);
            let mut out = Vec::new();
            for (o, d) in chunks {
                for c in r.accept(o, Chunk::new(d)).unwrap() {
                    out.extend_from_slice(&c);
                }
                prop_assert!(r.pending_bytes() <= window);
            }
            prop_assert_eq!(out, data);
        }
    }
}
