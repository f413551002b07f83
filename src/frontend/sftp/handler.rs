//! The SFTP request handler for one authenticated session. The request loop (`requests.rs`)
//! answers requests one at a time, so nothing slow happens inline: WRITE copies into the part
//! buffer (sealing a full one) and hands sealed parts to the storage task, CLOSE awaits the
//! commit, and READ decrypts only the segments asked for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status,
    StatusCode, Version,
};
use russh_sftp::server::StatusReply;

use super::outbox::Outbox;
use crate::transfer::upload::Chunk;
use crate::transfer::{
    DirListing, DownloadHandle, FileInfo, Gateway, HandlePermit, Principal, TransferError,
    UploadHandle, VirtualPath, WriteMode,
};

/// The largest SFTP packet we accept (what OpenSSH's sftp-server advertises).
pub const MAX_PACKET_LEN: u32 = 256 * 1024;
/// Read/write length advertised in `limits@openssh.com`. Clients keep up to 64 requests in
/// flight, so this sets how much data one upload can have queued in the gateway: at OpenSSH's
/// 255 KiB that was 16 MiB per upload, and a 1 GiB upload to S3 peaked at 103–136 MiB RSS; at
/// 64 KiB it peaked at 81–83 MiB, with the same CPU per GiB and throughput (docs/benchmarks.md).
pub const MAX_READ_WRITE_LEN: u64 = 64 * 1024;

/// Entries per READDIR reply, as OpenSSH's sftp-server sends them.
const READDIR_ENTRIES: usize = 100;
/// Name bytes per READDIR reply: each entry carries its name twice (name and long name) plus
/// about 100 bytes, so a reply stays near 75 KiB, far below the 256 KiB clients accept.
const READDIR_NAME_BYTES: usize = 32 * 1024;

const NO_LINKS: &str = "links are not supported: eugate stores only regular files and directories";

enum OpenItem {
    Upload(UploadHandle),
    Download(Box<DownloadHandle>),
    Dir(DirListing),
}

/// An open handle and the slot it holds in the per-user and process-wide handle counts.
struct Open {
    item: OpenItem,
    _slot: HandlePermit,
}

pub struct SftpSession {
    gateway: Arc<Gateway>,
    who: Principal,
    handles: HashMap<String, Open>,
    counter: u64,
    max_handles: usize,
}

impl SftpSession {
    pub fn new(gateway: Arc<Gateway>, who: Principal, max_handles: usize) -> SftpSession {
        SftpSession {
            gateway,
            who,
            handles: HashMap::new(),
            counter: 0,
            max_handles,
        }
    }

    /// WRITE with its data in pieces, joined: slices of the received channel messages (see
    /// `framing`), not copied.
    pub async fn write_pieces(
        &mut self,
        id: u32,
        handle: &str,
        offset: u64,
        pieces: &[&[u8]],
    ) -> Result<Status, StatusReply> {
        match self.item_mut(handle) {
            Some(OpenItem::Upload(u)) => {
                u.write_pieces(offset, pieces).await.map_err(reply)?;
                Ok(ok(id))
            }
            Some(_) => Err(StatusCode::Failure.with_message("handle is not open for writing")),
            None => Err(bad_handle()),
        }
    }

    /// READ, its `SSH_FXP_DATA` reply encoded straight into `out` (the plaintext is copied once,
    /// from the opened segment). On `Err` nothing was added: the caller sends the STATUS.
    pub async fn read_into(
        &mut self,
        id: u32,
        handle: &str,
        offset: u64,
        len: u32,
        out: &mut Outbox,
    ) -> Result<(), StatusReply> {
        let d = match self.item_mut(handle) {
            Some(OpenItem::Download(d)) => d,
            Some(_) => {
                return Err(StatusCode::Failure.with_message("handle is not open for reading"));
            }
            None => return Err(bad_handle()),
        };
        let len = len.min(MAX_READ_WRITE_LEN as u32);
        if offset >= d.len() {
            return Err(StatusCode::Eof.into());
        }
        let mark = out.start_data(id, d.available(offset, len));
        let whole = match d.read_into(offset, len, out.data()).await {
            // `finish_data` takes a reply of the wrong length back.
            Ok(Some(_)) => out.finish_data(mark),
            Ok(None) => {
                out.abandon(mark);
                false
            }
            Err(e) => {
                out.abandon(mark);
                return Err(reply(e));
            }
        };
        if whole {
            Ok(())
        } else {
            Err(StatusCode::Failure.with_message("damaged object: a read came out short"))
        }
    }

    fn item(&self, handle: &str) -> Option<&OpenItem> {
        self.handles.get(handle).map(|o| &o.item)
    }

    fn item_mut(&mut self, handle: &str) -> Option<&mut OpenItem> {
        self.handles.get_mut(handle).map(|o| &mut o.item)
    }

