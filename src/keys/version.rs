//! A keyring's version: one short, stable name for "these keys", so that instances and
//! operators can compare what each gateway has loaded without seeing any key.
//!
//! SHA-256 over a canonical, length-prefixed list of every tenant's key id, active version and
//! versions, each version with a fingerprint of its key bytes, plus the shredded key ids.
//! Fingerprints make two keyrings that were rotated separately (same ids and version numbers,
//! different keys) show different versions: exactly the drift that makes objects undecryptable
//! on the other instance. A fingerprint is a domain-separated SHA-256 of a 256-bit random key,
//! so it reveals nothing usable about the key. Independent of the master key and of the file's
//! nonce: re-sealing the same keys keeps the version.

use ring::digest::{Context, SHA256};

/// Domain separation, so that these hashes are never comparable with any other SHA-256 use.
const VERSION_DOMAIN: &[u8] = b"eugate keyring version v1";
const FINGERPRINT_DOMAIN: &[u8] = b"eugate key fingerprint v1";

/// One tenant's keys as the version sees them.
pub(super) struct TenantView<'a> {
    pub tenant: &'a str,
    pub key_id: &'a str,
    pub active: u32,
    /// Version number and key bytes.
    pub versions: Vec<(u32, &'a [u8; 32])>,
}

/// `sha256:` and 64 hex digits (the policy bundle hash's form).
pub(super) fn version<'a>(
    tenants: impl IntoIterator<Item = TenantView<'a>>,
    shredded: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut tenants: Vec<TenantView<'a>> = tenants.into_iter().collect();
    tenants.sort_by(|a, b| a.tenant.cmp(b.tenant));
    let mut shredded: Vec<(&str, &str)> = shredded.into_iter().collect();
    shredded.sort_unstable();
    shredded.dedup();

    let mut ctx = Context::new(&SHA256);
    field(&mut ctx, VERSION_DOMAIN);
    ctx.update(&(tenants.len() as u64).to_be_bytes());
    for t in &mut tenants {
        field(&mut ctx, t.tenant.as_bytes());
        field(&mut ctx, t.key_id.as_bytes());
        ctx.update(&t.active.to_be_bytes());
        t.versions.sort_by_key(|(v, _)| *v);
        ctx.update(&(t.versions.len() as u64).to_be_bytes());
        for (v, key) in &t.versions {
            ctx.update(&v.to_be_bytes());
            ctx.update(fingerprint(key).as_ref());
        }
    }
    ctx.update(&(shredded.len() as u64).to_be_bytes());
    for (tenant, key_id) in shredded {
        field(&mut ctx, tenant.as_bytes());
        field(&mut ctx, key_id.as_bytes());
    }
    format!("sha256:{}", hex::encode(ctx.finish().as_ref()))
}

fn field(ctx: &mut Context, bytes: &[u8]) {
    ctx.update(&(bytes.len() as u64).to_be_bytes());
    ctx.update(bytes);
}

fn fingerprint(key: &[u8; 32]) -> ring::digest::Digest {
    let mut ctx = Context::new(&SHA256);
    ctx.update(FINGERPRINT_DOMAIN);
    ctx.update(key);
    ctx.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: [u8; 32] = [1; 32];
    const K2: [u8; 32] = [2; 32];

    fn view<'a>(
        tenant: &'a str,
        key_id: &'a str,
        active: u32,
        v: &[(u32, &'a [u8; 32])],
    ) -> TenantView<'a> {
        TenantView {
            tenant,
            key_id,
            active,
            versions: v.to_vec(),
        }
    }

    fn one(active: u32, versions: &[(u32, &[u8; 32])]) -> String {
        version([view("acme", "k-1", active, versions)], [])
    }

    #[test]
    fn has_the_bundle_hash_form_and_is_deterministic() {
        let v = one(1, &[(1, &K1)]);
        let hex = v.strip_prefix("sha256:").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(v, one(1, &[(1, &K1)]));
    }

    #[test]
    fn order_of_tenants_versions_and_shreds_does_not_matter() {
        let a = version(
            [
                view("acme", "k-1", 2, &[(1, &K1), (2, &K2)]),
                view("beta", "k-2", 1, &[(1, &K2)]),
            ],
            [("old", "k-9"), ("gone", "k-8")],
        );
        let b = version(
            [
                view("beta", "k-2", 1, &[(1, &K2)]),
                view("acme", "k-1", 2, &[(2, &K2), (1, &K1)]),
            ],
            [("gone", "k-8"), ("old", "k-9")],
        );
        assert_eq!(a, b);
    }

    #[test]
    fn every_part_of_the_keyring_changes_it() {
        let base = one(1, &[(1, &K1)]);
        let variants = [
            one(2, &[(1, &K1), (2, &K2)]), // rotated
            one(1, &[(1, &K1), (2, &K2)]), // a version more, not active
            one(1, &[(1, &K2)]),           // same ids and numbers, other key bytes
            version([view("acme", "k-2", 1, &[(1, &K1)])], []),
            version([view("acmf", "k-1", 1, &[(1, &K1)])], []),
            version([view("acme", "k-1", 1, &[(1, &K1)])], [("beta", "k-3")]),
            version([], []),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, base, "variant {i}");
        }
        let unique: std::collections::BTreeSet<_> = variants.iter().collect();
        assert_eq!(unique.len(), variants.len());
    }

    /// Length prefixes: moving bytes between neighbouring fields gives another version.
    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = version([view("ab", "c", 1, &[(1, &K1)])], []);
        let b = version([view("a", "bc", 1, &[(1, &K1)])], []);
        assert_ne!(a, b);
    }

    #[test]
    fn shows_no_key_bytes() {
        let v = one(1, &[(1, &K1)]);
        assert!(!v.contains(&hex::encode(K1)));
        assert!(!v.contains(&hex::encode(fingerprint(&K1).as_ref())));
    }
}
