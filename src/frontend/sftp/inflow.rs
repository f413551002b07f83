//! What one SFTP channel has received and its request loop not yet consumed, charged to the
//! memory budget.
//!
//! russh reads a connection ahead of the request loop into the channel's queue. When uploads
//! wait for part buffers, each client's whole pipeline (OpenSSH: 64 writes of 32 KiB) sits in
//! that queue: outside the budget, 64 uploads peaked near 600 MiB (docs/benchmarks.md). Here a
//! channel's first [`ALLOWANCE`] bytes are free and the rest draws on a share of the budget;
//! while the share is spent, the connection's reader waits, and the client waits through TCP.
//!
//! The allowance is what keeps this free of deadlock: a channel whose loop keeps consuming
//! never waits on the share, so the uploads that hold part buffers can always fill them.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::budget::{BudgetError, MemoryBudget, Reservation};

use super::connection::MAX_CHANNEL_PACKET;

/// Bytes a channel may hold received and unconsumed without the budget: two channel packets.
pub(super) const ALLOWANCE: usize = 2 * MAX_CHANNEL_PACKET as usize;

/// One channel's account; shared by the connection (which counts what arrives) and the
/// channel's request loop (which counts what it consumed).
pub(super) struct Inflow {
    share: MemoryBudget,
    state: Mutex<State>,
    /// The loop consumed (or ended): a waiting reader may need less than it waits for.
    progress: Notify,
}

struct State {
    /// Received minus consumed. Briefly negative: russh queues the data before it tells the
    /// connection, so the loop may consume bytes not yet counted.
    outstanding: i64,
    /// What is charged to the share: whole units covering `outstanding` beyond the allowance.
    held: Reservation,
    /// The loop ended: nothing is charged any more.
    closed: bool,
}

impl State {
    fn chargeable(&self) -> usize {
        usize::try_from(self.outstanding.saturating_sub(ALLOWANCE as i64)).unwrap_or(0)
    }
}

