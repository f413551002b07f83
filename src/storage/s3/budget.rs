//! The process-wide byte budget for upload part buffers. Every part buffer holds a permit for
//! its size from allocation until S3 acknowledged it; when the budget is spent, the next
//! `write` waits, the transfer pipeline stops draining, and backpressure reaches the SSH channel.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::S3Error;

/// Permits are counted in 64 KiB units so that a semaphore's u32 limit never binds.
const UNIT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    sem: Arc<Semaphore>,
    total_units: u32,
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .max(1);
        MemoryBudget {
            sem: Arc::new(Semaphore::new(units as usize)),
            total_units: units,
        }
    }

    pub fn total_bytes(&self) -> usize {
        self.total_units as usize * UNIT
    }

    /// Bytes not currently held by any part buffer.
    pub fn available_bytes(&self) -> usize {
        self.sem.available_permits() * UNIT
    }

    /// Waits until `bytes` fit in the budget.
    pub async fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, S3Error> {
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        if units > self.total_units {
            return Err(S3Error::Config(format!(
                "a part of {bytes} bytes exceeds the whole upload memory budget of {} bytes",
                self.total_bytes()
            )));
        }
        self.sem
            .clone()
            .acquire_many_owned(units)
            .await
            .map_err(|_| S3Error::Config("the upload memory budget was closed".into()))
    }

    /// Takes `bytes` of budget if they are free right now; never waits.
    pub fn try_reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let units = u32::try_from(bytes.div_ceil(UNIT)).ok()?;
        self.sem.clone().try_acquire_many_owned(units).ok()
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
        assert!(b.reserve(32 << 20).await.is_err());
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
}
