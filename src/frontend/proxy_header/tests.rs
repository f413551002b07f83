use std::net::{Ipv4Addr, Ipv6Addr};

use tokio::io::AsyncWriteExt;

use super::*;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::ReadBuf;

/// A v2 header built by hand (not by ppp), as HAProxy sends it.
fn header(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = SIGNATURE.to_vec();
    h.push(ver_cmd);
    h.push(fam);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn v4_body(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut b = src.to_vec();
    b.extend_from_slice(&[192, 0, 2, 10]);
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&2222u16.to_be_bytes());
    b
}

fn v6_body(src: Ipv6Addr, sport: u16) -> Vec<u8> {
    let mut b = src.octets().to_vec();
    b.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&2222u16.to_be_bytes());
    b
}

fn balancer() -> SocketAddr {
    "10.0.0.5:40000".parse().unwrap()
}

async fn read_all(input: &[u8]) -> Result<Client, HeaderError> {
    let mut r = input;
    let h = read_header(&mut r).await?;
    decide(&h, balancer())
}

#[tokio::test]
async fn proxy_over_tcp4_names_the_client_and_the_balancer() {
    let h = header(0x21, 0x11, &v4_body([203, 0, 113, 7], 51000));
    assert_eq!(
        read_all(&h).await,
        Ok(Client {
            addr: "203.0.113.7:51000".parse().unwrap(),
            via: Some(balancer()),
        })
    );
}

#[tokio::test]
async fn proxy_over_tcp6_names_the_client_and_mapped_ipv4_becomes_ipv4() {
    let ip: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let h = header(0x21, 0x21, &v6_body(ip, 443));
    let c = read_all(&h).await.unwrap();
    assert_eq!(c.addr, SocketAddr::new(IpAddr::V6(ip), 443));
    let mapped = Ipv4Addr::new(198, 51, 100, 4).to_ipv6_mapped();
    let c = read_all(&header(0x21, 0x21, &v6_body(mapped, 443)))
        .await
        .unwrap();
    assert_eq!(c.addr.ip(), IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4)));
}

#[tokio::test]
async fn tlvs_after_the_addresses_are_skipped() {
    let mut body = v4_body([203, 0, 113, 8], 1);
    // PP2_TYPE_UNIQUE_ID, then PP2_TYPE_NOOP.
    body.extend_from_slice(&[0x05, 0x00, 0x03, b'a', b'b', b'c', 0x04, 0x00, 0x00]);
    let c = read_all(&header(0x21, 0x11, &body)).await.unwrap();
    assert_eq!(c.addr, "203.0.113.8:1".parse().unwrap());
}

#[tokio::test]
async fn local_uses_the_real_peer_whatever_the_family() {
    for (fam, body) in [(0x00, Vec::new()), (0x11, v4_body([203, 0, 113, 9], 5))] {
        assert_eq!(
            read_all(&header(0x20, fam, &body)).await,
            Ok(Client::direct(balancer()))
        );
    }
}

