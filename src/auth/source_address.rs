//! The `source-address` critical option of an OpenSSH certificate: a comma-separated list of
//! addresses and CIDR ranges the certificate may be used from (PROTOCOL.certkeys).

use std::net::IpAddr;

/// Why a `source-address` value cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address or CIDR range")]
pub struct BadRange(pub String);

/// One `ADDRESS[/BITS]` entry (also `[server] proxy_protocol_from`'s entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    net: IpAddr,
    bits: u8,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, BadRange> {
        let bad = || BadRange(text.chars().take(64).collect());
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            // Digits only: `u8::from_str` would also take a leading `+`.
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => {
                b.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if bits > max {
            return Err(bad());
        }
        Ok(Range { net, bits })
    }

    /// Whether `ip` lies in the range; an IPv4-mapped IPv6 address counts as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

/// Whether `list` admits `client`. A malformed entry is an error rather than skipped: the CA
/// meant to restrict the certificate, and a restriction we cannot read is not honoured by
/// ignoring it. An unknown client address (`None`) is never admitted.
pub fn permits(list: &str, client: Option<IpAddr>) -> Result<bool, BadRange> {
    let ranges = list
        .split(',')
        .map(|r| Range::parse(r.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    // An IPv4 client reaching an IPv6 socket shows up as ::ffff:a.b.c.d.
    let Some(ip) = client.map(|ip| ip.to_canonical()) else {
        return Ok(false);
    };
    Ok(ranges.iter().any(|r| r.contains(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn addresses_inside_a_range_are_admitted_and_others_not() {
        assert_eq!(permits("10.0.0.0/8", ip("10.200.3.4")), Ok(true));
        assert_eq!(permits("10.0.0.0/8", ip("11.0.0.1")), Ok(false));
        assert_eq!(permits("127.0.0.1/32", ip("127.0.0.1")), Ok(true));
        assert_eq!(permits("127.0.0.1/32", ip("127.0.0.2")), Ok(false));
        assert_eq!(permits("192.168.1.0/25", ip("192.168.1.127")), Ok(true));
        assert_eq!(permits("192.168.1.0/25", ip("192.168.1.128")), Ok(false));
        assert_eq!(permits("0.0.0.0/0", ip("203.0.113.9")), Ok(true));
    }

    #[test]
    fn a_list_admits_any_of_its_entries_and_bare_addresses_are_hosts() {
        let list = "10.0.0.0/8, 192.0.2.7,2001:db8::/32";
        assert_eq!(permits(list, ip("192.0.2.7")), Ok(true));
        assert_eq!(permits(list, ip("192.0.2.8")), Ok(false));
        assert_eq!(permits(list, ip("2001:db8:1::5")), Ok(true));
        assert_eq!(permits(list, ip("2001:db9::5")), Ok(false));
    }

    #[test]
    fn mapped_ipv4_clients_match_ipv4_ranges_and_families_do_not_mix() {
        assert_eq!(permits("127.0.0.0/8", ip("::ffff:127.0.0.1")), Ok(true));
        assert_eq!(permits("::/0", ip("127.0.0.1")), Ok(false));
        assert_eq!(permits("0.0.0.0/0", ip("::1")), Ok(false));
    }

    #[test]
    fn malformed_entries_are_errors_and_unknown_clients_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
            "host",
        ] {
            assert!(permits(bad, ip("10.0.0.1")).is_err(), "{bad}");
        }
        assert!(permits("10.0.0.0/8,nonsense", ip("10.0.0.1")).is_err());
        assert_eq!(permits("0.0.0.0/0", None), Ok(false));
    }
}
