//! `[tenants.*]`: each tenant's route (destination and prefix), its default classification and
//! its users; and the check that no two tenants can see each other's objects.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::policy::Classification;

use super::destinations::{DestinationConfig, DestinationKind};
use super::raw::RawTenant;
use super::users::{self, UserConfig, UserOwners};
use super::{Collector, valid_name};

#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    pub destination: String,
    /// Object-key prefix inside the destination; empty or ending in `/`.
    pub prefix: String,
    /// Default data classification of the tenant's uploads.
    pub classification: Option<Classification>,
    /// Hold-your-own-key: the `[key_providers.NAME]` that wraps each object's key; `None`:
    /// the tenant's key is in the keyring.
    pub key_provider: Option<String>,
    pub users: BTreeMap<String, UserConfig>,
}

/// Validates every tenant against the validated `destinations`, then their isolation.
pub(super) fn tenants(
    raw: BTreeMap<String, RawTenant>,
    destinations: &BTreeMap<String, DestinationConfig>,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> BTreeMap<String, TenantConfig> {
    let mut tenants = BTreeMap::new();
    let mut owners = UserOwners::new();
    for (tname, t) in raw {
        let tenant = tenant(tname.clone(), t, destinations, &mut owners, resolve, c);
        tenants.insert(tname, tenant);
    }
    check_isolation(destinations, &tenants, c);
    tenants
}

fn tenant(
    tname: String,
    t: RawTenant,
    destinations: &BTreeMap<String, DestinationConfig>,
    owners: &mut UserOwners,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> TenantConfig {
    let key = format!("tenants.{tname}");
    if !valid_name(&tname) {
        c.push(
            &key,
            "tenant names use letters, digits, `-`, `_`, `.` (at most 64)",
        );
    }
    if !destinations.contains_key(&t.route.destination) {
        c.push(
            format!("{key}.route.destination"),
            format!(
                "no destination `{}`; define [destinations.{}] or pick one of: {}",
                t.route.destination,
                t.route.destination,
                destinations.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    check_prefix(&key, &tname, &t.route.prefix, c);
    let classification = classification(&key, t.classification.as_deref(), c);
    let users = t
        .users
        .into_iter()
        .map(|(uname, u)| {
            let user = users::user(&key, &tname, uname.clone(), u, owners, resolve, c);
            (uname, user)
        })
        .collect();
    TenantConfig {
        name: tname,
        destination: t.route.destination,
        prefix: t.route.prefix,
        classification,
        key_provider: t.key_provider,
        users,
    }
}

/// A prefix is empty or a relative, `/`-terminated path without `.`/`..` or hidden segments.
fn check_prefix(key: &str, tname: &str, prefix: &str, c: &mut Collector) {
    if !prefix.is_empty()
        && (!prefix.ends_with('/')
            || prefix.starts_with('/')
            || prefix
                .split('/')
                .any(|s| s == ".." || s == "." || s.starts_with('.'))
            || prefix.contains("//")
            || prefix.contains('\0'))
    {
        c.push(
            format!("{key}.route.prefix"),
            format!(
                "`{prefix}` must be relative, end with `/` and contain no `.`/`..` or hidden segments, e.g. \"{tname}/\""
            ),
        );
    }
}

/// Parsed here, once, into the policy's type, so nothing later handles the string.
fn classification(key: &str, raw: Option<&str>, c: &mut Collector) -> Option<Classification> {
    let cl = raw?;
    match cl.parse::<Classification>() {
        Ok(class) => Some(class),
        Err(_) => {
            let names: Vec<&str> = Classification::ALL.iter().map(|c| c.as_str()).collect();
            c.push(
                format!("{key}.classification"),
                format!("`{cl}` is unknown; use one of {}", names.join(", ")),
            );
            None
        }
    }
}

/// Where a tenant's objects live, `/`-terminated: tenants overlap when one's space begins with
/// the other's. Destinations that point at the same storage (one fs root inside another, one
/// bucket on one endpoint) share a space, so two of them cannot be used to get around the check.
fn tenant_space(d: &DestinationConfig, prefix: &str) -> String {
    let base = match &d.kind {
        DestinationKind::Fs { root, .. } => {
            // Lexical: `..` and `.` are resolved, symbolic links are not.
            let mut parts: Vec<String> = Vec::new();
            for comp in root.components() {
                match comp {
                    std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into()),
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    _ => {}
                }
            }
            format!("fs:/{}", parts.join("/"))
        }
        DestinationKind::S3(s3) => format!(
            "s3:{}/{}",
            s3.endpoint
                .as_deref()
                .map(|e| e.trim_end_matches('/').to_ascii_lowercase())
                .unwrap_or_else(|| "aws".into()),
            s3.bucket
        ),
    };
    let base = base.trim_end_matches('/');
    format!("{base}/{prefix}")
}

/// Tenants must not see each other: on one storage, no tenant's prefix may begin with another's
/// (equal prefixes and an empty prefix included), or the outer tenant could list, rename and
/// delete the inner one's objects.
fn check_isolation(
    destinations: &BTreeMap<String, DestinationConfig>,
    tenants: &BTreeMap<String, TenantConfig>,
    c: &mut Collector,
) {
    let spaces: Vec<(&TenantConfig, String)> = tenants
        .values()
        .filter_map(|t| {
            let d = destinations.get(&t.destination)?;
            Some((t, tenant_space(d, &t.prefix)))
        })
        .collect();
    for (i, (a, sa)) in spaces.iter().enumerate() {
        for (b, sb) in &spaces[i + 1..] {
            // `outer` is the tenant whose space holds the other's.
            let ((outer, _), (inner, _)) = if sb.starts_with(sa.as_str()) {
                ((a, sa), (b, sb))
            } else if sa.starts_with(sb.as_str()) {
                ((b, sb), (a, sa))
            } else {
                continue;
            };
            let (on, ip) = (&outer.name, &inner.name);
            let (op, pp) = (
                format!("\"{}\"", outer.prefix),
                format!("\"{}\"", inner.prefix),
            );
            let what = if outer.destination != inner.destination {
                format!(
                    "{op} on destination `{}` holds tenant `{ip}`'s prefix {pp} on destination `{}`: both destinations point at the same storage",
                    outer.destination, inner.destination
                )
            } else if outer.prefix.is_empty() {
                format!(
                    "is empty, but destination `{}` is shared with tenant `{ip}` (prefix {pp}): an empty prefix is the whole destination",
                    outer.destination
                )
            } else if outer.prefix == inner.prefix {
                format!(
                    "{op} is also tenant `{ip}`'s prefix on destination `{}`",
                    outer.destination
                )
            } else {
                format!(
                    "{op} contains tenant `{ip}`'s prefix {pp} on destination `{}`",
                    outer.destination
                )
            };
            c.push(
                format!("tenants.{on}.route.prefix"),
                format!(
                    "{what}, so tenant `{on}` could list, rename and delete tenant `{ip}`'s objects; \
                     give each tenant sharing a storage its own prefix, neither beginning with the other, \
                     e.g. \"{on}/\" and \"{ip}/\""
                ),
            );
        }
    }
}
