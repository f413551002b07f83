//! Replies on their way to the client, packed into full SSH channel packets.
//!
//! russh sends every `data_bytes` call as packets of its own, so a 32 KiB READ reply (13 bytes of
//! SFTP header beyond the 32 KiB packets OpenSSH's client accepts) left as one full packet and
//! one of 13 bytes: twice the packets a download needs, each framed, encrypted and written by
//! us, and read and decrypted by the client. Here replies are appended to one byte stream (SFTP
//! is a stream; packet boundaries mean nothing to it) and only whole packets leave while the
//! loop has more requests to answer; when it runs out, the rest leaves too, so no reply waits
//! for a request that has not come. Only a DATA reply's tail waits for requests already
//! received (see [`Outbox::ends_in_data`]).
//!
//! A READ reply is encoded here directly: its header, then the plaintext the download appends,
//! so the data is copied once between the opened segment and russh's packet buffer.

use bytes::{BufMut, Bytes, BytesMut};

/// `SSH_FXP_DATA`, the reply to READ.
const SSH_FXP_DATA: u8 = 103;
/// The largest packet we pack for, whatever the client accepts: a client announcing huge
/// packets would otherwise have every reply of a burst held back until the burst ends.
const MAX_PACKED: usize = 256 << 10;

/// A reply under construction or waiting for the packet it completes.
pub struct Outbox {
    pending: BytesMut,
    packet: usize,
    /// Whether the last reply appended was a DATA reply.
    last_was_data: bool,
}

/// Where a DATA reply begins in the outbox, to finish or take it back.
#[must_use]
pub struct DataMark {
    start: usize,
    len: usize,
}

impl Outbox {
    /// `packet`: the largest channel packet the client accepts (russh's
    /// `writable_packet_size`). Zero (which russh refuses to send with anyway) counts as one.
    pub fn new(packet: usize) -> Outbox {
        Outbox {
            pending: BytesMut::new(),
            packet: packet.clamp(1, MAX_PACKED),
            last_was_data: false,
        }
    }

    /// Appends an encoded reply.
    pub fn push(&mut self, reply: &[u8]) {
        self.pending.extend_from_slice(reply);
        self.last_was_data = false;
    }

    /// Starts an `SSH_FXP_DATA` reply of exactly `len` data bytes, which the caller then appends
    /// through [`Outbox::data`] before [`Outbox::finish_data`], or takes back with
    /// [`Outbox::abandon`].
    pub fn start_data(&mut self, id: u32, len: usize) -> DataMark {
        let start = self.pending.len();
        self.pending.reserve(13 + len);
        self.pending.put_u32((1 + 4 + 4 + len) as u32);
        self.pending.put_u8(SSH_FXP_DATA);
        self.pending.put_u32(id);
        self.pending.put_u32(len as u32);
        DataMark { start, len }
    }

    /// Where the data of the reply being built goes.
    pub fn data(&mut self) -> &mut BytesMut {
        &mut self.pending
    }

    /// Ends the DATA reply `mark` began. `false`, with the reply taken back, if the data
    /// appended was not the length its header announced: a reply must never lie about its
    /// length, or every later reply on the channel would be misread.
    pub fn finish_data(&mut self, mark: DataMark) -> bool {
        if self.pending.len() == mark.start + 13 + mark.len {
            self.last_was_data = true;
            return true;
        }
        self.abandon(mark);
        false
    }

    /// Takes back a DATA reply begun with `mark` (its read failed; a STATUS goes instead).
    pub fn abandon(&mut self, mark: DataMark) {
        self.pending.truncate(mark.start);
        self.last_was_data = false;
    }

    /// Whether what waits ends with part of a DATA reply, worth holding for the next reply to
    /// fill its packet. Small replies (STATUS to WRITEs) are not held: a client waiting for them
    /// stops sending, so holding them while its earlier requests are answered would make an
    /// upload stop and start once per window of requests.
    pub fn ends_in_data(&self) -> bool {
        self.last_was_data && !self.pending.is_empty()
    }

    /// The whole packets waiting, if any; the remainder stays for the next reply.
    pub fn full_packets(&mut self) -> Option<Bytes> {
        let whole = self.pending.len() / self.packet * self.packet;
        (whole > 0).then(|| self.pending.split_to(whole).freeze())
    }

