//! SFTP packet framing over SSH channel data.
//!
//! russh hands each CHANNEL_DATA message over as its own `Bytes`; an SFTP packet can span several
//! of them (OpenSSH sends 32 KiB channel packets and 64 KiB WRITEs) or share one with its
//! neighbours. [`Inbox`] queues the messages without copying and cuts packets out of them.
//!
//! WRITE is the hot path: its data is handed on as slices of the channel messages, and the
//! upload pipeline copies it once, into the part buffer where it is sealed. Going through a
//! byte stream and a serde decode copied every uploaded byte three times and zero-filled it
//! once more (docs/benchmarks.md). Every other request is small and is handed to
//! russh-sftp's decoder as one contiguous `Bytes`.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// `SSH_FXP_WRITE` (draft-ietf-secsh-filexfer-02, section 3).
pub const SSH_FXP_WRITE: u8 = 6;
/// Our handles are short ("h17"); a longer one in a WRITE cannot name an open file.
const MAX_HANDLE_LEN: usize = 256;

/// One request cut out of the channel data.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Write {
        id: u32,
        handle: String,
        offset: u64,
        /// The data, in order: slices of the channel messages it arrived in (not copied).
        data: Vec<Bytes>,
    },
    /// Any other packet: its type byte and payload, without the length prefix (what
    /// `russh_sftp::protocol::Packet::try_from` decodes).
    Other(Bytes),
}

/// The client broke the framing or sent a WRITE we cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    /// The stream cannot be resynchronised after this: the session ends.
    #[error("SFTP packet length {len} exceeds the limit of {max} bytes")]
    TooLong { len: u32, max: u32 },
    /// The stream cannot be resynchronised after this: the session ends.
    #[error("SFTP packet length 0: every packet has at least a type byte")]
    Empty,
    /// The packet was consumed whole, so the session can go on: the client gets
    /// SSH_FX_BAD_MESSAGE for request `id`.
    #[error("malformed SSH_FXP_WRITE (request {id}): {what}")]
    MalformedWrite { id: u32, what: &'static str },
}

impl FramingError {
    /// Whether the session can continue after replying to the request.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FramingError::MalformedWrite { .. })
    }
}

/// Channel data received but not yet cut into packets.
#[derive(Debug)]
pub struct Inbox {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    max_packet: u32,
}

impl Inbox {
    /// `max_packet`: the largest packet (type byte and payload) accepted.
    pub fn new(max_packet: u32) -> Inbox {
        Inbox {
            chunks: VecDeque::new(),
            buffered: 0,
            max_packet,
        }
    }

