// Modified for eugate: packets are read into their own buffer and handed on as `Bytes`
// (see vendor/russh/EUGATE.md).
// Copyright 2016 Pierre-Étienne Meunier
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.
//

use core::fmt;
use std::borrow::Cow;
use std::num::Wrapping;

use bytes::{Bytes, BytesMut};
use log::debug;
use ssh_encoding::Writer;
use super::cipher::SealingKey;
use compression::Compress;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::*;

/// The SSH client/server identification string.
#[derive(Debug)]
pub enum SshId {
    /// When sending the id, append RFC standard `\r\n`. Example: `SshId::Standard("SSH-2.0-acme")`
    Standard(Cow<'static, str>),
    /// When sending the id, use this buffer as it is and do not append additional line terminators.
    Raw(Cow<'static, str>),
}

impl SshId {
    pub(crate) fn as_kex_hash_bytes(&self) -> &[u8] {
        match self {
            Self::Standard(s) => s.as_bytes(),
            Self::Raw(s) => s.trim_end_matches(['\n', '\r']).as_bytes(),
        }
    }

    /// Write the SSH identification string to a buffer.
    /// Buffer is not sensitive - SSH identification strings are public protocol data.
    pub(crate) fn write(&self, buffer: &mut Vec<u8>) {
        match self {
            Self::Standard(s) => buffer.extend_from_slice(format!("{s}\r\n").as_bytes()),
            Self::Raw(s) => buffer.extend_from_slice(s.as_bytes()),
        }
    }
}

#[test]
fn test_ssh_id() {
    let mut buffer = Vec::new();
    SshId::Standard("SSH-2.0-acme".into()).write(&mut buffer);
    assert_eq!(&buffer[..], b"SSH-2.0-acme\r\n");

    let mut buffer = Vec::new();
    SshId::Raw("SSH-2.0-raw\n".into()).write(&mut buffer);
    assert_eq!(&buffer[..], b"SSH-2.0-raw\n");

    assert_eq!(
        SshId::Standard("SSH-2.0-acme".into()).as_kex_hash_bytes(),
        b"SSH-2.0-acme"
    );
    assert_eq!(
        SshId::Raw("SSH-2.0-raw\n".into()).as_kex_hash_bytes(),
        b"SSH-2.0-raw"
    );
}

#[test]
fn test_write_packet_leaves_reusable_buffer_for_cold_path_packets() {
    let mut writer = PacketWriter::clear();
    let large_len = 128 * 1024;
    let packet_buffer_capacity = writer.packet_buffer.capacity();

    writer
        .write_packet(|buf| {
            buf.resize(buf.len() + large_len, 0x5a);
            Ok(())
        })
        .unwrap();
    assert_eq!(writer.packet_buffer.capacity(), packet_buffer_capacity);
}

#[test]
fn reserve_cleartext_packet_output_reserves_output_capacity() {
    let mut writer = PacketWriter::clear();
    let payload_bytes = 4096;
    let packet_count = 4;

    writer.reserve_cleartext_packet_output(payload_bytes, packet_count);

    let expected = payload_bytes
        + packet_count * (PacketWriter::PACKET_PREFIX_LEN + writer.cipher.tag_len() + 32);
    assert!(writer.write_buffer.buffer.capacity() >= expected);
    assert!(writer.write_buffer.buffer.is_empty());
}

#[cfg(feature = "flate2")]
#[test]
fn reserve_cleartext_packet_output_ignores_compressed_writer() {
    let mut writer = PacketWriter::new(Box::new(cipher::clear::Key {}), zlib_compress());
    let capacity = writer.write_buffer.buffer.capacity();

    writer.reserve_cleartext_packet_output(4096, 4);

    assert_eq!(writer.write_buffer.buffer.capacity(), capacity);
}

#[test]
fn test_packet_returns_retained_bytes() {
    let mut writer = PacketWriter::clear();
    let retained = writer
        .packet(|buf| {
            buf.extend_from_slice(b"abc");
            Ok(())
        })
        .unwrap();

    assert_eq!(&retained[..], b"abc");
}

#[test]
fn packet_bytes_returns_retained_bytes() {
    let mut writer = PacketWriter::clear();
    let retained = writer
        .packet_bytes(|buf| {
            buf.extend_from_slice(b"abc");
            Ok(())
        })
        .unwrap();

    assert_eq!(&retained[..], b"abc");
}

#[test]
fn packet_bytes_matches_packet_output() {
    let payload = b"abcdefghijklmno".to_vec();

    let mut packet_writer = PacketWriter::clear();
    let packet_retained = packet_writer
        .packet(|buf| {
            buf.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();
    let packet_buffer = packet_writer.buffer().buffer.clone();
    let packet_bytes = packet_writer.buffer().bytes;

    let mut packet_bytes_writer = PacketWriter::clear();
    let bytes_retained = packet_bytes_writer
        .packet_bytes(|buf| {
            buf.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();

    assert_eq!(packet_retained, bytes_retained);
    assert_eq!(packet_bytes_writer.buffer().buffer, packet_buffer);
    assert_eq!(packet_bytes_writer.buffer().bytes, packet_bytes);
}

#[test]
fn test_write_packet_matches_clear_cipher_write_output() {
    let payload = b"abcdefghijklmno".to_vec();

    let mut expected = SSHBuffer::new();
    let mut clear = cipher::clear::Key {};
    clear.write(&payload, &mut expected);

    let mut writer = PacketWriter::clear();
    writer
        .write_packet(|buf| {
            buf.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();

    assert_eq!(writer.buffer().buffer, expected.buffer);
    assert_eq!(writer.buffer().bytes, payload.len());
    assert_eq!(writer.buffer().seqn, Wrapping(1));
}

#[test]
fn installing_a_cipher_starts_a_new_write_key_epoch() {
    let mut writer = PacketWriter::clear();
    writer.packet_raw(b"initial key exchange").unwrap();
    assert_ne!(writer.buffer().bytes, 0);

    writer.set_cipher(Box::new(cipher::clear::Key {}));

    assert_eq!(writer.buffer().bytes, 0);
    writer.packet_raw(b"encrypted epoch").unwrap();
    assert_eq!(writer.buffer().bytes, b"encrypted epoch".len());
}

// `tokio::test` is resolved even in non-test builds, and the WASM target's
// tokio has no `macros` feature; `#[cfg(test)]` drops the item first.
#[cfg(test)]
#[tokio::test]
async fn automatic_rekey_read_counter_tracks_payload_bytes() {
    let payload = b"inbound rekey accounting";
    let mut writer = PacketWriter::clear();
    writer.packet_raw(payload).unwrap();
    let encoded = writer.buffer().buffer.clone();
    let (mut reader, mut sender) = tokio::io::duplex(encoded.len());
    sender.write_all(&encoded).await.unwrap();
    drop(sender);

    let mut buffer = SSHBuffer::new();
    let mut opening_key = cipher::clear::Key {};
    cipher::read(&mut reader, &mut buffer, &mut opening_key)
        .await
        .unwrap();

    assert_eq!(buffer.bytes, payload.len());
}

// eugate: the read path hands packets out as `Bytes`; these pin what it promises.
#[cfg(test)]
#[tokio::test]
async fn consecutive_packets_are_read_whole_and_apart() {
    let mut writer = PacketWriter::clear();
    writer.packet_raw(b"\x5efirst packet").unwrap();
    writer.packet_raw(&[0x5e; 40_000]).unwrap();
    writer.packet_raw(b"\x5ethird").unwrap();
    let encoded = writer.buffer().buffer.clone();
    let (mut reader, mut sender) = tokio::io::duplex(encoded.len());
    sender.write_all(&encoded).await.unwrap();
    drop(sender);

    let mut buffer = SSHBuffer::new();
    let mut opening_key = cipher::clear::Key {};
    let mut payloads = Vec::new();
    for _ in 0..3 {
        cipher::read(&mut reader, &mut buffer, &mut opening_key)
            .await
            .unwrap();
        payloads.push(buffer.packet.slice(5..));
    }
    assert_eq!(&payloads[0][..], b"\x5efirst packet");
    assert_eq!(&payloads[1][..], &[0x5e; 40_000][..]);
    assert_eq!(&payloads[2][..], b"\x5ethird");
    // Small packets are copied out of the chunk the large one is a view of.
    assert_ne!(payloads[0].as_ptr(), payloads[1].as_ptr());
    assert!(!contiguous(&payloads[1], &payloads[2]));
    assert!(
        cipher::read(&mut reader, &mut buffer, &mut opening_key)
            .await
            .is_err(),
        "the stream is at its end"
    );
}

#[test]
fn view_or_copy_shares_what_lies_inside_and_copies_the_rest() {
    let whole = bytes::Bytes::from(b"0123456789".to_vec());
    let inside = view_or_copy(&whole, &whole[2..6]);
    assert_eq!(&inside[..], b"2345");
    assert_eq!(inside.as_ptr(), whole[2..].as_ptr(), "a view, not a copy");

    let elsewhere = b"2345".to_vec();
    let copied = view_or_copy(&whole, &elsewhere);
    assert_eq!(&copied[..], b"2345");
    assert_ne!(copied.as_ptr(), elsewhere.as_ptr());

    assert!(view_or_copy(&whole, &[]).is_empty());
}

#[test]
fn test_write_packet_restores_output_buffer_on_error() {
    let mut writer = PacketWriter::clear();
    writer
        .write_packet(|buf| {
            buf.extend_from_slice(b"ok");
            Ok(())
        })
        .unwrap();
    let before = writer.buffer().buffer.clone();

    let err = writer.write_packet(|buf| {
        buf.extend_from_slice(b"partial");
        Err(Error::Inconsistent)
    });

    assert!(matches!(err, Err(Error::Inconsistent)));
    assert_eq!(writer.buffer().buffer, before);
}

#[cfg(all(test, feature = "flate2"))]
fn zlib_compress() -> Compress {
    let mut compress = Compress::None;
    compression::Compression::Zlib.init_compress(&mut compress);
    compress
}

#[cfg(feature = "flate2")]
#[test]
fn test_write_packet_compressed_matches_clear_cipher_output() {
    let payload = b"abcdefghijklmnoabcdefghijklmno".to_vec();

    let mut expected = SSHBuffer::new();
    let mut clear = cipher::clear::Key {};
    let mut compress = zlib_compress();
    let mut compressed = Vec::new();
    let packet = compress.compress(&payload, &mut compressed).unwrap();
    clear.write(packet, &mut expected);

    let mut writer = PacketWriter::new(Box::new(cipher::clear::Key {}), zlib_compress());
    writer
        .write_packet(|buf| {
            buf.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();

    assert_eq!(writer.buffer().buffer, expected.buffer);
    assert_eq!(writer.buffer().bytes, packet.len());
    assert_eq!(writer.buffer().seqn, Wrapping(1));
}

#[cfg(feature = "flate2")]
#[test]
fn test_packet_retains_plaintext_for_compressed_packets() {
    let payload = b"abcdefghijklmnoabcdefghijklmno".to_vec();

    let mut writer = PacketWriter::new(Box::new(cipher::clear::Key {}), zlib_compress());
    let retained = writer
        .packet(|buf| {
            buf.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();

    assert_eq!(&retained[..], &payload);
}

#[cfg(feature = "flate2")]
#[test]
fn packet_bytes_compressed_matches_packet_output() {
    let payload = b"abcdefghijklmnoabcdefghijklmno".to_vec();

    let mut packet_writer = PacketWriter::new(Box::new(cipher::clear::Key {}), zlib_compress());
    let packet_retained = packet_writer
        .packet(|buf| {
            buf.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();
    let packet_buffer = packet_writer.buffer().buffer.clone();
    let packet_bytes = packet_writer.buffer().bytes;

    let mut packet_bytes_writer =
        PacketWriter::new(Box::new(cipher::clear::Key {}), zlib_compress());
    let bytes_retained = packet_bytes_writer
        .packet_bytes(|buf| {
            buf.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();

    assert_eq!(packet_retained, bytes_retained);
    assert_eq!(packet_bytes_writer.buffer().buffer, packet_buffer);
    assert_eq!(packet_bytes_writer.buffer().bytes, packet_bytes);
}

/// SSH packet read/write buffer. Uses Vec<u8> (not CryptoVec/mlocked) because
/// packet data is not secret material.
#[derive(Debug, Default)]
pub struct SSHBuffer {
    pub buffer: Vec<u8>,
    /// The last packet read: length, padding length, payload (decrypted, padding removed).
    pub packet: bytes::Bytes,
    /// Bytes read from the stream and not yet taken as packets (still encrypted): the head of
    /// a read-ahead chunk that earlier packets are views of.
    pub ahead: bytes::BytesMut,
    /// The size of the last packet read (with length and tag): read-ahead chunks are sized in
    /// whole packets of this size.
    pub last_total: usize,
    pub bytes: usize, // total payload bytes read/written since the last rekey
    // Sequence numbers are on 32 bits and wrap.
    // https://tools.ietf.org/html/rfc4253#section-6.4
    pub seqn: Wrapping<u32>,
}

impl SSHBuffer {
    pub fn new() -> Self {
        SSHBuffer {
            buffer: Vec::new(),
            packet: bytes::Bytes::new(),
            ahead: bytes::BytesMut::new(),
            last_total: 0,
            bytes: 0,
            seqn: Wrapping(0),
        }
    }

    pub fn send_ssh_id(&mut self, id: &SshId) {
        id.write(&mut self.buffer);
    }
}

pub(crate) struct PacketBytesWriter {
    buffer: BytesMut,
}

impl Writer for PacketBytesWriter {
    fn write(&mut self, bytes: &[u8]) -> ssh_encoding::Result<()> {
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }
}

impl PacketBytesWriter {
    #[allow(dead_code)]
    pub(crate) fn push(&mut self, byte: u8) {
        self.buffer.extend_from_slice(&[byte]);
    }

    #[allow(dead_code)]
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    #[allow(dead_code)]
    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    #[allow(dead_code)]
    pub(crate) fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    fn freeze(self) -> Bytes {
        self.buffer.freeze()
    }
}

/// Incoming SSH packet after decryption and optional decompression.
/// A view of the read buffer (not CryptoVec/mlocked) because incoming network data is not secret.
#[derive(Debug)]
pub(crate) struct IncomingSshPacket {
    pub buffer: bytes::Bytes,
    pub seqn: Wrapping<u32>,
}

/// Packet writer for constructing and encrypting outgoing SSH packets.
pub(crate) struct PacketWriter {
    cipher: Box<dyn SealingKey + Send>,
    compress: Compress,
    packet_buffer: Vec<u8>,
    write_buffer: SSHBuffer,
}

impl Debug for PacketWriter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketWriter").finish()
    }
}

impl PacketWriter {
    // SSH packet prefix = packet_length (cipher::PACKET_LENGTH_LEN bytes)
    // + padding_length (1 byte).
    const PACKET_PREFIX_LEN: usize = cipher::PACKET_LENGTH_LEN + 1;

    pub fn clear() -> Self {
        Self::new(Box::new(cipher::clear::Key {}), Compress::None)
    }

    pub fn new(cipher: Box<dyn SealingKey + Send>, compress: Compress) -> Self {
        Self {
            cipher,
            compress,
            packet_buffer: Vec::new(),
            write_buffer: SSHBuffer::new(),
        }
    }

    fn prepare_packet<F: FnOnce(&mut Vec<u8>) -> Result<(), Error>>(
        &mut self,
        f: F,
    ) -> Result<Vec<u8>, Error> {
        let mut buf = std::mem::take(&mut self.packet_buffer);
        buf.clear();
        match f(&mut buf) {
            Ok(()) => Ok(buf),
            Err(err) => {
                self.packet_buffer = buf;
                Err(err)
            }
        }
    }

    fn write_packet_in_place<F: FnOnce(&mut Vec<u8>) -> Result<(), Error>>(
        &mut self,
        f: F,
    ) -> Result<(), Error> {
        self.write_payload_into_output(|buffer, payload_start| {
            f(buffer)?;
            Ok(buffer.len() - payload_start)
        })
    }

    fn write_payload_into_output<F>(&mut self, f: F) -> Result<(), Error>
    where
        F: FnOnce(&mut Vec<u8>, usize) -> Result<usize, Error>,
    {
        let offset = self.write_buffer.buffer.len();
        let payload_start = offset + Self::PACKET_PREFIX_LEN;

        self.write_buffer.buffer.resize(payload_start, 0);
        match f(&mut self.write_buffer.buffer, payload_start) {
            Ok(payload_len) => {
                if payload_len == 0 {
                    self.write_buffer.buffer.truncate(offset);
                    return Ok(());
                }

                if let Some(message_type) = self.write_buffer.buffer.get(payload_start) {
                    debug!("> msg type {message_type:?}, len {payload_len}");
                }

                self.cipher
                    .finish_packet(offset, payload_len, &mut self.write_buffer);
                Ok(())
            }
            Err(err) => {
                self.write_buffer.buffer.truncate(offset);
                Err(err)
            }
        }
    }

    fn write_compressed_payload_into_output(&mut self, buf: &[u8]) -> Result<(), Error> {
        let offset = self.write_buffer.buffer.len();
        let payload_start = offset + Self::PACKET_PREFIX_LEN;

        self.write_buffer.buffer.resize(payload_start, 0);
        match self
            .compress
            .compress_into(buf, &mut self.write_buffer.buffer, payload_start)
        {
            Ok(payload_len) => {
                if payload_len == 0 {
                    self.write_buffer.buffer.truncate(offset);
                    return Ok(());
                }

                self.cipher
                    .finish_packet(offset, payload_len, &mut self.write_buffer);
                Ok(())
            }
            Err(err) => {
                self.write_buffer.buffer.truncate(offset);
                Err(err)
            }
        }
    }

    pub fn packet_raw(&mut self, buf: &[u8]) -> Result<(), Error> {
        if let Some(message_type) = buf.first() {
            debug!("> msg type {message_type:?}, len {}", buf.len());
            if matches!(&self.compress, Compress::None) {
                self.cipher.write(buf, &mut self.write_buffer);
            } else {
                self.write_compressed_payload_into_output(buf)?;
            }
        }
        Ok(())
    }

    /// Sends a packet using the reusable plaintext packet buffer.
    ///
    /// The closure must append only the packet payload bytes. It must not
    /// modify or truncate any existing contents in the provided buffer.
    /// When compression is disabled, the buffer may already contain queued
    /// packets and the reserved 5-byte packet header prefix for the packet
    /// being built, so callers must only write new payload bytes starting at
    /// the current end of the buffer.
    pub fn write_packet<F: FnOnce(&mut Vec<u8>) -> Result<(), Error>>(
        &mut self,
        f: F,
    ) -> Result<(), Error> {
        if matches!(&self.compress, Compress::None) {
            return self.write_packet_in_place(f);
        }
        let buf = self.prepare_packet(f)?;
        let result = self.packet_raw(&buf);
        self.packet_buffer = buf;
        result
    }

    pub(crate) fn reserve_cleartext_packet_output(
        &mut self,
        payload_bytes: usize,
        packet_count: usize,
    ) {
        if !matches!(&self.compress, Compress::None) {
            return;
        }

        // Padding is cipher-dependent and rounded to the cipher block size.
        // Reserving a small fixed margin avoids repeated output-buffer growth
        // without coupling callers to individual cipher padding formulas.
        let per_packet_margin = Self::PACKET_PREFIX_LEN + self.cipher.tag_len() + 32;
        let additional = payload_bytes.saturating_add(packet_count.saturating_mul(per_packet_margin));
        self.write_buffer.buffer.reserve(additional);
    }

    /// Sends and returns the packet contents for callers that need to retain
    /// the plaintext packet after it has been queued for encryption.
    #[allow(dead_code)]
    pub fn packet<F: FnOnce(&mut Vec<u8>) -> Result<(), Error>>(
        &mut self,
        f: F,
    ) -> Result<Bytes, Error> {
        let buf = self.prepare_packet(f)?;
        if let Err(err) = self.packet_raw(&buf) {
            self.packet_buffer = buf;
            return Err(err);
        }
        Ok(Bytes::from(buf))
    }

    pub(crate) fn packet_bytes<F>(&mut self, f: F) -> Result<Bytes, Error>
    where
        F: FnOnce(&mut PacketBytesWriter) -> Result<(), Error>,
    {
        let mut buf = PacketBytesWriter {
            buffer: BytesMut::new(),
        };
        f(&mut buf)?;
        let packet = buf.freeze();
        self.packet_raw(packet.as_ref())?;
        Ok(packet)
    }

    pub fn buffer(&mut self) -> &mut SSHBuffer {
        &mut self.write_buffer
    }

    /// Payload bytes written since the current cipher was installed.
    pub fn bytes_written(&self) -> usize {
        self.write_buffer.bytes
    }

    pub fn compress(&mut self) -> &mut Compress {
        &mut self.compress
    }

    pub fn set_cipher(&mut self, cipher: Box<dyn SealingKey + Send>) {
        self.cipher = cipher;
        // Every cipher installation starts a new key epoch. In particular,
        // discard the cleartext KEX packets counted before the initial keys
        // were installed as well as the previous encrypted epoch on rekey.
        self.write_buffer.bytes = 0;
    }

    pub fn reset_seqn(&mut self) {
        self.write_buffer.seqn = Wrapping(0);
    }

    pub async fn flush_into<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        if !self.write_buffer.buffer.is_empty() {
            w.write_all(&self.write_buffer.buffer).await?;
            w.flush().await?;
            self.write_buffer.buffer.clear();
        }
        Ok(())
    }
}

/// `part` as a view of `whole` when it lies inside it (no copy), or else a copy.
pub(crate) fn view_or_copy(whole: &bytes::Bytes, part: &[u8]) -> bytes::Bytes {
    let w = whole.as_ptr_range();
    let p = part.as_ptr_range();
    if !part.is_empty() && w.start <= p.start && p.end <= w.end {
        whole.slice_ref(part)
    } else {
        bytes::Bytes::copy_from_slice(part)
    }
}

/// An `AsyncRead` over a byte string that returns at most `limits[i % len]` bytes on its i-th
/// read and counts the reads that returned data.
#[cfg(test)]
struct CountingReader {
    data: Vec<u8>,
    at: usize,
    limits: Vec<usize>,
    reads: usize,
}

#[cfg(test)]
impl tokio::io::AsyncRead for CountingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let limit = self.limits[self.reads % self.limits.len()];
        let n = limit.min(buf.remaining()).min(self.data.len() - self.at);
        if n > 0 {
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            self.reads += 1;
        }
        std::task::Poll::Ready(Ok(()))
    }
}

/// `b` starts where `a` ends, packet framing apart: both are views of one read-ahead chunk.
#[cfg(test)]
fn contiguous(a: &[u8], b: &[u8]) -> bool {
    // What lies between two payloads: the first one's padding (4 to 11 bytes with the clear
    // cipher's 8-byte blocks), the second one's length and padding length. Two chunks that the
    // allocator placed back to back have its bookkeeping (16 bytes or more) between them too.
    let gap = (b.as_ptr() as usize).wrapping_sub(a.as_ptr() as usize + a.len());
    (4 + 5..=11 + 5).contains(&gap)
}

#[cfg(test)]
fn encode(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = PacketWriter::clear();
    for p in payloads {
        writer.packet_raw(p).unwrap();
    }
    writer.buffer().buffer.clone()
}

#[cfg(test)]
async fn read_all(reader: &mut CountingReader, count: usize) -> Vec<Bytes> {
    let mut buffer = SSHBuffer::new();
    let mut opening_key = cipher::clear::Key {};
    let mut out = Vec::new();
    for _ in 0..count {
        cipher::read(reader, &mut buffer, &mut opening_key)
            .await
            .unwrap();
        out.push(buffer.packet.slice(5..));
    }
    // The stream is consumed: nothing is left read ahead, and no more than one chunk is held.
    assert!(buffer.ahead.is_empty());
    assert!(buffer.ahead.capacity() <= 128 * 1024);
    assert!(
        cipher::read(reader, &mut buffer, &mut opening_key)
            .await
            .is_err(),
        "the stream is at its end"
    );
    out
}

#[cfg(test)]
#[tokio::test]
async fn one_read_serves_several_large_packets() {
    let payloads: Vec<Vec<u8>> = (0..32u8).map(|i| vec![i; 32 * 1024]).collect();
    let mut reader = CountingReader {
        data: encode(&payloads),
        at: 0,
        limits: vec![usize::MAX],
        reads: 0,
    };
    let got = read_all(&mut reader, payloads.len()).await;
    assert_eq!(got, payloads);
    // Two reads per packet without read-ahead (its first block, then the rest): 64 here. With
    // 128 KiB chunks about four packets share a read, plus one first block per chunk.
    assert!(reader.reads <= 20, "{} reads for 32 packets", reader.reads);
    assert!(got.windows(2).any(|w| contiguous(&w[0], &w[1])));
}

#[cfg(test)]
#[tokio::test]
async fn packets_of_any_size_come_through_whole_however_the_stream_is_split() {
    // xorshift: sizes from 0 to 200 000 bytes (small ones copied, large ones viewed, some larger
    // than a chunk), read in pieces from 1 byte to more than a chunk.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % m) as usize
    };
    let payloads: Vec<Vec<u8>> = (0..200)
        .map(|i| {
            let len = match i % 4 {
                0 => next(64),
                1 => next(5000),
                2 => next(100_000),
                _ => next(200_000),
            };
            (0..len).map(|j| (i * 7 + j) as u8).collect()
        })
        .map(|mut p: Vec<u8>| {
            p.insert(0, 0x5e);
            p
        })
        .collect();
    let limits: Vec<usize> = (0..97).map(|_| 1 + next(200_000)).collect();
    let mut reader = CountingReader {
        data: encode(&payloads),
        at: 0,
        limits,
        reads: 0,
    };
    let got = read_all(&mut reader, payloads.len()).await;
    assert_eq!(got.len(), payloads.len());
    for (i, (g, p)) in got.iter().zip(&payloads).enumerate() {
        assert_eq!(&g[..], &p[..], "packet {i}");
    }
}

#[cfg(test)]
#[tokio::test]
async fn a_small_packet_after_large_ones_is_copied_out_of_their_chunk() {
    let payloads = vec![vec![1; 40_000], b"\x5esmall".to_vec(), vec![2; 40_000]];
    let mut reader = CountingReader {
        data: encode(&payloads),
        at: 0,
        limits: vec![usize::MAX],
        reads: 0,
    };
    let got = read_all(&mut reader, 3).await;
    assert_eq!(got, payloads);
    // The small one sits elsewhere; the large ones before and after it share one chunk.
    assert!(!contiguous(&got[0], &got[1]));
    let (a, c) = (got[0].as_ptr() as usize, got[2].as_ptr() as usize);
    assert!(c > a && c - a < 128 * 1024, "one chunk holds both large packets");
}

#[cfg(test)]
#[tokio::test]
async fn chunks_of_an_upload_hold_whole_packets() {
    let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 32 * 1024]).collect();
    let data = encode(&payloads);
    // Equal payloads, equal packets. Each read returns one packet, as a socket does when the
    // client's writes are read as they come.
    let total = data.len() / payloads.len();
    let mut reader = CountingReader {
        data,
        at: 0,
        limits: vec![total],
        reads: 0,
    };
    let got = read_all(&mut reader, payloads.len()).await;
    assert_eq!(got, payloads);
    // Where a packet does not follow the one before in memory, a chunk begins: every
    // `per_chunk` packets, each chunk holding only whole ones.
    let per_chunk = crate::cipher::READ_AHEAD / total;
    let starts: Vec<usize> = (1..got.len())
        .filter(|&i| !contiguous(&got[i - 1], &got[i]))
        .collect();
    assert!(starts.len() >= 3, "chunk starts at {starts:?}");
    for w in starts.windows(2) {
        assert_eq!(w[1] - w[0], per_chunk, "chunk starts at {starts:?}");
    }
}

#[cfg(test)]
#[tokio::test]
async fn a_fresh_chunk_ends_where_a_packet_does() {
    let stream = vec![7u8; 3 * crate::cipher::READ_AHEAD];
    for packet in [1000, 32_789, 70_000, crate::cipher::READ_AHEAD + 1] {
        let mut reader = &stream[..];
        let mut ahead = BytesMut::new();
        // The first block of the next packet, in a stream of `packet`-byte ones.
        crate::cipher::fill(&mut reader, &mut ahead, 16, packet)
            .await
            .unwrap();
        assert_eq!(ahead.capacity() % packet, 0, "packets of {packet} bytes");
        assert!(ahead.capacity() >= packet.min(crate::cipher::READ_AHEAD / 2));
        assert!(ahead.capacity() <= crate::cipher::READ_AHEAD.max(packet));
        // The head of a packet that does not fit moves to a chunk that starts with it.
        let have = ahead.len();
        let _ = ahead.split_to(have - 10);
        crate::cipher::fill(&mut reader, &mut ahead, packet, packet)
            .await
            .unwrap();
        assert_eq!(ahead.capacity() % packet, 0, "packets of {packet} bytes");
        assert!(ahead.len() >= packet);
        // Nothing known yet: a chunk of the default size.
        let mut ahead = BytesMut::new();
        crate::cipher::fill(&mut reader, &mut ahead, 16, 0)
            .await
            .unwrap();
        assert_eq!(ahead.capacity(), crate::cipher::READ_AHEAD);
    }
}