#[tokio::test]
async fn families_that_name_no_tcp_client_are_refused() {
    let cases = [
        (0x00, Vec::new(), "AF_UNSPEC"),
        (0x31, vec![0; 216], "UNIX"),
        (0x12, v4_body([203, 0, 113, 7], 1), "UDP"),
        (0x10, v4_body([203, 0, 113, 7], 1), "unspecified transport"),
    ];
    for (fam, body, what) in cases {
        match read_all(&header(0x21, fam, &body)).await {
            Err(e @ HeaderError::Unsupported(_)) => {
                assert!(e.to_string().contains(what), "{fam:#x}: {e}")
            }
            other => panic!("{fam:#x}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_header_is_read_exactly_and_the_stream_goes_on_after_it() {
    let mut input = header(0x21, 0x11, &v4_body([203, 0, 113, 7], 9));
    input.extend_from_slice(b"SSH-2.0-client\r\n");
    let mut r = input.as_slice();
    read_header(&mut r).await.unwrap();
    assert_eq!(r, b"SSH-2.0-client\r\n");
}

#[tokio::test]
async fn truncated_headers_are_refused_with_what_arrived() {
    let h = header(0x21, 0x11, &v4_body([203, 0, 113, 7], 9));
    assert_eq!(
        read_all(&h[..20]).await,
        Err(HeaderError::Truncated { have: 20, need: 28 })
    );
    assert_eq!(
        read_all(&h[..10]).await,
        Err(HeaderError::Truncated { have: 10, need: 16 })
    );
    assert_eq!(
        read_all(b"").await,
        Err(HeaderError::Truncated { have: 0, need: 16 })
    );
}

#[tokio::test]
async fn v1_ssh_and_garbage_are_refused_at_their_first_bytes() {
    assert_eq!(
        read_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 5000 22\r\n").await,
        Err(HeaderError::V1)
    );
    // A v1 header too short to fill the fixed part is still named.
    assert_eq!(read_all(b"PROXY UNKNOWN\r\n").await, Err(HeaderError::V1));
    assert_eq!(
        read_all(b"SSH-2.0-OpenSSH_9.2\r\n").await,
        Err(HeaderError::Missing("an SSH version line"))
    );
    assert_eq!(
        read_all(b"\x16\x03\x01\x02\x00").await,
        Err(HeaderError::Missing("a TLS handshake"))
    );
    assert!(matches!(
        read_all(b"\r\n\r\n\0\r\nQUIX\n0000").await,
        Err(HeaderError::Missing(_))
    ));
}

#[tokio::test]
async fn bad_version_command_and_oversize_are_refused() {
    let body = v4_body([203, 0, 113, 7], 9);
    for (ver_cmd, fam) in [(0x11, 0x11), (0x22, 0x11), (0x21, 0x41), (0x21, 0x13)] {
        match read_all(&header(ver_cmd, fam, &body)).await {
            Err(HeaderError::Malformed(_)) => {}
            other => panic!("{ver_cmd:#x} {fam:#x}: {other:?}"),
        }
    }
    // An IPv4 header too short for its addresses.
    assert!(matches!(
        read_all(&header(0x21, 0x11, &body[..6])).await,
        Err(HeaderError::Malformed(_))
    ));
    // The length field alone decides: nothing past the fixed part is read or buffered.
    let mut big = header(0x21, 0x11, &[]);
    big[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    assert_eq!(
        read_all(&big).await,
        Err(HeaderError::Oversize(16 + 0xffff))
    );
}

fn proxy(from: &[&str], wait: Duration, cap: usize) -> Arc<ProxyProtocol> {
    let from = from
        .iter()
        .map(|r| AddressRange::parse(r).unwrap())
        .collect();
    Arc::new(ProxyProtocol::with(from, wait, cap, "test"))
}

#[test]
fn balancers_are_the_listed_addresses_and_networks() {
    let p = proxy(&["127.0.0.2", "10.0.0.0/8"], MAX_WAIT, 1);
    assert!(p.is_balancer("127.0.0.2".parse().unwrap()));
    assert!(p.is_balancer("::ffff:127.0.0.2".parse().unwrap()));
    assert!(p.is_balancer("10.200.0.1".parse().unwrap()));
    assert!(!p.is_balancer("127.0.0.1".parse().unwrap()));
    assert!(!proxy(&[], MAX_WAIT, 1).is_balancer("127.0.0.1".parse().unwrap()));
}

#[tokio::test]
async fn a_silent_balancer_is_cut_at_the_wait_and_waiters_are_capped() {
    let p = proxy(&["10.0.0.0/8"], Duration::from_millis(200), 1);
    let (mut silent, _keep) = tokio::io::duplex(64);
    let first = {
        let p = p.clone();
        tokio::spawn(async move { p.client(&mut silent, balancer()).await })
    };
    while p.pending.available_permits() > 0 {
        tokio::task::yield_now().await;
    }
    let (mut other, _keep2) = tokio::io::duplex(64);
    assert_eq!(
        p.client(&mut other, balancer()).await,
        Err(HeaderError::Busy(1))
    );
    assert_eq!(first.await.unwrap(), Err(HeaderError::Timeout(0)));
    // The slot is free again.
    let (mut ok, mut peer) = tokio::io::duplex(64);
    peer.write_all(&header(0x20, 0x00, &[])).await.unwrap();
    assert_eq!(
        p.client(&mut ok, balancer()).await,
        Ok(Client::direct(balancer()))
    );
}

/// A stream that hands out one chunk per read, so a header can arrive split.
struct Chunks(std::collections::VecDeque<Vec<u8>>);

impl AsyncRead for Chunks {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(c) = self.get_mut().0.pop_front() {
            buf.put_slice(&c);
        }
        Poll::Ready(Ok(()))
    }
}

async fn guarded_read(chunks: &[&[u8]]) -> io::Result<Vec<u8>> {
    let p = proxy(&[], MAX_WAIT, 1);
    let stream = Chunks(chunks.iter().map(|c| c.to_vec()).collect());
    let mut g = Guarded::new(stream, "127.0.0.1:1".parse().unwrap(), p.clone());
    let mut out = Vec::new();
    let r = g.read_to_end(&mut out).await;
    assert_eq!(p.refused_count(), u64::from(r.is_err()));
    r.map(|_| out)
}

#[tokio::test]
async fn a_non_balancer_sending_a_header_is_refused_even_split_over_reads() {
    let h = header(0x21, 0x11, &v4_body([203, 0, 113, 7], 9));
    for chunks in [vec![&h[..]], vec![&h[..3], &h[3..12], &h[12..]]] {
        let e = guarded_read(&chunks).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string()
                .contains("not in [server] proxy_protocol_from")
        );
    }
    assert!(
        guarded_read(&[b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_non_balancer_speaking_ssh_passes_through_untouched() {
    let input: &[&[u8]] = &[b"SSH-2.0-", b"x\r\n\r\n\r\n\0\r\nQUIT\n"];
    assert_eq!(
        guarded_read(input).await.unwrap(),
        b"SSH-2.0-x\r\n\r\n\r\n\0\r\nQUIT\n"
    );
    // Starts like the signature, then is not: passed through.
    assert_eq!(
        guarded_read(&[b"\r\n", b"SSH-2.0-y\r\n"]).await.unwrap(),
        b"\r\nSSH-2.0-y\r\n"
    );
}

#[test]
fn a_first_line_names_the_header_it_starts() {
    let h = header(0x21, 0x11, &v4_body([203, 0, 113, 7], 9));
    // As a line reader splits it: "" then the rest.
    assert_eq!(in_first_line("", &h[2..]), Some("v2"));
    assert_eq!(
        in_first_line("PROXY TCP4 203.0.113.7 192.0.2.1 5000 21", b""),
        Some("v1")
    );
    assert_eq!(in_first_line("", b"USER bob\r\n"), None);
    assert_eq!(in_first_line("AUTH TLS", &h[2..]), None);
    assert_eq!(signature_of(&h), Some("v2"));
    assert_eq!(signature_of(b"\x16\x03\x01"), None);
}
