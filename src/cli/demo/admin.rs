//! The demo's admin listener (README "Operations: admin endpoints and metrics"): HTTPS with the
//! demo's FTPS server certificate and key. That certificate already names localhost, 127.0.0.1
//! and ::1 for server authentication under the demo CA, which is all a loopback admin port
//! needs, so one file for clients to trust (`ftps-ca.pem`) covers both listeners.

use std::net::SocketAddr;

use super::{host, tls};

/// The `[admin]` section the demo writes, and prints for a config made before it had one.
/// No drain delay: Ctrl-C on a demo should stop it at once (no balancer is watching `/readyz`).
pub fn section(listen: SocketAddr) -> String {
    format!(
        "[admin]\nlisten = [\"{listen}\"]\ncertificate = \"{cert}\"\nprivate_key = \"{key}\"\ndrain_delay_secs = 0\n",
        cert = tls::SERVER_CERT,
        key = tls::SERVER_KEY
    )
}

/// The `curl` commands for `/readyz` and `/metrics`, verifying against the demo CA.
pub fn print_on(shown: &str, addr: SocketAddr) {
    let ca = format!("{shown}/{}", tls::CA_CERT);
    let url = format!("https://{}:{}", host(addr), addr.port());
    println!(
        "Admin endpoints (HTTPS, /livez /readyz /metrics) on {addr}, server certificate from the demo CA {ca}:\n"
    );
    println!("  curl --cacert {ca} {url}/readyz");
    println!("  curl --cacert {ca} {url}/metrics\n");
}

/// A config from an older demo: say how to turn the admin listener on without losing anything.
pub fn print_off(shown: &str, listen: SocketAddr) {
    println!(
        "Admin endpoints (/livez, /readyz, /metrics) are off: {shown}/gateway.toml was made by an older eugate \
         and has no [admin] section. To turn them on, append these lines to it and run `eugate demo` again \
         (or move it away to get a new one; keys and store stay):\n"
    );
    for line in section(listen).lines() {
        println!("  {line}");
    }
    println!();
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_section_parses_and_names_the_demo_certificate() {
        let base = "[server]\nlisten = [\"127.0.0.1:2222\"]\nhost_keys = [\"h\"]\n\n[keys]\nkeyring = \"k\"\nmaster_key_file = \"m\"\n\n";
        let listen: SocketAddr = "127.0.0.1:9443".parse().unwrap();
        let text = format!("{base}{}", section(listen));
        let config = crate::config::Config::parse(Path::new("/d/gateway.toml"), &text).unwrap();
        let admin = config.admin.unwrap();
        assert_eq!(admin.listen, [listen]);
        assert_eq!(admin.certificate, Path::new("/d").join(tls::SERVER_CERT));
        assert_eq!(admin.private_key, Path::new("/d").join(tls::SERVER_KEY));
        assert_eq!(admin.client_ca, None);
        assert!(admin.drain_delay.is_zero());
    }
}
