//! Password checks against argon2id hashes, off the async runtime.

use zeroize::Zeroizing;

/// A valid argon2id hash of a random string: verifying against it costs what a real check does.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZXVnYXRlLWR1bW15LXNhbHQ$Yq2aZv4xM3Yk3kQ6m8b7l0CqB7m7o8mQ3xg8u5y6b3E";

/// Whether `password` matches `hash` (constant-time inside argon2). `None` (unknown user, or
/// no password set) checks against a dummy hash and fails, so timing does not reveal which
/// names exist.
pub async fn verify(hash: Option<String>, password: Zeroizing<String>) -> bool {
    let real = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
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

    #[tokio::test]
    async fn no_hash_never_passes_and_a_broken_hash_fails_closed() {
        assert!(!verify(None, Zeroizing::new(String::new())).await);
        assert!(!verify(Some("not a hash".into()), Zeroizing::new("x".into())).await);
    }
}
