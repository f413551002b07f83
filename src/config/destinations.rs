//! `[destinations.*]`: where sealed objects go. S3 buckets are checked in `s3.rs`; a local
//! directory (`kind = "fs"`) needs only its root and the country the operator declares.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::raw::RawDestination;
use super::s3::{self, S3DestinationConfig};
use super::{Collector, valid_name};

#[derive(Debug, Clone)]
pub struct DestinationConfig {
    pub name: String,
    pub kind: DestinationKind,
}

#[derive(Debug, Clone)]
pub enum DestinationKind {
    /// A local directory (on-premises disk). Its country is what the operator declared.
    Fs {
        root: PathBuf,
        country: String,
        /// Whose law reaches the disk: the operator's country (`None` = `country`).
        operator_country: Option<String>,
    },
    /// An S3-compatible bucket whose region is probed and verified.
    S3(Box<S3DestinationConfig>),
}

/// Validates every destination; one of an unknown kind is reported and left out.
pub(super) fn destinations(
    raw: BTreeMap<String, RawDestination>,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> BTreeMap<String, DestinationConfig> {
    let mut destinations = BTreeMap::new();
    for (name, d) in raw {
        let key = format!("destinations.{name}");
        if !valid_name(&name) {
            c.push(
                &key,
                "destination names use letters, digits, `-`, `_`, `.` (at most 64)",
            );
        }
        let kind = match d.kind.as_str() {
            "s3" => DestinationKind::S3(Box::new(s3::destination(&key, &d, resolve, c))),
            "fs" => fs(&key, &d, resolve, c),
            other => {
                c.push(
                    format!("{key}.kind"),
                    format!("unknown destination kind `{other}`; supported: \"s3\", \"fs\""),
                );
                continue;
            }
        };
        destinations.insert(name.clone(), DestinationConfig { name, kind });
    }
    destinations
}

/// One `kind = "fs"` destination.
fn fs(
    key: &str,
    d: &RawDestination,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> DestinationKind {
    s3::reject_s3_keys(key, d, c);
    let root = match &d.root {
        Some(r) => resolve(r),
        None => {
            c.push(
                format!("{key}.root"),
                "missing; an fs destination needs the directory that holds the sealed objects",
            );
            PathBuf::new()
        }
    };
    let country = country(key, d.country.as_deref(), c);
    let operator_country = operator_country(key, d.operator_country.as_deref(), c);
    DestinationKind::Fs {
        root,
        country,
        operator_country,
    }
}

/// `operator_country` of a self-hosted store: the country whose law governs whoever runs it,
/// when that is not the country the store is in (a German disk run by a US contractor).
pub(super) fn operator_country(key: &str, raw: Option<&str>, c: &mut Collector) -> Option<String> {
    match raw {
        Some(cc) if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) => {
            Some(cc.to_string())
        }
        Some(cc) => {
            c.push(
                format!("{key}.operator_country"),
                format!("`{cc}` is not an ISO 3166-1 alpha-2 code; write e.g. \"DE\" (the country whose law governs the store's operator)"),
            );
            None
        }
        None => None,
    }
}

/// The declared ISO 3166-1 alpha-2 country of a local disk (empty when missing or malformed).
fn country(key: &str, raw: Option<&str>, c: &mut Collector) -> String {
    match raw {
        Some(cc) if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) => cc.to_string(),
        Some(cc) => {
            c.push(
                format!("{key}.country"),
                format!("`{cc}` is not an ISO 3166-1 alpha-2 code; write e.g. \"DE\""),
            );
            String::new()
        }
        None => {
            c.push(
                format!("{key}.country"),
                "missing; declare where the disk is, e.g. country = \"DE\" (the policy treats it as attested, not probed)",
            );
            String::new()
        }
    }
}
