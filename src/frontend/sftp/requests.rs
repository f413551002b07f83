//! The request loop of one SFTP channel: cuts packets out of the channel data ([`Inbox`]),
//! answers each through the [`Handler`], one at a time and in order, and sends the reply as
//! owned bytes (russh slices them into channel packets without another copy).
//!
//! This replaces `russh_sftp::server::run`, which reads through a byte stream and decodes
//! WRITE data with serde: three copies and a zero-fill of every uploaded byte where this loop
//! makes one. Decoding of the other requests and the handler trait stay russh-sftp's.

use bytes::Bytes;
use russh::ChannelMsg;
use russh::server::Msg;
use russh_sftp::protocol::{Packet, Status, StatusCode};
use russh_sftp::server::{Handler, StatusReply};

use super::framing::{FramingError, Inbox, Request, data_reply};
use super::handler::SftpSession;

/// Serves SFTP on `channel` until the client sends EOF, closes it, or breaks the framing.
/// Dropping the handler at the end aborts every upload the client did not close.
pub async fn serve(mut channel: russh::Channel<Msg>, mut handler: SftpSession, max_packet: u32) {
    let mut inbox = Inbox::new(max_packet);
    loop {
        loop {
            let reply = match inbox.next_request() {
                Ok(None) => break,
                Ok(Some(request)) => answer(request, &mut handler).await,
                Err(e) if !e.is_fatal() => {
                    tracing::info!(error = %e, "bad SFTP request");
                    let id = match e {
                        FramingError::MalformedWrite { id, .. } => id,
                        _ => 0,
                    };
                    encode(status(
                        id,
                        StatusCode::BadMessage.with_message(e.to_string()),
                    ))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SFTP framing broken; closing the channel");
                    let _ = channel.close().await;
                    return;
                }
            };
            if channel.data_bytes(reply).await.is_err() {
                tracing::debug!("SFTP channel gone while replying");
                return;
            }
        }
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => inbox.push(data),
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

async fn answer(request: Request, handler: &mut SftpSession) -> Bytes {
    let mut body = match request {
        Request::Write {
            id,
            handle,
            offset,
            data,
        } => {
            let pieces: Vec<&[u8]> = data.iter().map(|b| &b[..]).collect();
            return call!(id, handler, write_pieces(id, &handle, offset, &pieces));
        }
        Request::Other(body) => body,
    };
    let kind = body.first().copied().unwrap_or(0);
    // The request id follows the type byte in every request but INIT.
    let id = body
        .get(1..5)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let packet = match Packet::try_from(&mut body) {
        Ok(p) => p,
        // Types 1-20 and 200 are the requests of version 3 (VERSION, 2, is a reply).
        Err(_) if !matches!(kind, 1 | 3..=20 | 200) => {
            tracing::info!(kind, id, "unknown SFTP request type");
            return encode(status(
                id,
                StatusCode::OpUnsupported
                    .with_message(format!("SFTP request type {kind} is not supported")),
            ));
        }
        Err(e) => {
            tracing::info!(kind, id, error = %e, "undecodable SFTP request");
            return encode(status(
                id,
                StatusCode::BadMessage.with_message(format!(
                    "SFTP request of type {kind} could not be decoded: {e}"
                )),
            ));
        }
    };
    match packet {
        Packet::Init(p) => call!(0, handler, init(p.version, p.extensions)),
        Packet::Open(p) => call!(p.id, handler, open(p.id, p.filename, p.pflags, p.attrs)),
        Packet::Close(p) => call!(p.id, handler, close(p.id, p.handle)),
        Packet::Read(p) => match handler.read(p.id, p.handle, p.offset, p.len).await {
            Ok(d) => data_reply(d.id, &d.data),
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
    }
}
