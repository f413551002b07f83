//! Hold-your-own-key tenants: each object's key is wrapped by the tenant's own provider key
//! (one call per upload at OPEN, one per download unless cached), never by the keyring.
//! Revoking the key at the tenant's provider stops new uploads at once and, once cached keys
//! expire, every download of the tenant's objects.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::KeyError;
use super::keyring::random_key;
use super::provider::{KeyProvider, ProviderKind, Wrapped};

/// A fresh object key and its wrap by the tenant's provider: what an upload seals with and
/// records in the object header.
pub struct NewObjectKey {
    /// The `[key_providers.NAME]` that wrapped it (recorded as the header's key id).
    pub provider: String,
    pub kind: ProviderKind,
    pub wrapped: Wrapped,
    pub key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for NewObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewObjectKey")
            .field("provider", &self.provider)
            .field("wrapped", &self.wrapped)
            .finish_non_exhaustive()
    }
}

/// The providers of hold-your-own-key tenants, and a bounded, expiring cache of unwrapped keys.
#[derive(Debug, Default)]
pub struct ExternalKeys {
    providers: BTreeMap<String, Arc<dyn KeyProvider>>,
    /// Tenant → provider name.
    tenants: BTreeMap<String, String>,
    cache: UnwrapCache,
}

impl ExternalKeys {
    pub fn new(
        providers: BTreeMap<String, Arc<dyn KeyProvider>>,
        tenants: BTreeMap<String, String>,
        ttl: Duration,
        max_entries: usize,
    ) -> ExternalKeys {
        ExternalKeys {
            providers,
            tenants,
            cache: UnwrapCache::new(ttl, max_entries),
        }
    }

    /// The provider name of a hold-your-own-key tenant; `None` for a keyring tenant.
    pub fn provider_of(&self, tenant: &str) -> Option<&str> {
        self.tenants.get(tenant).map(String::as_str)
    }

    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&Arc<dyn KeyProvider>> {
        self.providers.get(name)
    }

    /// Every hold-your-own-key tenant with its provider.
    pub fn tenants(&self) -> impl Iterator<Item = (&str, &Arc<dyn KeyProvider>)> {
        self.tenants
            .iter()
            .filter_map(|(t, p)| self.providers.get(p).map(|p| (t.as_str(), p)))
    }

    /// A new object key for `tenant`, wrapped by its provider under `context` (one call; never
    /// cached, so a revoked key stops the next upload). `Ok(None)`: a keyring tenant.
    pub async fn new_object_key(
        &self,
        tenant: &str,
        context: &[u8],
    ) -> Result<Option<NewObjectKey>, KeyError> {
        let Some(name) = self.tenants.get(tenant) else {
            return Ok(None);
        };
        let provider = self.named(tenant, name)?;
        let key = random_key()?;
        let wrapped =
            provider
                .wrap(&key, context)
                .await
                .map_err(|source| KeyError::TenantProvider {
                    tenant: tenant.to_string(),
                    provider: name.clone(),
                    source,
                })?;
        Ok(Some(NewObjectKey {
            provider: name.clone(),
            kind: provider.kind(),
            wrapped,
            key,
        }))
    }

    /// The object key an object header records (`provider` name, its kind byte and blob),
    /// unwrapped by that provider or taken from the cache.
    pub async fn object_key(
        &self,
        tenant: &str,
        provider: &str,
        kind: u8,
        blob: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let p = self.named(tenant, provider)?;
        if ProviderKind::from_id(kind) != Some(p.kind()) {
            return Err(KeyError::NoProvider(format!(
                "the object's key was wrapped by a provider of kind {kind:#04x}, but [key_providers.{provider}] is {}",
                p.kind().as_str()
            )));
        }
        let id = cache_id(provider, blob, context);
        if let Some(key) = self.cache.get(&id) {
            return Ok(key);
        }
        let key = p
            .unwrap(blob, context)
            .await
            .map_err(|source| KeyError::TenantProvider {
                tenant: tenant.to_string(),
                provider: provider.to_string(),
                source,
            })?;
        self.cache.put(id, key.clone());
        Ok(key)
    }

    /// Drops every cached key (a reload of the provider configuration, a test).
    pub fn forget_cached(&self) {
        self.cache.clear();
    }

    fn named(&self, tenant: &str, name: &str) -> Result<&Arc<dyn KeyProvider>, KeyError> {
        self.providers.get(name).ok_or_else(|| {
            KeyError::NoProvider(format!(
                "tenant {tenant:?}: no key provider `{name}` is configured; the object cannot be opened here (add [key_providers.{name}])"
            ))
        })
    }
}

type CacheId = [u8; 32];

fn cache_id(provider: &str, blob: &[u8], context: &[u8]) -> CacheId {
    let mut h = blake3::Hasher::new();
    for part in [provider.as_bytes(), blob, context] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    *h.finalize().as_bytes()
}