impl Inflow {
    pub(super) fn new(share: MemoryBudget) -> Arc<Inflow> {
        let held = share.empty();
        Arc::new(Inflow {
            share,
            state: Mutex::new(State {
                outstanding: 0,
                held,
                closed: false,
            }),
            progress: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `len` bytes received; waits while what lies beyond the allowance does not fit
    /// the share (or until the loop consumes enough that it no longer needs to).
    pub(super) async fn received(&self, len: usize) -> Result<(), BudgetError> {
        let mut len = len as i64;
        loop {
            let missing = {
                let mut s = self.state();
                if s.closed {
                    return Ok(());
                }
                s.outstanding = s.outstanding.saturating_add(std::mem::take(&mut len));
                s.chargeable().saturating_sub(s.held.bytes())
            };
            if missing == 0 {
                return Ok(());
            }
            // Never more than the share holds: a larger charge could never be granted.
            let want = missing.min(self.share.total_bytes());
            tokio::select! {
                more = self.share.reserve(want) => {
                    let more = more?;
                    let mut s = self.state();
                    if !s.closed {
                        s.held.merge(more);
                        // The loop may have consumed meanwhile.
                        let keep = s.chargeable();
                        s.held.shrink_to(keep);
                    }
                    return Ok(());
                }
                // Dropping the unfinished reservation gives back what it had taken.
                () = self.progress.notified() => {}
            }
        }
    }

    /// Counts `len` bytes the loop has consumed, giving back what is no longer charged.
    pub(super) fn consumed(&self, len: usize) {
        let mut s = self.state();
        s.outstanding = s.outstanding.saturating_sub(len as i64);
        let keep = s.chargeable();
        s.held.shrink_to(keep);
        drop(s);
        self.progress.notify_one();
    }

    /// The loop ended: gives everything back; what arrives later is not counted.
    pub(super) fn close(&self) {
        let mut s = self.state();
        s.closed = true;
        s.outstanding = 0;
        s.held.shrink_to(0);
        drop(s);
        self.progress.notify_one();
    }

    #[cfg(test)]
    fn charged(&self) -> usize {
        self.state().held.bytes()
    }
}

/// Closes an [`Inflow`] when the request loop returns, however it returns.
pub(super) struct CloseOnDrop(pub(super) Arc<Inflow>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::UNIT;

    const PACKET: usize = MAX_CHANNEL_PACKET as usize;

    #[tokio::test]
    async fn the_allowance_is_free_and_the_rest_is_charged_in_units() {
        let parent = MemoryBudget::new(4 << 20);
        let f = Inflow::new(parent.share(1 << 20));
        f.received(PACKET).await.unwrap();
        f.received(PACKET).await.unwrap();
        assert_eq!(f.charged(), 0, "two packets are within the allowance");
        assert_eq!(parent.available_bytes(), 4 << 20);
        f.received(PACKET).await.unwrap();
        assert_eq!(f.charged(), UNIT, "the third is charged, in a whole unit");
        assert_eq!(
            parent.available_bytes(),
            (4 << 20) - UNIT,
            "to the parent too"
        );
        f.received(PACKET).await.unwrap();
        assert_eq!(f.charged(), UNIT, "the fourth fits the same unit");
        f.consumed(3 * PACKET);
        assert_eq!(f.charged(), 0);
        assert_eq!(parent.available_bytes(), 4 << 20);
    }

    #[tokio::test]
    async fn a_spent_share_holds_the_reader_until_the_loop_consumes() {
        let share = MemoryBudget::new(4 << 20).share(UNIT);
        let f = Inflow::new(share.clone());
        for _ in 0..4 {
            f.received(PACKET).await.unwrap();
        }
        assert_eq!(share.available_bytes(), 0, "the share is spent");
        let f2 = f.clone();
        let reader = tokio::spawn(async move { f2.received(PACKET).await });
        tokio::task::yield_now().await;
        assert!(
            !reader.is_finished(),
            "the fifth packet waits for the share"
        );
        f.consumed(PACKET);
        reader.await.unwrap().unwrap();
        assert_eq!(f.charged(), UNIT);
    }

    #[tokio::test]
    async fn other_channels_keep_their_allowance_while_the_share_is_spent() {
        let share = MemoryBudget::new(4 << 20).share(UNIT);
        let busy = Inflow::new(share.clone());
        for _ in 0..4 {
            busy.received(PACKET).await.unwrap();
        }
        let other = Inflow::new(share);
        for _ in 0..2 {
            // Would hang the test if it waited: the share stays spent.
            other.received(PACKET).await.unwrap();
        }
        other.consumed(2 * PACKET);
        assert_eq!(other.charged(), 0);
    }

    #[tokio::test]
    async fn bytes_consumed_before_they_are_counted_are_never_charged() {
        let share = MemoryBudget::new(4 << 20).share(1 << 20);
        let f = Inflow::new(share.clone());
        f.consumed(4 * PACKET);
        f.received(4 * PACKET).await.unwrap();
        assert_eq!(f.charged(), 0);
        f.received(PACKET).await.unwrap();
        assert_eq!(f.charged(), 0, "back to one packet outstanding");
        assert_eq!(share.available_bytes(), 1 << 20);
    }

    #[tokio::test]
    async fn closing_gives_everything_back_and_stops_counting() {
        let share = MemoryBudget::new(4 << 20).share(1 << 20);
        let f = Inflow::new(share.clone());
        for _ in 0..8 {
            f.received(PACKET).await.unwrap();
        }
        assert_eq!(f.charged(), 3 * UNIT);
        drop(CloseOnDrop(f.clone()));
        assert_eq!(share.available_bytes(), 1 << 20);
        for _ in 0..64 {
            f.received(PACKET).await.unwrap();
        }
        assert_eq!(f.charged(), 0);
    }

    #[tokio::test]
    async fn a_charge_larger_than_the_share_takes_the_whole_share() {
        let share = MemoryBudget::new(4 << 20).share(UNIT);
        let f = Inflow::new(share.clone());
        f.received(ALLOWANCE + 3 * UNIT).await.unwrap();
        assert_eq!(f.charged(), UNIT);
        assert_eq!(share.available_bytes(), 0);
    }
}