    /// Everything waiting.
    pub fn rest(&mut self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use russh_sftp::protocol::{Data, Packet};

    fn data_reply(out: &mut Outbox, id: u32, data: &[u8]) {
        let mark = out.start_data(id, data.len());
        out.data().extend_from_slice(data);
        assert!(out.finish_data(mark));
    }

    #[test]
    fn a_data_reply_is_encoded_as_russh_sftp_encodes_it() {
        for data in [vec![], vec![7u8; 1], vec![0xA5; 32 << 10]] {
            let mut out = Outbox::new(32 << 10);
            data_reply(&mut out, 42, &data);
            let ours = out.rest().unwrap();
            let theirs = Bytes::try_from(Packet::Data(Data { id: 42, data })).unwrap();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn only_whole_packets_leave_until_the_rest_is_asked_for() {
        let mut out = Outbox::new(32 << 10);
        data_reply(&mut out, 1, &[1; 32 << 10]);
        let first = out.full_packets().unwrap();
        assert_eq!(first.len(), 32 << 10);
        assert!(
            out.full_packets().is_none(),
            "13 bytes wait for the next reply"
        );
        data_reply(&mut out, 2, &[2; 32 << 10]);
        assert_eq!(out.full_packets().unwrap().len(), 32 << 10);
        assert_eq!(out.rest().unwrap().len(), 26);
        assert!(out.rest().is_none());
    }

    #[test]
    fn only_a_data_tail_is_worth_holding() {
        let mut out = Outbox::new(32 << 10);
        assert!(!out.ends_in_data(), "nothing waits");
        data_reply(&mut out, 1, &[1; 32 << 10]);
        let _ = out.full_packets();
        assert!(out.ends_in_data(), "13 bytes of a DATA reply wait");
        out.push(b"a STATUS");
        assert!(!out.ends_in_data());
        data_reply(&mut out, 2, &[2; 100]);
        assert!(out.ends_in_data());
        let _ = out.rest();
        assert!(!out.ends_in_data(), "nothing waits any more");
        let mark = out.start_data(3, 10);
        out.abandon(mark);
        assert!(!out.ends_in_data());
    }

    #[test]
    fn a_reply_of_the_wrong_length_is_taken_back() {
        let mut out = Outbox::new(1024);
        out.push(b"earlier reply");
        let mark = out.start_data(9, 10);
        out.data().extend_from_slice(b"short");
        assert!(!out.finish_data(mark));
        assert_eq!(&out.rest().unwrap()[..], b"earlier reply");
    }

    #[test]
    fn an_abandoned_reply_leaves_nothing_behind() {
        let mut out = Outbox::new(1024);
        let mark = out.start_data(9, 10);
        out.data().extend_from_slice(b"0123");
        out.abandon(mark);
        out.push(b"status");
        assert_eq!(&out.rest().unwrap()[..], b"status");
    }

    #[test]
    fn huge_client_packets_are_packed_at_256_kib() {
        let mut out = Outbox::new(u32::MAX as usize);
        out.push(&vec![0; 300 << 10]);
        assert_eq!(out.full_packets().unwrap().len(), 256 << 10);
        assert_eq!(Outbox::new(0).packet, 1);
    }

    proptest! {
        /// Whatever the replies and packet size, the bytes that leave are the replies in order,
        /// every piece but the last is whole packets, and nothing is held after `rest`.
        #[test]
        fn the_stream_is_the_replies_in_order(
            packet in 1usize..70_000,
            replies in proptest::collection::vec((any::<bool>(), 0usize..70_000), 0..12),
        ) {
            let mut out = Outbox::new(packet);
            let mut expected = Vec::new();
            let mut sent = Vec::new();
            for (i, (is_data, len)) in replies.into_iter().enumerate() {
                let body = vec![i as u8; len];
                if is_data {
                    data_reply(&mut out, i as u32, &body);
                    expected.extend_from_slice(&Bytes::try_from(Packet::Data(Data { id: i as u32, data: body })).unwrap());
                } else {
                    out.push(&body);
                    expected.extend_from_slice(&body);
                }
                if let Some(p) = out.full_packets() {
                    prop_assert_eq!(p.len() % packet.min(MAX_PACKED), 0);
                    sent.extend_from_slice(&p);
                }
            }
            if let Some(p) = out.rest() {
                sent.extend_from_slice(&p);
            }
            prop_assert_eq!(sent, expected);
            prop_assert!(out.rest().is_none());
        }
    }
}