/// Unwrapped keys by (provider, blob, context), each forgotten (and wiped) `ttl` after it was
/// unwrapped; at most `max` at once, the oldest going first.
#[derive(Debug, Default)]
struct UnwrapCache {
    ttl: Duration,
    max: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    keys: HashMap<CacheId, (Instant, Zeroizing<[u8; 32]>)>,
    order: VecDeque<(Instant, CacheId)>,
}

impl std::fmt::Debug for CacheInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheInner")
            .field("entries", &self.keys.len())
            .finish()
    }
}

impl UnwrapCache {
    fn new(ttl: Duration, max: usize) -> UnwrapCache {
        UnwrapCache {
            ttl,
            max,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn get(&self, id: &CacheId) -> Option<Zeroizing<[u8; 32]>> {
        let mut inner = self.lock();
        inner.expire(self.ttl);
        inner.keys.get(id).map(|(_, k)| k.clone())
    }

    fn put(&self, id: CacheId, key: Zeroizing<[u8; 32]>) {
        if self.max == 0 || self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        inner.expire(self.ttl);
        while inner.keys.len() >= self.max {
            let Some((_, oldest)) = inner.order.pop_front() else {
                break;
            };
            inner.keys.remove(&oldest);
        }
        let now = Instant::now();
        if inner.keys.insert(id, (now, key)).is_none() {
            inner.order.push_back((now, id));
        }
    }

    fn clear(&self) {
        let mut inner = self.lock();
        inner.keys.clear();
        inner.order.clear();
    }
}

impl CacheInner {
    fn expire(&mut self, ttl: Duration) {
        while let Some((at, id)) = self.order.front().copied() {
            if at.elapsed() < ttl {
                break;
            }
            self.order.pop_front();
            self.keys.remove(&id);
        }
    }
}

impl ExternalKeys {
    /// Connects the provider of every hold-your-own-key tenant in `config`. A provider that
    /// cannot be set up (its token or PIN file, its module) stops the start; one that is only
    /// unreachable now is logged, and its tenants' uploads are refused at OPEN until it answers.
    pub async fn from_config(config: &crate::config::Config) -> Result<ExternalKeys, KeyError> {
        let mut providers: BTreeMap<String, Arc<dyn KeyProvider>> = BTreeMap::new();
        let mut tenants = BTreeMap::new();
        for (tname, t) in &config.tenants {
            let Some(name) = &t.key_provider else {
                continue;
            };
            tenants.insert(tname.clone(), name.clone());
            if providers.contains_key(name) {
                continue;
            }
            let cfg = config.keys.providers.get(name).ok_or_else(|| {
                KeyError::NoProvider(format!(
                    "tenants.{tname}.key_provider names `{name}`, which is not configured"
                ))
            })?;
            let provider =
                super::provider::connect(cfg)
                    .await
                    .map_err(|source| KeyError::TenantProvider {
                        tenant: tname.clone(),
                        provider: name.clone(),
                        source,
                    })?;
            match provider.probe().await {
                Ok(()) => {
                    tracing::info!(provider = %name, key = %provider.key_ref(), "tenant key provider answers")
                }
                Err(e) => {
                    tracing::error!(provider = %name, "tenant key provider does not answer; its tenants' uploads are refused until it does: {e}")
                }
            }
            providers.insert(name.clone(), provider);
        }
        Ok(ExternalKeys::new(
            providers,
            tenants,
            config.keys.cache_ttl,
            config.keys.cache_entries,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Zeroizing<[u8; 32]> {
        Zeroizing::new([b; 32])
    }

    #[test]
    fn cache_is_bounded_oldest_first() {
        let c = UnwrapCache::new(Duration::from_secs(60), 2);
        c.put([1; 32], key(1));
        c.put([2; 32], key(2));
        c.put([3; 32], key(3));
        assert!(c.get(&[1; 32]).is_none());
        assert_eq!(*c.get(&[2; 32]).unwrap(), [2; 32]);
        assert_eq!(*c.get(&[3; 32]).unwrap(), [3; 32]);
    }

    #[test]
    fn cache_expires_and_zero_disables() {
        let c = UnwrapCache::new(Duration::from_millis(1), 8);
        c.put([1; 32], key(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(&[1; 32]).is_none());
        let off = UnwrapCache::new(Duration::ZERO, 8);
        off.put([1; 32], key(1));
        assert!(off.get(&[1; 32]).is_none());
        let none = UnwrapCache::new(Duration::from_secs(60), 0);
        none.put([1; 32], key(1));
        assert!(none.get(&[1; 32]).is_none());
    }

    #[test]
    fn cache_ids_separate_provider_blob_and_context() {
        let a = cache_id("p", b"blob", b"ctx");
        assert_ne!(a, cache_id("q", b"blob", b"ctx"));
        assert_ne!(a, cache_id("p", b"blob2", b"ctx"));
        assert_ne!(a, cache_id("p", b"blob", b"ctx2"));
        // Length prefixes: moving a byte between fields changes the id.
        assert_ne!(cache_id("pb", b"lob", b"ctx"), a);
    }
}
