//! The request loop of one SFTP channel: cuts packets out of the channel data ([`Inbox`]),
//! answers each through the [`Handler`], one at a time and in order, and sends the replies
//! packed into whole channel packets ([`Outbox`]).
//!
//! This replaces `russh_sftp::server::run`, which reads through a byte stream and decodes
//! WRITE data with serde: three copies and a zero-fill of every uploaded byte where this loop
//! makes one. Decoding of the other requests and the handler trait stay russh-sftp's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelWriteHalf};
use russh_sftp::protocol::{Init, Packet, Status, StatusCode};
use russh_sftp::server::{Handler, StatusReply};

use super::framing::{FramingError, Inbox, Request};
use super::handler::SftpSession;
use super::inflow::{CloseOnDrop, Inflow};
use super::outbox::Outbox;
use crate::frontend::killswitch::KillSwitch;

/// `SSH_FXP_INIT`, the one request without a request id (its version sits there).
const SSH_FXP_INIT: u8 = 1;

/// How a channel's loop gives up on a client that stalls it.
#[derive(Clone)]
pub struct Stall {
    /// Thrown when the connection ends (or is ended): the loop stops at once.
    pub kill: Arc<KillSwitch>,
    /// How long one reply may wait for the client to take it (its window, our socket).
    pub reply_timeout: Duration,
}

