//! The process-wide memory budget: every large buffer a client can make the gateway hold (S3
//! part buffers, out-of-order writes held ahead of a gap, open directory listings) holds a
//! [`Reservation`] for its size. Storage and the transfer layer share one budget, so a full
//! budget is backpressure or a refusal, never an OOM.
//!
//! A budget can lend a capped [`MemoryBudget::share`] of itself: reservations from the share
//! count against both, so what clients merely *hold* (held writes, listings) can never take the
//! memory that uploads need to move.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits are counted in 64 KiB units so that a semaphore's u32 limit never binds.
pub const UNIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("{bytes} bytes exceed the whole memory budget of {total} bytes")]
    TooLarge { bytes: usize, total: usize },
    #[error("the memory budget was closed")]
    Closed,
}

/// One level of a budget: its semaphore and size.
#[derive(Debug, Clone)]
struct Level {
    sem: Arc<Semaphore>,
    units: u32,
}

/// A byte budget; cloning shares it.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    /// This budget first, then the budgets it is a share of.
    levels: Vec<Level>,
}

fn units_of(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let units = units_of(bytes).max(1);
        MemoryBudget {
            levels: vec![Level {
                sem: Arc::new(Semaphore::new(units as usize)),
                units,
            }],
        }
    }

    /// A part of this budget, at most `bytes` of it: reserving from the share takes from both.
    pub fn share(&self, bytes: usize) -> MemoryBudget {
        let units = units_of(bytes).clamp(1, self.levels[0].units);
        let mut levels = vec![Level {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
        }];
        levels.extend(self.levels.iter().cloned());
        MemoryBudget { levels }
    }

    /// What this budget may hold at most (a share: its cap).
    pub fn total_bytes(&self) -> usize {
        self.levels[0].units as usize * UNIT
    }

    /// Bytes that could be reserved right now.
    pub fn available_bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.sem.available_permits())
            .min()
            .unwrap_or(0)
            * UNIT
    }

    /// Waits until `bytes` fit.
    pub async fn reserve(&self, bytes: usize) -> Result<Reservation, BudgetError> {
        let units = units_of(bytes);
        if units > self.levels[0].units {
            return Err(BudgetError::TooLarge {
                bytes,
                total: self.total_bytes(),
            });
        }
        // Always in the same order (share before parent), so two waiters cannot each hold
        // what the other waits for.
        let mut permits = Vec::with_capacity(self.levels.len());
        for l in &self.levels {
            let p = l
                .sem
                .clone()
                .acquire_many_owned(units)
                .await
                .map_err(|_| BudgetError::Closed)?;
            permits.push(p);
        }
        Ok(Reservation { permits, units })
    }

    /// Takes `bytes` if they are free right now; never waits.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let units = units_of(bytes);
        let mut permits = Vec::with_capacity(self.levels.len());
        for l in &self.levels {
            // Dropping what was taken on the way gives it back.
            permits.push(l.sem.clone().try_acquire_many_owned(units).ok()?);
        }
        Some(Reservation { permits, units })
    }

    /// An empty reservation of this budget, to grow with [`Reservation::merge`].
    pub fn empty(&self) -> Reservation {
        self.try_reserve(0).unwrap_or(Reservation {
            permits: Vec::new(),
            units: 0,
        })
    }
}

/// Budget held until dropped.
#[derive(Debug)]
pub struct Reservation {
    /// One permit per level of the budget it came from.
    permits: Vec<OwnedSemaphorePermit>,
    units: u32,
}

impl Reservation {
    /// Bytes held (whole units).
    pub fn bytes(&self) -> usize {
        self.units as usize * UNIT
    }

    /// Adds `other`, which must come from the same budget.
    pub fn merge(&mut self, other: Reservation) {
        if self.permits.is_empty() {
            *self = other;
            return;
        }
        if other.permits.len() != self.permits.len() {
            // Not from the same budget: keep it apart rather than mix semaphores. Never
            // happens by construction; the bytes stay reserved until `other` drops.
            debug_assert!(false, "merging reservations of different budgets");
            return;
        }
        self.units += other.units;
        for (mine, theirs) in self.permits.iter_mut().zip(other.permits) {
            mine.merge(theirs);
        }
    }

    /// Gives back what lies beyond `bytes` (rounded up to whole units).
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = units_of(bytes);
        if keep >= self.units {
            return;
        }
        let give = (self.units - keep) as usize;
        for p in &mut self.permits {
            drop(p.split(give));
        }
        self.units = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_block_until_released() {
        let b = MemoryBudget::new(16 << 20);
        let first = b.reserve(8 << 20).await.unwrap();
        let _second = b.reserve(8 << 20).await.unwrap();
        assert_eq!(b.available_bytes(), 0);
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.reserve(8 << 20).await.map(|_| ()) });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!(
            b.reserve(32 << 20).await.unwrap_err(),
            BudgetError::TooLarge {
                bytes: 32 << 20,
                total: 16 << 20
            }
        );
    }

    #[tokio::test]
    async fn try_reserve_takes_only_what_is_free() {
        let b = MemoryBudget::new(1 << 20);
        let held = b.try_reserve(768 << 10).expect("free");
        assert!(b.try_reserve(512 << 10).is_none(), "only 256 KiB left");
        let rest = b.try_reserve(256 << 10).expect("exactly the rest");
        assert_eq!(b.available_bytes(), 0);
        drop((held, rest));
        assert_eq!(b.available_bytes(), 1 << 20);
    }

    #[test]
    fn a_share_takes_from_its_parent_and_never_more_than_its_cap() {
        let b = MemoryBudget::new(4 << 20);
        let share = b.share(1 << 20);
        assert_eq!(share.total_bytes(), 1 << 20);
        let held = share.try_reserve(1 << 20).expect("the whole share");
        assert_eq!(b.available_bytes(), 3 << 20, "counted in the parent too");
        assert!(share.try_reserve(1).is_none(), "the share is spent");
        assert!(b.try_reserve(3 << 20).is_some(), "the rest stays free");
        drop(held);
        assert_eq!(b.available_bytes(), 4 << 20);
        // A full parent refuses the share as well, and a refusal leaves nothing taken.
        let all = b.try_reserve(4 << 20).unwrap();
        assert!(share.try_reserve(UNIT).is_none());
        drop(all);
        assert_eq!(share.available_bytes(), 1 << 20);
        assert_eq!(b.available_bytes(), 4 << 20);
    }

    #[test]
    fn a_reservation_grows_and_shrinks_by_units() {
        let b = MemoryBudget::new(1 << 20).share(512 << 10);
        let mut r = b.empty();
        assert_eq!(r.bytes(), 0);
        r.merge(b.try_reserve(100).unwrap());
        r.merge(b.try_reserve(UNIT + 1).unwrap());
        assert_eq!(r.bytes(), 3 * UNIT, "whole units");
        assert_eq!(b.available_bytes(), 512 * 1024 - 3 * UNIT);
        r.shrink_to(UNIT + 5);
        assert_eq!(r.bytes(), 2 * UNIT);
        assert_eq!(b.available_bytes(), 512 * 1024 - 2 * UNIT);
        r.shrink_to(0);
        assert_eq!(b.available_bytes(), 512 * 1024);
        r.shrink_to(10 * UNIT);
        assert_eq!(r.bytes(), 0, "shrinking never grows");
    }
}
