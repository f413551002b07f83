//! `[ftps]`: the explicit FTPS front end (README "FTPS"). Absent means FTPS is off.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::Collector;
use super::raw::RawFtps;

pub const DEFAULT_PASSIVE_PORTS: RangeInclusive<u16> = 50000..=50100;
pub const DEFAULT_DATA_TIMEOUT_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpsConfig {
    pub listen: Vec<SocketAddr>,
    /// PEM: the server certificate, then its chain.
    pub certificate: PathBuf,
    /// PEM: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// Ports for passive data connections (PASV/EPSV).
    pub passive_ports: RangeInclusive<u16>,
    /// The IP announced in PASV replies (behind NAT); `None`: the control connection's local IP.
    pub passive_address: Option<IpAddr>,
    /// How long a data connection may take to arrive, and to move any bytes once open.
    pub data_timeout: Duration,
}

pub(super) fn ftps(
    raw: &RawFtps,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> FtpsConfig {
    let mut listen = Vec::new();
    if raw.listen.is_empty() {
        c.push(
            "ftps.listen",
            "no listen address; add one, e.g. listen = [\"0.0.0.0:21\"], or remove [ftps] to turn FTPS off",
        );
    }
    for (i, addr) in raw.listen.iter().enumerate() {
        match addr.parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => c.push(
                format!("ftps.listen[{i}]"),
                format!("`{addr}` is not an IP:port socket address; write e.g. \"0.0.0.0:21\""),
            ),
        }
    }
    let passive_ports = match raw.passive_ports.as_deref() {
        None => DEFAULT_PASSIVE_PORTS,
        Some(text) => port_range(text).unwrap_or_else(|| {
            c.push(
                "ftps.passive_ports",
                format!("`{text}` is not a port range; write e.g. \"50000-50100\" (first ≤ last, both 1024-65535)"),
            );
            DEFAULT_PASSIVE_PORTS
        }),
    };
    let passive_address = raw.passive_address.as_deref().and_then(|a| match a.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            c.push(
                "ftps.passive_address",
                format!("`{a}` is not an IP address; write the address clients reach, e.g. \"203.0.113.7\""),
            );
            None
        }
    });
    let secs = raw.data_timeout_secs.unwrap_or(DEFAULT_DATA_TIMEOUT_SECS);
    if !(1..=3600).contains(&secs) {
        c.push(
            "ftps.data_timeout_secs",
            format!("must lie between 1 and 3600; the default is {DEFAULT_DATA_TIMEOUT_SECS}"),
        );
    }
    FtpsConfig {
        listen,
        certificate: resolve(&raw.certificate),
        private_key: resolve(&raw.private_key),
        passive_ports,
        passive_address,
        data_timeout: Duration::from_secs(secs.clamp(1, 3600)),
    }
}

/// `"50000-50100"` (or a single port) → the range, if both ends are unprivileged and ordered.
fn port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let a: u16 = a.trim().parse().ok()?;
    let b: u16 = b.trim().parse().ok()?;
    (a >= 1024 && a <= b).then_some(a..=b)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError};
    use super::*;

    const BASE: &str = r#"
[server]
listen = ["127.0.0.1:2222"]
host_keys = ["host_ed25519"]

[keys]
keyring = "keyring.json"
master_key_file = "master.key"
"#;

    fn parse(ftps: &str) -> Result<Config, ConfigError> {
        Config::parse(
            Path::new("/etc/eugate/gateway.toml"),
            &format!("{BASE}\n{ftps}"),
        )
    }

    #[test]
    fn absent_section_is_off_and_defaults_apply() {
        assert_eq!(parse("").unwrap().ftps, None);
        let c = parse(
            "[ftps]\nlisten = [\"0.0.0.0:21\"]\ncertificate = \"c.pem\"\nprivate_key = \"/k.pem\"",
        )
        .unwrap();
        let f = c.ftps.unwrap();
        assert_eq!(f.certificate, Path::new("/etc/eugate/c.pem"));
        assert_eq!(f.private_key, Path::new("/k.pem"));
        assert_eq!(f.passive_ports, DEFAULT_PASSIVE_PORTS);
        assert_eq!(f.passive_address, None);
        assert_eq!(
            f.data_timeout,
            Duration::from_secs(DEFAULT_DATA_TIMEOUT_SECS)
        );
    }

    #[test]
    fn bad_values_are_named() {
        let text = "[ftps]\nlisten = [\"nope\"]\ncertificate = \"c\"\nprivate_key = \"k\"\npassive_ports = \"9-1\"\npassive_address = \"host\"\ndata_timeout_secs = 0";
        let Err(ConfigError::Invalid { problems, .. }) = parse(text) else {
            panic!("expected problems");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ftps.listen[0]",
                "ftps.passive_ports",
                "ftps.passive_address",
                "ftps.data_timeout_secs"
            ]
        );
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range("50000-50100"), Some(50000..=50100));
        assert_eq!(port_range("50000"), Some(50000..=50000));
        assert_eq!(port_range("50100-50000"), None);
        assert_eq!(port_range("21-30"), None);
        assert_eq!(port_range("x-y"), None);
        assert_eq!(port_range("1-70000"), None);
    }
}