/// Serves SFTP on `channel` until the client sends EOF, closes it, or breaks the framing, or
/// the connection ends. Dropping the handler at the end aborts every upload the client did not
/// close. A reply the client does not take within `stall.reply_timeout` ends the connection:
/// a client that pipelines requests and never reads the replies must not hold its session,
/// its uploads or the memory queued for it.
pub async fn serve(
    channel: russh::Channel<Msg>,
    mut handler: SftpSession,
    max_packet: u32,
    stall: Stall,
    inflow: Arc<Inflow>,
) {
    // Returning drops `rx`: russh's session task, if it waits to hand us data, goes on; and
    // gives back what the channel's data held of the memory budget.
    let _inflow = CloseOnDrop(inflow.clone());
    let (mut rx, tx) = channel.split();
    // Bytes of the last channel message, consumed once its requests are answered.
    let mut pushed = 0;
    let mut inbox = Inbox::new(max_packet);
    let mut outbox = Outbox::new(tx.writable_packet_size().await);
    loop {
        loop {
            match inbox.next_request() {
                Ok(None) => break,
                Ok(Some(request)) => answer(request, &mut handler, &mut outbox).await,
                Err(e) if !e.is_fatal() => {
                    tracing::info!(error = %e, "bad SFTP request");
                    let id = match e {
                        FramingError::MalformedWrite { id, .. } => id,
                        _ => 0,
                    };
                    outbox.push(&encode(status(
                        id,
                        StatusCode::BadMessage.with_message(e.to_string()),
                    )));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SFTP framing broken; closing the channel");
                    if let Some(rest) = outbox.rest() {
                        send(&tx, rest, &stall).await;
                    }
                    let _ = tx.close().await;
                    return;
                }
            }
            if let Some(packets) = outbox.full_packets()
                && !send(&tx, packets, &stall).await
            {
                return;
            }
        }
        // What is left of it in the inbox is at most a part of one request.
        inflow.consumed(std::mem::take(&mut pushed));
        // Where a DATA reply's tail waits, what the client has already sent is answered
        // before it goes: a pipelining client's READs arrive one channel message each, and
        // flushing after every one would split each reply in two again.
        let ready = if outbox.ends_in_data() {
            rx.wait().now_or_never()
        } else {
            None
        };
        let msg = match ready {
            Some(msg) => msg,
            None => {
                // Nothing more to answer until the client sends: what waits goes now.
                if let Some(rest) = outbox.rest()
                    && !send(&tx, rest, &stall).await
                {
                    return;
                }
                tokio::select! {
                    m = rx.wait() => m,
                    _ = stall.kill.killed() => {
                        tracing::debug!(reason = stall.kill.reason(), "connection ended; SFTP channel stops");
                        return;
                    }
                }
            }
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                pushed = data.len();
                inbox.push(data);
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    if inbox.buffered() > 0 {
        tracing::debug!(
            bytes = inbox.buffered(),
            "SFTP channel ended inside a packet"
        );
    }
    tracing::debug!("SFTP channel ended");
}

/// Sends one reply; `false` if the loop must stop (channel gone, connection ended, or the
/// client left the reply untaken past the deadline, which ends the connection).
async fn send(tx: &ChannelWriteHalf<Msg>, reply: Bytes, stall: &Stall) -> bool {
    tokio::select! {
        r = tokio::time::timeout(stall.reply_timeout, tx.data_bytes(reply)) => match r {
            Ok(Ok(())) => true,
            Ok(Err(_)) => {
                tracing::debug!("SFTP channel gone while replying");
                false
            }
            Err(_) => {
                tracing::warn!(
                    timeout_secs = stall.reply_timeout.as_secs(),
                    "client has not taken a reply within [limits] reply_timeout_secs: closing \
                     the connection and aborting its open uploads"
                );
                stall.kill.kill("the client stopped reading replies");
                false
            }
        },
        _ = stall.kill.killed() => false,
    }
}

fn status(id: u32, reply: StatusReply) -> Packet {
    let StatusReply {
        status_code,
        error_message,
        language_tag,
    } = reply;
    Packet::Status(Status {
        id,
        status_code,
        error_message: error_message.unwrap_or_else(|| status_code.to_string()),
        language_tag: language_tag.unwrap_or_else(|| "en-US".to_string()),
    })
}

fn encode(packet: Packet) -> Bytes {
    match Bytes::try_from(packet) {
        Ok(b) => b,
        // Serialising our own reply cannot fail short of a bug; the client still gets an
        // answer to its request instead of waiting forever.
        Err(e) => {
            tracing::error!(error = %e, "encoding an SFTP reply failed");
            Bytes::try_from(status(
                0,
                StatusCode::Failure.with_message("internal error encoding the reply"),
            ))
            .unwrap_or_default()
        }
    }
}

/// Runs one handler call; `Err` becomes an `SSH_FXP_STATUS` for the same request.
macro_rules! call {
    ($id:expr, $handler:expr, $method:ident ( $($arg:expr),* )) => {
        match $handler.$method($($arg),*).await {
            Ok(reply) => encode(reply.into()),
            Err(e) => encode(status($id, e)),
        }
    };
}

/// A request russh-sftp's decoder could not read.
#[derive(Debug, thiserror::Error)]
#[error("SFTP request of type {kind} {what}")]
struct Undecodable {
    kind: u8,
    /// The request id, as far as it could be read (0 if not).
    id: u32,
    unknown_type: bool,
    what: String,
}

impl Undecodable {
    fn reply(&self) -> StatusReply {
        let code = if self.unknown_type {
            StatusCode::OpUnsupported
        } else {
            StatusCode::BadMessage
        };
        code.with_message(self.to_string())
    }
}

/// Decodes a request other than WRITE (type byte and payload) as OpenSSH's sftp-server reads
/// it: fields in order, and bytes after the last field skipped. russh-sftp's decoder already
/// ignores them for every request but INIT, whose trailing extension pairs it reads up to the
/// end of the packet; OpenSSH reads only the version there, so we fall back to that. EXTENDED
/// keeps the rest of the packet as the extension's data, which is what the protocol says.
fn decode(body: &mut Bytes) -> Result<Packet, Undecodable> {
    let kind = body.first().copied().unwrap_or(0);
    // The request id follows the type byte in every request but INIT.
    let id = body
        .get(1..5)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let whole = body.len();
    match Packet::try_from(body) {
        Ok(p) => Ok(p),
        Err(_) if kind == SSH_FXP_INIT && whole >= 5 => Ok(Packet::Init(Init {
            version: id,
            extensions: Default::default(),
        })),
        // Types 1-20 and 200 are the requests of version 3 (VERSION, 2, is a reply).
        Err(_) if !matches!(kind, 1 | 3..=20 | 200) => Err(Undecodable {
            kind,
            id,
            unknown_type: true,
            what: "is not supported".into(),
        }),
        Err(e) => Err(Undecodable {
            kind,
            id: if kind == SSH_FXP_INIT { 0 } else { id },
            unknown_type: false,
            what: format!("could not be decoded: {e}"),
        }),
    }
}

/// Answers one request into `out`.
async fn answer(request: Request, handler: &mut SftpSession, out: &mut Outbox) {
    if let Some(reply) = reply_to(request, handler, out).await {
        out.push(&reply);
    }
}

/// The encoded reply to one request; `None` when it was encoded into `out` already (a READ's
/// data goes there straight from the opened segment).
async fn reply_to(request: Request, handler: &mut SftpSession, out: &mut Outbox) -> Option<Bytes> {
    let mut body = match request {
        Request::Write {
            id,
            handle,
            offset,
            data,
        } => {
            let pieces: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
            return Some(call!(
                id,
                handler,
                write_pieces(id, &handle, offset, &pieces)
            ));
        }
        Request::Other(body) => body,
    };
    let kind = body.first().copied().unwrap_or(0);
    let packet = match decode(&mut body) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(kind = e.kind, id = e.id, error = %e, "undecodable SFTP request");
            return Some(encode(status(e.id, e.reply())));
        }
    };
    let id = packet.get_request_id();
    Some(match packet {
        Packet::Init(p) => call!(0, handler, init(p.version, p.extensions)),
        Packet::Open(p) => call!(p.id, handler, open(p.id, p.filename, p.pflags, p.attrs)),
        Packet::Close(p) => call!(p.id, handler, close(p.id, p.handle)),
        Packet::Read(p) => match handler
            .read_into(p.id, &p.handle, p.offset, p.len, out)
            .await
        {
            Ok(()) => return None,
            Err(e) => encode(status(p.id, e)),
        },
        // A WRITE the framing did not take (it takes them all); decoded the slow way.
        Packet::Write(p) => call!(p.id, handler, write(p.id, p.handle, p.offset, p.data)),
        Packet::Lstat(p) => call!(p.id, handler, lstat(p.id, p.path)),
        Packet::Fstat(p) => call!(p.id, handler, fstat(p.id, p.handle)),
        Packet::SetStat(p) => call!(p.id, handler, setstat(p.id, p.path, p.attrs)),
        Packet::FSetStat(p) => call!(p.id, handler, fsetstat(p.id, p.handle, p.attrs)),
        Packet::OpenDir(p) => call!(p.id, handler, opendir(p.id, p.path)),
        Packet::ReadDir(p) => call!(p.id, handler, readdir(p.id, p.handle)),
        Packet::Remove(p) => call!(p.id, handler, remove(p.id, p.filename)),
        Packet::MkDir(p) => call!(p.id, handler, mkdir(p.id, p.path, p.attrs)),
        Packet::RmDir(p) => call!(p.id, handler, rmdir(p.id, p.path)),
        Packet::RealPath(p) => call!(p.id, handler, realpath(p.id, p.path)),
        Packet::Stat(p) => call!(p.id, handler, stat(p.id, p.path)),
        Packet::Rename(p) => call!(p.id, handler, rename(p.id, p.oldpath, p.newpath)),
        Packet::ReadLink(p) => call!(p.id, handler, readlink(p.id, p.path)),
        Packet::Symlink(p) => call!(p.id, handler, symlink(p.id, p.linkpath, p.targetpath)),
        Packet::Extended(p) => call!(p.id, handler, extended(p.id, p.request, p.data)),
        // Replies (VERSION, STATUS, DATA, ...) are not requests.
        _ => encode(status(
            id,
            StatusCode::BadMessage.with_message(format!(
                "SFTP packet of type {kind} is a reply, not a request"
            )),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::*;

    fn attrs() -> FileAttributes {
        FileAttributes {
            size: Some(7),
            permissions: Some(0o640),
            atime: Some(1),
            mtime: Some(2),
            ..Default::default()
        }
    }

    /// One of every request of version 3 but WRITE (the framing takes those), with
    /// non-default fields.
    fn requests() -> Vec<Packet> {
        let s = |v: &str| v.to_string();
        let mut init_ext = std::collections::HashMap::new();
        init_ext.insert(s("x@example.com"), s("1"));
        vec![
            Packet::Init(Init {
                version: 3,
                extensions: Default::default(),
            }),
            Packet::Init(Init {
                version: 3,
                extensions: init_ext,
            }),
            Packet::Open(Open {
                id: 11,
                filename: s("/a/b.bin"),
                pflags: OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                attrs: attrs(),
            }),
            Packet::Close(Close {
                id: 12,
                handle: s("h1"),
            }),
            Packet::Read(Read {
                id: 13,
                handle: s("h1"),
                offset: 1 << 40,
                len: 32768,
            }),
            Packet::Lstat(Lstat {
                id: 14,
                path: s("/l"),
            }),
            Packet::Fstat(Fstat {
                id: 15,
                handle: s("h2"),
            }),
            Packet::SetStat(SetStat {
                id: 16,
                path: s("/s"),
                attrs: attrs(),
            }),
            Packet::FSetStat(FSetStat {
                id: 17,
                handle: s("h3"),
                attrs: attrs(),
            }),
            Packet::OpenDir(OpenDir {
                id: 18,
                path: s("/d"),
            }),
            Packet::ReadDir(ReadDir {
                id: 19,
                handle: s("h4"),
            }),
            Packet::Remove(Remove {
                id: 20,
                filename: s("/r"),
            }),
            Packet::MkDir(MkDir {
                id: 21,
                path: s("/m"),
                attrs: attrs(),
            }),
            Packet::RmDir(RmDir {
                id: 22,
                path: s("/m"),
            }),
            Packet::RealPath(RealPath {
                id: 23,
                path: s("."),
            }),
            Packet::Stat(Stat {
                id: 24,
                path: s("/st"),
            }),
            Packet::Rename(Rename {
                id: 25,
                oldpath: s("/o"),
                newpath: s("/n"),
            }),
            Packet::ReadLink(ReadLink {
                id: 26,
                path: s("/rl"),
            }),
            Packet::Symlink(Symlink {
                id: 27,
                linkpath: s("/sl"),
                targetpath: s("/t"),
            }),
        ]
    }

    /// Type byte and payload, as the framing hands them over.
    fn body(p: Packet) -> Bytes {
        Bytes::try_from(p).unwrap().slice(4..)
    }

    #[test]
    fn every_request_decodes_the_same_with_bytes_after_its_last_field() {
        // Junk that is no valid continuation: a partial length, a huge length, a byte.
        let trailers: [&[u8]; 4] = [&[0], &[0, 0, 1], &[0xff, 0xff, 0xff, 0xff, 9, 9], &[0; 40]];
        for p in requests() {
            let plain = body(p);
            let want = format!("{:?}", decode(&mut plain.clone()).unwrap());
            for t in trailers {
                let mut long = plain.to_vec();
                long.extend_from_slice(t);
                let got = decode(&mut Bytes::from(long.clone()))
                    .unwrap_or_else(|e| panic!("{plain:?} + {t:?}: {e}"));
                let got = format!("{got:?}");
                // INIT's extension pairs cannot be told from junk after them; OpenSSH ignores
                // both, and so does our handler.
                if plain[0] == SSH_FXP_INIT {
                    assert!(got.starts_with("Init(Init { version: 3"), "{got}");
                } else {
                    assert_eq!(got, want, "{t:?} after {want}");
                }
            }
        }
    }

    #[test]
    fn extended_keeps_the_rest_of_the_packet_as_its_data() {
        let mut b = body(Packet::Extended(Extended {
            id: 9,
            request: "limits@openssh.com".into(),
            data: vec![1, 2, 3],
        }));
        let Ok(Packet::Extended(e)) = decode(&mut b) else {
            panic!("extended")
        };
        assert_eq!(
            (e.id, e.request.as_str(), e.data),
            (9, "limits@openssh.com", vec![1, 2, 3])
        );
    }

    #[test]
    fn truncated_and_unknown_requests_are_refused_precisely() {
        // OPEN cut inside its file name: BAD_MESSAGE with the request id.
        let open = body(requests().swap_remove(2));
        let e = decode(&mut open.slice(..12)).unwrap_err();
        assert_eq!((e.kind, e.id, e.unknown_type), (3, 11, false));
        assert!(e.to_string().contains("type 3 could not be decoded"), "{e}");
        let e = decode(&mut Bytes::from_static(&[99, 0, 0, 0, 5])).unwrap_err();
        assert_eq!((e.kind, e.id, e.unknown_type), (99, 5, true));
        assert_eq!(e.to_string(), "SFTP request of type 99 is not supported");
        // An INIT without a version.
        let e = decode(&mut Bytes::from_static(&[1, 0, 0])).unwrap_err();
        assert_eq!((e.kind, e.id), (1, 0));
    }
}
