//! Password checks against argon2id hashes, off the async runtime, a bounded number at once.

use std::sync::OnceLock;

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// A valid argon2id hash of a random string: verifying against it costs what a real check does.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZXVnYXRlLWR1bW15LXNhbHQ$Yq2aZv4xM3Yk3kQ6m8b7l0CqB7m7o8mQ3xg8u5y6b3E";

/// Whether `password` matches `hash` (constant-time inside argon2). `None` (unknown user, or
/// no password set) checks against a dummy hash and fails, so timing does not reveal which
/// names exist. Waits for a slot of the process-wide [`PasswordChecks`].
pub async fn verify(hash: Option<String>, password: Zeroizing<String>) -> bool {
    static CHECKS: OnceLock<PasswordChecks> = OnceLock::new();
    CHECKS
        .get_or_init(PasswordChecks::per_core)
        .verify(hash, password)
        .await
}

/// Runs argon2 checks at most a fixed number at a time. Each check allocates its hash's memory
/// cost (19 MiB at the parameters `eugate passwd` writes), so unbounded, a burst of logins or a
/// password-guessing flood costs one such allocation per login in flight: 64 FTPS logins at
/// once held 359 MiB of argon2 memory (docs/benchmarks.md). The checks are CPU-bound, so more
/// of them at once than there are cores would not end sooner; the rest wait without holding a
/// thread.
pub struct PasswordChecks {
    slots: Semaphore,
    /// Checks that have begun hashing (tests watch the bound with it).
    #[cfg(test)]
    started: std::sync::atomic::AtomicUsize,
}

impl PasswordChecks {
    /// As many at once as the process has cores.
    pub fn per_core() -> PasswordChecks {
        PasswordChecks::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn new(at_once: usize) -> PasswordChecks {
        PasswordChecks {
            slots: Semaphore::new(at_once.max(1)),
            #[cfg(test)]
            started: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// See [`verify`].
    pub async fn verify(&self, hash: Option<String>, password: Zeroizing<String>) -> bool {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        // The semaphore is never closed; failing closed all the same.
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        #[cfg(test)]
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let ok = tokio::task::spawn_blocking(move || {
            use argon2::password_hash::PasswordVerifier;
            argon2::PasswordHash::new(&hash).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn hash(pw: &str) -> String {
        let salt = SaltString::encode_b64(b"eugate-test-salt").unwrap();
        argon2::Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn the_right_password_passes_and_others_fail() {
        let h = hash("right");
        assert!(verify(Some(h.clone()), Zeroizing::new("right".into())).await);
        assert!(!verify(Some(h), Zeroizing::new("wrong".into())).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_beyond_the_bound_wait_for_a_slot() {
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        let checks = Arc::new(PasswordChecks::new(1));
        let h = hash("right");
        let first = tokio::spawn({
            let (c, h) = (checks.clone(), h.clone());
            async move { c.verify(Some(h), Zeroizing::new("right".into())).await }
        });
        // Until the first check has its slot, nothing else starts.
        while checks.started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let (c, h) = (checks.clone(), h.clone());
            async move { c.verify(Some(h), Zeroizing::new("wrong".into())).await }
        });
        // The second waits for as long as the first holds the only slot: the first cannot end
        // before its hash is done, and when it has ended, the second may have begun.
        while !first.is_finished() {
            assert_eq!(
                checks.started.load(Ordering::SeqCst),
                1,
                "a second check ran beside the first"
            );
            tokio::task::yield_now().await;
        }
        assert!(first.await.unwrap());
        assert!(!second.await.unwrap());
        assert_eq!(checks.started.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn no_hash_never_passes_and_a_broken_hash_fails_closed() {
        assert!(!verify(None, Zeroizing::new(String::new())).await);
        assert!(!verify(Some("not a hash".into()), Zeroizing::new("x".into())).await);
    }
}