    pub fn push(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.buffered += data.len();
            self.chunks.push_back(data);
        }
    }

    /// Bytes received and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The next complete request, or `None` until more data arrives.
    pub fn next_request(&mut self) -> Result<Option<Request>, FramingError> {
        let Some(len) = self.peek_u32(0) else {
            return Ok(None);
        };
        if len == 0 {
            return Err(FramingError::Empty);
        }
        if len > self.max_packet {
            return Err(FramingError::TooLong {
                len,
                max: self.max_packet,
            });
        }
        let len = len as usize;
        if self.buffered < 4 + len {
            return Ok(None);
        }
        self.advance(4);
        if self.peek_u8() == Some(SSH_FXP_WRITE) {
            return self.take_write(len).map(Some);
        }
        Ok(Some(Request::Other(self.take_bytes(len))))
    }

    /// Consumes a whole WRITE packet of `len` bytes (type byte included), whatever it holds.
    fn take_write(&mut self, len: usize) -> Result<Request, FramingError> {
        // type(1) id(4) handle-length(4)
        if len < 9 {
            self.advance(len);
            return Err(FramingError::MalformedWrite {
                id: 0,
                what: "packet ends before the request id and handle",
            });
        }
        let id = self.peek_u32(1).unwrap_or(0);
        let handle_len = self.peek_u32(5).unwrap_or(u32::MAX) as usize;
        // After the handle: offset(8) data-length(4).
        let fixed = 9usize.saturating_add(handle_len).saturating_add(12);
        if handle_len > MAX_HANDLE_LEN || fixed > len {
            self.advance(len);
            return Err(FramingError::MalformedWrite {
                id,
                what: "handle length runs past the end of the packet",
            });
        }
        self.advance(9);
        let handle = self.take_vec(handle_len);
        let offset = self.take_u64();
        let data_len = self.take_u32() as usize;
        let rest = len - fixed;
        if data_len > rest {
            self.advance(rest);
            return Err(FramingError::MalformedWrite {
                id,
                // "does not match" is the phrase of earlier releases, which tests and operators know.
                what: "data length does not match the packet length: it runs past the end of the packet",
            });
        }
        let data = self.take_pieces(data_len);
        // Bytes after the data are skipped, as OpenSSH's sftp-server does: rclone's sftp
        // library (pkg/sftp) sends WRITE packets longer than their data.
        self.advance(rest - data_len);
        let handle = String::from_utf8(handle).map_err(|_| FramingError::MalformedWrite {
            id,
            what: "handle is not UTF-8",
        })?;
        Ok(Request::Write {
            id,
            handle,
            offset,
            data,
        })
    }

    fn peek_u8(&self) -> Option<u8> {
        self.chunks.front().map(|c| c[0])
    }

    /// Reads `out.len()` bytes starting `at` bytes in, without consuming them.
    fn peek(&self, at: usize, out: &mut [u8]) -> bool {
        if self.buffered < at + out.len() {
            return false;
        }
        let mut skip = at;
        let mut filled = 0;
        for chunk in &self.chunks {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            let n = (chunk.len() - skip).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&chunk[skip..skip + n]);
            filled += n;
            skip = 0;
            if filled == out.len() {
                break;
            }
        }
        true
    }

    fn peek_u32(&self, at: usize) -> Option<u32> {
        let mut b = [0u8; 4];
        self.peek(at, &mut b).then(|| u32::from_be_bytes(b))
    }

    // The take_* helpers are called only after the caller checked `buffered`.

    fn advance(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let front = self.chunks.front_mut().expect("checked by the caller");
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Copies `n` bytes into a new `Vec` (no zero-fill first) and consumes them.
    fn take_vec(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        self.buffered -= n;
        while out.len() < n {
            let front = self.chunks.front_mut().expect("checked by the caller");
            let k = front.len().min(n - out.len());
            out.extend_from_slice(&front[..k]);
            if k == front.len() {
                self.chunks.pop_front();
            } else {
                front.advance(k);
            }
        }
        out
    }

    /// `n` bytes as slices of the messages they lie in (no copy).
    fn take_pieces(&mut self, n: usize) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(2);
        let mut left = n;
        self.buffered -= n;
        while left > 0 {
            let front = self.chunks.front_mut().expect("checked by the caller");
            if front.len() > left {
                out.push(front.split_to(left));
                return out;
            }
            left -= front.len();
            out.push(self.chunks.pop_front().expect("checked by the caller"));
        }
        out
    }

    /// `n` bytes as one `Bytes`: a zero-copy slice when they lie in one message.
    fn take_bytes(&mut self, n: usize) -> Bytes {
        let front = self.chunks.front_mut().expect("checked by the caller");
        if front.len() >= n {
            self.buffered -= n;
            let out = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(n);
        out.extend_from_slice(&self.take_vec(n));
        out.freeze()
    }

    fn take_u32(&mut self) -> u32 {
        let v = self.take_vec(4);
        u32::from_be_bytes([v[0], v[1], v[2], v[3]])
    }

    fn take_u64(&mut self) -> u64 {
        let v = self.take_vec(8);
        u64::from_be_bytes(v.try_into().expect("8 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write_packet(id: u32, handle: &[u8], offset: u64, data: &[u8]) -> Vec<u8> {
        let mut body = vec![SSH_FXP_WRITE];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&(handle.len() as u32).to_be_bytes());
        body.extend_from_slice(handle);
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.extend_from_slice(data);
        framed(&body)
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut p = (body.len() as u32).to_be_bytes().to_vec();
        p.extend_from_slice(body);
        p
    }

    fn drain(inbox: &mut Inbox) -> Vec<Result<Request, FramingError>> {
        let mut out = Vec::new();
        loop {
            match inbox.next_request() {
                Ok(Some(r)) => out.push(Ok(r)),
                Ok(None) => return out,
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Err(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn write_is_cut_out_of_split_messages() {
        let data: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let wire = write_packet(7, b"h1", 1 << 33, &data);
        let mut inbox = Inbox::new(256 * 1024);
        // 32 KiB messages, as OpenSSH sends them.
        for piece in wire.chunks(32 * 1024) {
            assert_eq!(inbox.next_request(), Ok(None));
            inbox.push(Bytes::copy_from_slice(piece));
        }
        let Ok(Some(Request::Write {
            id: 7,
            handle,
            offset: 8589934592,
            data: pieces,
        })) = inbox.next_request()
        else {
            panic!("expected the write")
        };
        assert_eq!(handle, "h1");
        assert_eq!(pieces.len(), 3, "spans three messages");
        assert_eq!(pieces.concat(), data);
        assert_eq!(inbox.buffered(), 0);
        assert_eq!(inbox.next_request(), Ok(None));
    }

    #[test]
    fn other_packets_inside_one_message_are_not_copied() {
        let body = [4u8, 0, 0, 0, 9, 0, 0, 0, 2, b'h', b'1']; // CLOSE 9 "h1"
        let mut wire = framed(&body);
        wire.extend_from_slice(&framed(&body));
        let msg = Bytes::from(wire);
        let mut inbox = Inbox::new(1024);
        inbox.push(msg.clone());
        let Ok(Some(Request::Other(first))) = inbox.next_request() else {
            panic!("expected a packet")
        };
        assert_eq!(&first[..], &body);
        assert_eq!(first.as_ptr(), msg[4..].as_ptr(), "sliced, not copied");
        assert!(matches!(inbox.next_request(), Ok(Some(Request::Other(_)))));
        assert_eq!(inbox.next_request(), Ok(None));
    }

    #[test]
    fn oversized_and_empty_packets_end_the_session() {
        let mut inbox = Inbox::new(1000);
        inbox.push(Bytes::from_static(&[0, 0, 3, 233])); // 1001
        let e = inbox.next_request().unwrap_err();
        assert_eq!(
            e,
            FramingError::TooLong {
                len: 1001,
                max: 1000
            }
        );
        assert!(e.is_fatal());
        assert!(e.to_string().contains("1001") && e.to_string().contains("1000"));

        let mut inbox = Inbox::new(1000);
        inbox.push(Bytes::from_static(&[0, 0, 0, 0, 1]));
        assert_eq!(inbox.next_request(), Err(FramingError::Empty));
    }

    #[test]
    fn malformed_writes_are_skipped_whole_and_the_next_packet_is_read() {
        let next = write_packet(2, b"h1", 0, b"fine");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            // Too short to hold id and handle length.
            (framed(&[SSH_FXP_WRITE, 0, 0]), "ends before"),
            // Handle length far past the end.
            (
                framed(&[SSH_FXP_WRITE, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 1, 2]),
                "handle length",
            ),
            // Data length says 10, 3 bytes follow.
            (
                {
                    let mut p = write_packet(5, b"h1", 0, b"abc");
                    let n = p.len();
                    p[n - 7..n - 3].copy_from_slice(&10u32.to_be_bytes());
                    p
                },
                "it runs past the end of the packet",
            ),
            (write_packet(5, &[0xff, 0xfe], 0, b"abc"), "UTF-8"),
        ];
        for (bad, what) in cases {
            let mut inbox = Inbox::new(1 << 20);
            inbox.push(Bytes::from(bad.clone()));
            inbox.push(Bytes::from(next.clone()));
            let got = drain(&mut inbox);
            assert_eq!(got.len(), 2, "{bad:?}: {got:?}");
            match &got[0] {
                Err(e @ FramingError::MalformedWrite { .. }) => {
                    assert!(!e.is_fatal());
                    assert!(e.to_string().contains(what), "{e} should say {what}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
            assert!(
                matches!(&got[1], Ok(Request::Write { id: 2, data, .. }) if data.concat() == b"fine"),
                "{got:?}"
            );
        }
    }

    /// A WRITE packet whose data length covers only `data`, followed by `trailing` bytes that
    /// belong to no field (what pkg/sftp's concurrent ReadFrom sends).
    fn write_packet_with_trailing(
        id: u32,
        handle: &[u8],
        offset: u64,
        data: &[u8],
        trailing: &[u8],
    ) -> Vec<u8> {
        let mut p = write_packet(id, handle, offset, data);
        p.extend_from_slice(trailing);
        let body_len = (p.len() - 4) as u32;
        p[..4].copy_from_slice(&body_len.to_be_bytes());
        p
    }

    #[test]
    fn write_keeps_its_data_and_skips_bytes_after_it() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let trailing = vec![0xee; 25_000];
        let mut wire = write_packet_with_trailing(3, b"h1", 4096, &data, &trailing);
        // The next packet must still be found where the long one ends.
        wire.extend_from_slice(&write_packet(4, b"h1", 44_096, b"next"));
        for split in [wire.len(), 32 * 1024, 997] {
            let mut inbox = Inbox::new(1 << 20);
            for piece in wire.chunks(split) {
                inbox.push(Bytes::copy_from_slice(piece));
            }
            let got = drain(&mut inbox);
            assert_eq!(got.len(), 2, "split {split}: {got:?}");
            match &got[0] {
                Ok(Request::Write {
                    id: 3,
                    offset: 4096,
                    data: pieces,
                    ..
                }) => assert_eq!(pieces.concat(), data, "split {split}"),
                other => panic!("split {split}: {other:?}"),
            }
            assert!(
                matches!(&got[1], Ok(Request::Write { id: 4, data, .. }) if data.concat() == b"next"),
                "split {split}: {got:?}"
            );
            assert_eq!(inbox.buffered(), 0);
        }
        // An empty WRITE followed by bytes is an empty write, too.
        let mut inbox = Inbox::new(1 << 20);
        inbox.push(Bytes::from(write_packet_with_trailing(
            5, b"h1", 0, b"", b"xyz",
        )));
        assert!(matches!(
            inbox.next_request(),
            Ok(Some(Request::Write { id: 5, data, .. })) if data.is_empty()
        ));
        assert_eq!(inbox.buffered(), 0);
    }

    proptest! {
        /// Any sequence of packets (WRITEs with or without bytes after their data), split at
        /// any points, comes out whole and in order.
        #[test]
        fn any_split_yields_the_same_requests(
            packets in proptest::collection::vec(
                (any::<bool>(), any::<u32>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..3000), 0usize..300),
                1..8,
            ),
            cuts in proptest::collection::vec(1usize..5000, 0..20),
        ) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for (is_write, id, offset, data, trailing) in &packets {
                if *is_write {
                    // Bytes after a WRITE's data are skipped, whatever they are.
                    let junk = vec![0x5a; *trailing];
                    wire.extend_from_slice(&write_packet_with_trailing(*id, b"h3", *offset, data, &junk));
                    expected.push(Request::Write { id: *id, handle: "h3".into(), offset: *offset, data: vec![Bytes::from(data.clone())] });
                } else {
                    let mut body = vec![5u8]; // READ-like: any non-WRITE type
                    body.extend_from_slice(data);
                    wire.extend_from_slice(&framed(&body));
                    expected.push(Request::Other(Bytes::from(body)));
                }
            }
            let mut inbox = Inbox::new(1 << 20);
            let mut got = Vec::new();
            let mut at: usize = 0;
            for cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                let end = at.saturating_add(*cut).min(wire.len());
                inbox.push(Bytes::copy_from_slice(&wire[at..end]));
                at = end;
                // Pieces are compared joined: how they split depends on the cuts.
                got.extend(drain(&mut inbox).into_iter().map(|r| match r.unwrap() {
                    Request::Write { id, handle, offset, data } => Request::Write {
                        id, handle, offset, data: vec![Bytes::from(data.concat())],
                    },
                    other => other,
                }));
                if at == wire.len() { break; }
            }
            prop_assert_eq!(got, expected);
            prop_assert_eq!(inbox.buffered(), 0);
        }
    }
}
