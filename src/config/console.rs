//! `[console]`: the compliance console (README "For compliance officers"). It is served by the
//! admin listener, so it needs `[admin]`; officers log in with a client certificate from
//! `client_ca`, mapped here by fingerprint or subject to a name and roles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::Collector;
use super::raw::{RawConsole, RawOfficer};
use crate::auth::{ClientCertificateMap, parse_fingerprint, parse_subject};

pub const DEFAULT_REPLAY_DAYS: u64 = 30;
const MAX_REPLAY_DAYS: u64 = 3660;

/// What an officer may do. Roles add up: an approver who should also propose lists both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OfficerRole {
    /// Reads every page.
    Viewer,
    /// Proposes policy changes (and reads).
    Editor,
    /// Approves or rejects other officers' proposals (and reads).
    Approver,
}

impl OfficerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OfficerRole::Viewer => "viewer",
            OfficerRole::Editor => "editor",
            OfficerRole::Approver => "approver",
        }
    }

    fn parse(word: &str) -> Option<OfficerRole> {
        match word {
            "viewer" => Some(OfficerRole::Viewer),
            "editor" => Some(OfficerRole::Editor),
            "approver" => Some(OfficerRole::Approver),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerConfig {
    pub roles: BTreeSet<OfficerRole>,
    pub certificates: ClientCertificateMap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// PEM CA certificates that sign officers' client certificates.
    pub client_ca: PathBuf,
    /// Where proposals wait (default `proposals` beside the config file).
    pub proposals_dir: PathBuf,
    /// Audit logs of other instances, read with this gateway's own for search and register.
    pub audit_logs: Vec<PathBuf>,
    /// How many days of audited decisions a proposal is replayed against.
    pub replay_days: u64,
    pub officers: BTreeMap<String, OfficerConfig>,
}

pub(super) fn console(
    raw: &RawConsole,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> ConsoleConfig {
    let replay_days = c.within(
        raw.replay_days,
        "console.replay_days",
        1..=MAX_REPLAY_DAYS,
        DEFAULT_REPLAY_DAYS,
        "days of audited decisions a proposal is replayed against",
    );
    if raw.officers.is_empty() {
        c.push(
            "console.officers",
            "no officers; add one, e.g. [console.officers.olga] roles = [\"viewer\"] certificates = [\"sha256:…\"]",
        );
    }
    let officers = raw
        .officers
        .iter()
        .map(|(name, o)| (name.clone(), officer(name, o, c)))
        .collect();
    ConsoleConfig {
        client_ca: resolve(&raw.client_ca),
        proposals_dir: resolve(raw.proposals_dir.as_deref().unwrap_or("proposals")),
        audit_logs: raw.audit_logs.iter().map(|p| resolve(p)).collect(),
        replay_days,
        officers,
    }
}

fn officer(name: &str, o: &RawOfficer, c: &mut Collector) -> OfficerConfig {
    let key = format!("console.officers.{name}");
    if name.is_empty() || name.chars().any(|ch| ch.is_control()) {
        c.push(key.clone(), "an officer's name must be printable text");
    }
    let mut roles = BTreeSet::new();
    for (i, r) in o.roles.iter().enumerate() {
        match OfficerRole::parse(r) {
            Some(role) => {
                roles.insert(role);
            }
            None => c.push(
                format!("{key}.roles[{i}]"),
                format!("unknown role {r:?}; roles are viewer, editor and approver"),
            ),
        }
    }
    if o.roles.is_empty() {
        c.push(
            format!("{key}.roles"),
            "no role; give at least one of viewer, editor, approver",
        );
    }
    let mut certificates = ClientCertificateMap::default();
    for (i, f) in o.certificates.iter().enumerate() {
        match parse_fingerprint(f) {
            Ok(d) => certificates.fingerprints.push(d),
            Err(e) => c.push(format!("{key}.certificates[{i}]"), e),
        }
    }
    for (i, s) in o.subjects.iter().enumerate() {
        match parse_subject(s) {
            Ok(s) => certificates.subjects.push(s),
            Err(e) => c.push(format!("{key}.subjects[{i}]"), e),
        }
    }
    if certificates.is_empty() {
        c.push(
            key,
            "no certificate; list its fingerprint in certificates = [\"sha256:…\"] or its subject in subjects = [\"CN=…\"]",
        );
    }
    OfficerConfig {
        roles,
        certificates,
    }
}

/// A certificate listed for two officers would make the audit trail name the wrong person.
pub(super) fn check_unique(config: &ConsoleConfig, c: &mut Collector) {
    let mut seen: BTreeMap<[u8; 32], &str> = BTreeMap::new();
    for (name, o) in &config.officers {
        for f in &o.certificates.fingerprints {
            if let Some(other) = seen.insert(*f, name) {
                c.push(
                    format!("console.officers.{name}.certificates"),
                    format!("this certificate is already listed for officer {other:?}; one certificate, one officer"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError};
    use super::*;

    const ADMIN: &str = "[admin]\nlisten = [\"127.0.0.1:9443\"]\ncertificate = \"a.pem\"\nprivate_key = \"k.pem\"\n";
    const FP: &str = "sha256:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        super::super::parse_beside_minimal(text)
    }

    fn problem_keys(text: &str) -> Vec<String> {
        let Err(ConfigError::Invalid { problems, .. }) = parse(text) else {
            panic!("expected problems for {text}");
        };
        problems.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn officers_map_to_roles_and_paths_resolve() {
        let c = parse(&format!(
            "{ADMIN}[console]\nclient_ca = \"officers.pem\"\naudit_logs = [\"/var/b.jsonl\"]\n\
             [console.officers.olga]\nroles = [\"editor\", \"viewer\"]\ncertificates = [\"{FP}\"]\n\
             [console.officers.anna]\nroles = [\"approver\"]\nsubjects = [\"CN=anna,O=Example\"]\n"
        ))
        .unwrap();
        let k = c.console.unwrap();
        assert_eq!(k.client_ca, Path::new("/etc/eugate/officers.pem"));
        assert_eq!(k.proposals_dir, Path::new("/etc/eugate/proposals"));
        assert_eq!(k.audit_logs, [Path::new("/var/b.jsonl")]);
        assert_eq!(k.replay_days, DEFAULT_REPLAY_DAYS);
        let olga = &k.officers["olga"];
        assert_eq!(
            olga.roles.iter().copied().collect::<Vec<_>>(),
            [OfficerRole::Viewer, OfficerRole::Editor]
        );
        assert_eq!(olga.certificates.fingerprints.len(), 1);
        assert_eq!(k.officers["anna"].certificates.subjects.len(), 1);
    }

    #[test]
    fn bad_officers_are_named() {
        let keys = problem_keys(&format!(
            "{ADMIN}[console]\nclient_ca = \"ca.pem\"\nreplay_days = 0\n\
             [console.officers.olga]\nroles = [\"boss\"]\ncertificates = [\"sha1:00\"]\n\
             [console.officers.ben]\nroles = []\n"
        ));
        assert_eq!(
            keys,
            [
                "console.replay_days",
                "console.officers.ben.roles",
                "console.officers.ben",
                "console.officers.olga.roles[0]",
                "console.officers.olga.certificates[0]",
                "console.officers.olga",
            ]
        );
    }

    #[test]
    fn console_needs_admin_officers_and_unique_certificates() {
        let keys = problem_keys("[console]\nclient_ca = \"ca.pem\"\n");
        assert_eq!(keys, ["console.officers", "console"]);
        let keys = problem_keys(&format!(
            "{ADMIN}[console]\nclient_ca = \"ca.pem\"\n\
             [console.officers.a]\nroles = [\"editor\"]\ncertificates = [\"{FP}\"]\n\
             [console.officers.b]\nroles = [\"approver\"]\ncertificates = [\"{FP}\"]\n"
        ));
        assert_eq!(keys, ["console.officers.b.certificates"]);
    }
}
