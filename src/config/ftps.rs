//! `[ftps]`: the FTPS front end, explicit (`listen`) and implicit (`implicit_listen`), with
//! optional client certificates (README "FTPS"). Absent means FTPS is off.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
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
    /// Implicit FTPS listeners: TLS from the first byte (the old port 990 convention).
    pub implicit_listen: Vec<SocketAddr>,
    /// PEM bundle of the CAs whose client certificates may log users in; checked readable
    /// and well-formed here, so a broken file stops the start.
    pub client_ca: Option<PathBuf>,
    /// Data connections must resume the control connection's TLS session.
    pub require_ssl_reuse: bool,
}

pub(super) fn ftps(
    raw: &RawFtps,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> FtpsConfig {
    if raw.listen.is_empty() && raw.implicit_listen.is_empty() {
        c.push(
            "ftps.listen",
            "no listen address; add one, e.g. listen = [\"0.0.0.0:21\"] (or implicit_listen = [\"0.0.0.0:990\"]), or remove [ftps] to turn FTPS off",
        );
    }
    let listen = c.addresses("ftps.listen", &raw.listen, "0.0.0.0:21");
    let implicit_listen = c.addresses("ftps.implicit_listen", &raw.implicit_listen, "0.0.0.0:990");
    let client_ca = raw.client_ca.as_deref().map(|p| {
        let path = resolve(p);
        if let Err(e) = client_ca_roots(&path) {
            c.push("ftps.client_ca", e);
        }
        path
    });
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
        implicit_listen,
        client_ca,
        require_ssl_reuse: raw.require_ssl_reuse.unwrap_or(false),
    }
}

/// The trust anchors of a client CA bundle: every CERTIFICATE block must be a usable CA
/// certificate, and there must be at least one (an empty bundle would trust nobody silently).
pub fn client_ca_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read {} as PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no CERTIFICATE block; put the PEM certificate of the CA that issues client certificates there",
            path.display()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "{}: certificate #{} is not a usable CA certificate ({e})",
                path.display(),
                i + 1
            )
        })?;
    }
    Ok(roots)
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
    use super::super::{Config, ConfigError};
    use super::*;

    fn parse(ftps: &str) -> Result<Config, ConfigError> {
        super::super::parse_beside_minimal(ftps)
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

    const MIN: &str = "[ftps]\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n";

    fn problems(text: &str) -> Vec<(String, String)> {
        match parse(text) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| (p.key, p.message)).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn implicit_listen_alone_is_enough_and_is_checked() {
        let f = parse(&format!("{MIN}implicit_listen = [\"127.0.0.1:990\"]"))
            .unwrap()
            .ftps
            .unwrap();
        assert!(f.listen.is_empty());
        assert_eq!(f.implicit_listen, ["127.0.0.1:990".parse().unwrap()]);
        assert!(!f.require_ssl_reuse);
        let p = problems(MIN);
        assert_eq!(p[0].0, "ftps.listen", "{p:?}");
        let p = problems(&format!("{MIN}implicit_listen = [\"990\"]"));
        assert_eq!(p[0].0, "ftps.implicit_listen[0]", "{p:?}");
    }

    #[test]
    fn client_ca_fails_closed_when_unreadable_or_not_a_ca_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (file, words) in [
            (&missing, "cannot read"),
            (&empty, "no CERTIFICATE block"),
            (&bad, "not a usable CA certificate"),
        ] {
            let p = problems(&format!(
                "{MIN}listen = [\"127.0.0.1:21\"]\nclient_ca = \"{}\"",
                file.display()
            ));
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].0, "ftps.client_ca");
            assert!(p[0].1.contains(words), "{p:?}");
        }
    }

    #[test]
    fn client_certificate_mappings_are_checked_and_need_a_client_ca() {
        let users = "[destinations.local]\nkind = \"fs\"\nroot = \"s\"\ncountry = \"DE\"\n\
            [tenants.acme]\nroute = { destination = \"local\", prefix = \"acme/\" }\n\
            [tenants.acme.users.carla]\nftps_client_certificates = [\"sha256:AB\"]\n\
            ftps_client_subjects = [\"CN=carla\", \"XX=1\"]\n";
        let p = problems(&format!("{MIN}listen = [\"127.0.0.1:21\"]\n{users}"));
        let keys: Vec<&str> = p.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tenants.acme.users.carla.ftps_client_certificates[0]",
                "tenants.acme.users.carla.ftps_client_subjects[1]",
                "tenants.acme.users.carla",
                "tenants.acme.users.carla",
            ],
            "{p:?}"
        );
        assert!(p[2].1.contains("client_ca"), "{p:?}");
        assert!(p[3].1.contains("no way to log in"), "{p:?}");
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
