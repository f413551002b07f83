//! `eugate keys list` and `eugate keys probe`: what holds which key, never key bytes.

use anyhow::bail;
use serde_json::json;

use super::keys::KeySource;
use crate::keys::MasterKey;
use crate::keys::provider::{self, KeyProvider};

/// One hold-your-own-key tenant as configured, with what its provider answered.
struct HeldByTenant {
    tenant: String,
    provider: String,
    kind: &'static str,
    key_ref: String,
    /// The provider key's current version (from a probe wrap), or why it is unknown.
    version: Result<u32, String>,
}

pub(super) fn list(keys: &KeySource, json: bool) -> anyhow::Result<()> {
    let ring = keys.open()?;
    let (kind, master_version) = ring.sealed_by();
    let held = keys.block_on(held_by_tenants(keys))?;
    if json {
        let tenants_hyok: Vec<_> = held
            .iter()
            .map(|h| {
                json!({
                    "tenant": h.tenant,
                    "provider": h.provider,
                    "kind": h.kind,
                    "key_ref": h.key_ref,
                    "key_version": h.version.as_ref().ok(),
                    "error": h.version.as_ref().err(),
                })
            })
            .collect();
        let out = json!({
            "version": ring.version(),
            "sealed_by": {
                "kind": kind.as_str(),
                "key_ref": keys.master.describe(),
                "key_version": master_version,
            },
            "tenants": ring.list(),
            "shredded": ring.shredded(),
            "held_by_tenant": tenants_hyok,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "sealed by {} ({}{})",
        keys.master.describe(),
        kind.as_str(),
        master_version
            .map(|v| format!(", key version {v}"))
            .unwrap_or_default()
    );
    println!(
        "{:<24} {:<20} {:>6}  versions",
        "tenant", "key id", "active"
    );
    for k in ring.list() {
        let versions: Vec<String> = k.versions.iter().map(u32::to_string).collect();
        println!(
            "{:<24} {:<20} {:>6}  {}",
            k.tenant,
            k.key_id,
            k.active_version,
            versions.join(",")
        );
    }
    for s in ring.shredded() {
        println!("{:<24} {:<20} shredded", s.tenant, s.key_id);
    }
    for h in &held {
        let version = match &h.version {
            Ok(v) => format!("key version {v}"),
            Err(e) => format!("not answering: {e}"),
        };
        println!(
            "{:<24} held by the tenant: {} {} ({version})",
            h.tenant, h.provider, h.key_ref
        );
    }
    // What a running gateway shows in /readyz once it has loaded this file.
    println!("keyring version {}", ring.version());
    Ok(())
}

/// Hold-your-own-key tenants of the configuration (none without --config).
async fn held_by_tenants(keys: &KeySource) -> anyhow::Result<Vec<HeldByTenant>> {
    let Some(config) = &keys.config else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (tenant, t) in &config.tenants {
        let Some(name) = &t.key_provider else {
            continue;
        };
        let Some(cfg) = config.keys.providers.get(name) else {
            continue;
        };
        let (key_ref, version) = match provider::connect(cfg).await {
            Ok(p) => (p.key_ref(), current_version(p.as_ref()).await),
            Err(e) => (name.clone(), Err(e.to_string())),
        };
        out.push(HeldByTenant {
            tenant: tenant.clone(),
            provider: name.clone(),
            kind: cfg.kind().as_str(),
            key_ref,
            version,
        });
    }
    Ok(out)
}

/// The version a wrap uses now: the only way every provider can tell it.
async fn current_version(p: &dyn KeyProvider) -> Result<u32, String> {
    let probe = zeroize::Zeroizing::new([0u8; provider::WRAPPED_KEY_LEN]);
    p.wrap(&probe, b"eugate version probe")
        .await
        .map(|w| w.key_version)
        .map_err(|e| e.to_string())
}

pub(super) fn probe(keys: &KeySource, repeat: u32) -> anyhow::Result<()> {
    let Some(config) = &keys.config else {
        bail!(
            "`eugate keys probe` needs --config: it probes the providers the configuration names"
        );
    };
    let mut failed = 0;
    if let MasterKey::Provider(p) = &keys.master {
        failed += report("master", p.as_ref(), keys, repeat);
    }
    let master = master_name(config);
    for (name, cfg) in &config.keys.providers {
        if master.as_deref() == Some(name.as_str()) {
            continue; // probed above, as "master"
        }
        match keys.block_on(provider::connect(cfg)) {
            Ok(p) => failed += report(name, p.as_ref(), keys, repeat),
            Err(e) => {
                println!("{name:<20} FAILED {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} key provider(s) failed the probe");
    }
    Ok(())
}

fn master_name(config: &crate::config::Config) -> Option<String> {
    match &config.keys.master {
        crate::config::MasterKeyConfig::Provider(n) => Some(n.clone()),
        crate::config::MasterKeyConfig::File(_) => None,
    }
}

fn report(name: &str, p: &dyn KeyProvider, keys: &KeySource, repeat: u32) -> usize {
    match keys.block_on(p.probe()) {
        Ok(()) => {
            println!("{name:<20} ok     {} ({})", p.key_ref(), p.kind().as_str());
            if repeat > 1 {
                match keys.block_on(timings(p, repeat)) {
                    Ok(t) => println!("{name:<20} {t}"),
                    Err(e) => {
                        println!("{name:<20} FAILED while timing: {e}");
                        return 1;
                    }
                }
            }
            0
        }
        Err(e) => {
            println!("{name:<20} FAILED {e}");
            1
        }
    }
}

/// Wrap and unwrap latencies over `n` calls each: `wrap median … p90 …, unwrap …`.
async fn timings(p: &dyn KeyProvider, n: u32) -> Result<String, provider::ProviderError> {
    let key = zeroize::Zeroizing::new([7u8; provider::WRAPPED_KEY_LEN]);
    let mut wraps = Vec::new();
    let mut unwraps = Vec::new();
    for _ in 0..n {
        let t = std::time::Instant::now();
        let w = p.wrap(&key, b"eugate timing").await?;
        wraps.push(t.elapsed());
        let t = std::time::Instant::now();
        p.unwrap(&w.blob, b"eugate timing").await?;
        unwraps.push(t.elapsed());
    }
    let pct = |v: &mut Vec<std::time::Duration>, q: usize| {
        v.sort();
        let i = (v.len() * q / 100).min(v.len() - 1);
        v[i].as_secs_f64() * 1000.0
    };
    Ok(format!(
        "{n} calls: wrap median {:.2} ms p90 {:.2} ms; unwrap median {:.2} ms p90 {:.2} ms",
        pct(&mut wraps, 50),
        pct(&mut wraps, 90),
        pct(&mut unwraps, 50),
        pct(&mut unwraps, 90)
    ))
}
