//! `[admin]`: the HTTPS admin listener for health checks and metrics (README "Operations:
//! admin endpoints and metrics"). Absent means no admin listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Collector;
use super::raw::RawAdmin;

/// How long a shutdown waits, after `/readyz` turns 503, before the front ends stop accepting:
/// long enough for a balancer polling every few seconds to notice.
pub const DEFAULT_DRAIN_DELAY_SECS: u64 = 5;
const MAX_DRAIN_DELAY_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub listen: Vec<SocketAddr>,
    /// PEM: the server certificate, then its chain.
    pub certificate: PathBuf,
    /// PEM: its private key; refused unless private to its owner (0600).
    pub private_key: PathBuf,
    /// PEM CA certificates; `Some`: only clients with a certificate they signed get an answer.
    pub client_ca: Option<PathBuf>,
    pub drain_delay: Duration,
}

pub(super) fn admin(
    raw: &RawAdmin,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> AdminConfig {
    if raw.listen.is_empty() {
        c.push(
            "admin.listen",
            "no listen address; add one, e.g. listen = [\"127.0.0.1:9443\"], or remove [admin] to turn the admin listener off",
        );
    }
    let listen = c.addresses("admin.listen", &raw.listen, "127.0.0.1:9443");
    let delay = c.within(
        raw.drain_delay_secs,
        "admin.drain_delay_secs",
        0..=MAX_DRAIN_DELAY_SECS,
        DEFAULT_DRAIN_DELAY_SECS,
        "seconds between /readyz turning 503 and the front ends closing their listeners",
    );
    AdminConfig {
        listen,
        certificate: resolve(&raw.certificate),
        private_key: resolve(&raw.private_key),
        client_ca: raw.client_ca.as_deref().map(resolve),
        drain_delay: Duration::from_secs(delay),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError};
    use super::*;

    fn parse(admin: &str) -> Result<Config, ConfigError> {
        super::super::parse_beside_minimal(admin)
    }

    #[test]
    fn absent_section_is_off_and_defaults_apply() {
        assert_eq!(parse("").unwrap().admin, None);
        let c = parse(
            "[admin]\nlisten = [\"127.0.0.1:9443\", \"[::1]:9443\"]\ncertificate = \"a.pem\"\nprivate_key = \"/k.pem\"",
        )
        .unwrap();
        let a = c.admin.unwrap();
        assert_eq!(a.listen.len(), 2);
        assert_eq!(a.certificate, Path::new("/etc/eugate/a.pem"));
        assert_eq!(a.private_key, Path::new("/k.pem"));
        assert_eq!(a.client_ca, None);
        assert_eq!(a.drain_delay, Duration::from_secs(DEFAULT_DRAIN_DELAY_SECS));
    }

    #[test]
    fn client_ca_resolves_and_zero_delay_is_allowed() {
        let a = parse("[admin]\nlisten = [\"127.0.0.1:9443\"]\ncertificate = \"a\"\nprivate_key = \"k\"\nclient_ca = \"ca.pem\"\ndrain_delay_secs = 0")
            .unwrap()
            .admin
            .unwrap();
        assert_eq!(
            a.client_ca.as_deref(),
            Some(Path::new("/etc/eugate/ca.pem"))
        );
        assert_eq!(a.drain_delay, Duration::ZERO);
    }

    #[test]
    fn bad_values_are_named() {
        let text = "[admin]\nlisten = []\ncertificate = \"c\"\nprivate_key = \"k\"\ndrain_delay_secs = 301";
        let Err(ConfigError::Invalid { problems, .. }) = parse(text) else {
            panic!("expected problems");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["admin.listen", "admin.drain_delay_secs"]);
        let text = "[admin]\nlisten = [\"localhost:9443\"]\ncertificate = \"c\"\nprivate_key = \"k\"\nunknown = 1";
        assert!(matches!(parse(text), Err(ConfigError::Syntax { .. })));
        let text =
            "[admin]\nlisten = [\"localhost:9443\"]\ncertificate = \"c\"\nprivate_key = \"k\"";
        let Err(ConfigError::Invalid { problems, .. }) = parse(text) else {
            panic!("expected problems");
        };
        assert_eq!(problems[0].key, "admin.listen[0]");
    }
}