    /// A slot for one more handle, taken before anything is opened: this session's cap, then
    /// the user's (all sessions) and the gateway's.
    fn slot(&self) -> Result<HandlePermit, StatusReply> {
        if self.handles.len() >= self.max_handles {
            return Err(StatusCode::Failure.with_message(format!(
                "too many open handles in this session (limit {}, server.max_open_handles); close some first",
                self.max_handles
            )));
        }
        self.gateway.open_handle(&self.who).map_err(reply)
    }

    fn insert(&mut self, item: OpenItem, slot: HandlePermit) -> String {
        self.counter += 1;
        let h = format!("h{}", self.counter);
        self.handles.insert(h.clone(), Open { item, _slot: slot });
        h
    }
}

fn path(raw: &str) -> Result<VirtualPath, StatusReply> {
    VirtualPath::parse(raw).map_err(|e| StatusCode::PermissionDenied.with_message(e.to_string()))
}

fn reply(e: TransferError) -> StatusReply {
    let code = match &e {
        TransferError::NotFound(_) => StatusCode::NoSuchFile,
        TransferError::PermissionDenied(_) => StatusCode::PermissionDenied,
        TransferError::Unsupported(_) => StatusCode::OpUnsupported,
        TransferError::Failure(_) => StatusCode::Failure,
    };
    tracing::debug!(code = ?code, message = %e, "request refused");
    code.with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".to_string(),
        language_tag: "en-US".to_string(),
    }
}

fn bad_handle() -> StatusReply {
    StatusCode::Failure.with_message("unknown handle")
}

fn attrs(info: &FileInfo) -> FileAttributes {
    let mtime = info
        .modified
        .duration_since(UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    let mut a = FileAttributes {
        size: Some(info.size),
        uid: Some(0),
        gid: Some(0),
        permissions: Some(if info.is_dir { 0o700 } else { 0o600 }),
        atime: Some(mtime),
        mtime: Some(mtime),
        ..Default::default()
    };
    if info.is_dir {
        a.set_dir(true);
    } else {
        a.set_regular(true);
    }
    a
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.with_message("operation not supported by eugate")
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        let mut v = Version::new();
        v.extensions
            .insert(russh_sftp::extensions::LIMITS.to_string(), "1".to_string());
        Ok(v)
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        _data: Vec<u8>,
    ) -> Result<Packet, Self::Error> {
        match request.as_str() {
            russh_sftp::extensions::LIMITS => {
                let limits = russh_sftp::extensions::LimitsExtension {
                    max_packet_len: u64::from(MAX_PACKET_LEN),
                    max_read_len: MAX_READ_WRITE_LEN,
                    max_write_len: MAX_READ_WRITE_LEN,
                    max_open_handles: self.max_handles as u64,
                };
                let data = russh_sftp::ser::to_bytes(&limits)
                    .map_err(|_| StatusCode::Failure.with_message("encoding limits"))?;
                Ok(Packet::ExtendedReply(ExtendedReply {
                    id,
                    data: data.to_vec(),
                }))
            }
            russh_sftp::extensions::HARDLINK => {
                Err(StatusCode::OpUnsupported.with_message(NO_LINKS))
            }
            other => Err(StatusCode::OpUnsupported
                .with_message(format!("extension {other} is not supported by eugate"))),
        }
    }

    async fn realpath(&mut self, id: u32, raw: String) -> Result<Name, Self::Error> {
        let p = path(&raw)?;
        Ok(Name {
            id,
            files: vec![File::dummy(p.to_string())],
        })
    }

    async fn stat(&mut self, id: u32, raw: String) -> Result<Attrs, Self::Error> {
        let p = path(&raw)?;
        let info = self.gateway.stat(&self.who, &p).await.map_err(reply)?;
        Ok(Attrs {
            id,
            attrs: attrs(&info),
        })
    }

    async fn lstat(&mut self, id: u32, raw: String) -> Result<Attrs, Self::Error> {
        // There are no links, so lstat and stat agree.
        self.stat(id, raw).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let info = match self.item(&handle) {
            Some(OpenItem::Upload(u)) => FileInfo {
                name: String::new(),
                is_dir: false,
                size: u.written(),
                modified: std::time::SystemTime::now(),
            },
            Some(OpenItem::Download(d)) => FileInfo {
                name: String::new(),
                is_dir: false,
                size: d.len(),
                modified: std::time::SystemTime::now(),
            },
            Some(OpenItem::Dir(_)) => FileInfo {
                name: String::new(),
                is_dir: true,
                size: 0,
                modified: std::time::SystemTime::now(),
            },
            None => return Err(bad_handle()),
        };
        Ok(Attrs {
            id,
            attrs: attrs(&info),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        raw: String,
        a: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let p = path(&raw)?;
        // Times and modes have no meaning for sealed objects; accepting them keeps `put -p`
        // working. The path must exist, though, and its size cannot change.
        let info = self.gateway.stat(&self.who, &p).await.map_err(reply)?;
        if a.size.is_some_and(|s| s != info.size) {
            return Err(StatusCode::OpUnsupported.with_message(
                "changing a stored file's size is not supported: objects are sealed once",
            ));
        }
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        a: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let current = match self.item(&handle) {
            Some(OpenItem::Upload(u)) => u.written(),
            Some(OpenItem::Download(d)) => d.len(),
            Some(OpenItem::Dir(_)) => 0,
            None => return Err(bad_handle()),
        };
        // scp "truncates" to the size it just wrote: a no-op, so accept exactly that.
        if a.size.is_some_and(|s| s != current) {
            return Err(StatusCode::OpUnsupported
                .with_message("changing a file's size is not supported: objects are sealed once"));
        }
        Ok(ok(id))
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let p = path(&filename)?;
        let slot = self.slot()?;
        let read = pflags.contains(OpenFlags::READ);
        let write = pflags.contains(OpenFlags::WRITE) || pflags.contains(OpenFlags::APPEND);
        let item = match (read, write) {
            (true, true) => {
                return Err(StatusCode::OpUnsupported.with_message(
                    "opening for read and write at once is not supported: objects are sealed once",
                ));
            }
            (false, true) => {
                let p = VirtualPath::parse_file(&filename)
                    .map_err(|e| StatusCode::Failure.with_message(e.to_string()))?;
                let mode = WriteMode {
                    create: pflags.contains(OpenFlags::CREATE),
                    truncate: pflags.contains(OpenFlags::TRUNCATE),
                    exclusive: pflags.contains(OpenFlags::EXCLUDE),
                    append: pflags.contains(OpenFlags::APPEND),
                };
                OpenItem::Upload(
                    self.gateway
                        .open_upload(&self.who, &p, mode)
                        .await
                        .map_err(reply)?,
                )
            }
            _ => OpenItem::Download(Box::new(
                self.gateway
                    .open_download(&self.who, &p)
                    .await
                    .map_err(reply)?,
            )),
        };
        let handle = self.insert(item, slot);
        Ok(Handle { id, handle })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        // Wiped when dropped, like any plaintext the gateway copied.
        let data = Chunk::new(data);
        self.write_pieces(id, &handle, offset, &[&data]).await
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        match self.item_mut(&handle) {
            Some(OpenItem::Download(d)) => {
                let len = len.min(MAX_READ_WRITE_LEN as u32);
                match d.read(offset, len).await.map_err(reply)? {
                    Some(data) => Ok(Data { id, data }),
                    None => Err(StatusCode::Eof.into()),
                }
            }
            Some(_) => Err(StatusCode::Failure.with_message("handle is not open for reading")),
            None => Err(bad_handle()),
        }
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle).map(|o| o.item) {
            // The client hears OK only once the object is durably stored.
            Some(OpenItem::Upload(u)) => {
                u.commit().await.map_err(reply)?;
                Ok(ok(id))
            }
            Some(_) => Ok(ok(id)),
            None => Err(bad_handle()),
        }
    }

    async fn opendir(&mut self, id: u32, raw: String) -> Result<Handle, Self::Error> {
        let p = path(&raw)?;
        let slot = self.slot()?;
        let listing = self.gateway.open_dir(&self.who, &p).await.map_err(reply)?;
        let handle = self.insert(OpenItem::Dir(listing), slot);
        Ok(Handle { id, handle })
    }

    /// One page per request (OpenSSH's client refuses a reply over 256 KiB), then EOF.
    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        match self.item_mut(&handle) {
            Some(OpenItem::Dir(listing)) => {
                match listing
                    .next_page(READDIR_ENTRIES, READDIR_NAME_BYTES)
                    .await
                    .map_err(reply)?
                {
                    Some(page) => Ok(Name {
                        id,
                        files: page
                            .iter()
                            .map(|e| File::new(e.name.clone(), attrs(e)))
                            .collect(),
                    }),
                    None => Err(StatusCode::Eof.into()),
                }
            }
            Some(_) => Err(StatusCode::Failure.with_message("handle is not a directory")),
            None => Err(bad_handle()),
        }
    }

    async fn remove(&mut self, id: u32, raw: String) -> Result<Status, Self::Error> {
        let p = path(&raw)?;
        self.gateway.remove(&self.who, &p).await.map_err(reply)?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        raw: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let p = path(&raw)?;
        self.gateway.mkdir(&self.who, &p).await.map_err(reply)?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, raw: String) -> Result<Status, Self::Error> {
        let p = path(&raw)?;
        self.gateway.rmdir(&self.who, &p).await.map_err(reply)?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let from = path(&oldpath)?;
        let to = path(&newpath)?;
        self.gateway
            .rename(&self.who, &from, &to)
            .await
            .map_err(reply)?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Result<Name, Self::Error> {
        Err(StatusCode::OpUnsupported.with_message(NO_LINKS))
    }

    async fn symlink(
        &mut self,
        _id: u32,
        _linkpath: String,
        _targetpath: String,
    ) -> Result<Status, Self::Error> {
        Err(StatusCode::OpUnsupported.with_message(NO_LINKS))
    }
}
