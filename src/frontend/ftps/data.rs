//! TLS data connections: opening one (accept from the passive listener, then the TLS
//! handshake, each bounded by the data timeout), streaming an upload into `transfer` in
//! bounded chunks, sending a download or a listing, and closing with TLS close_notify.
//!
//! The end of an upload is its TLS close_notify: a data connection that ends without it was
//! cut (RFC 4217 section 9; a TCP FIN can be forged or come from a crash), so the upload is
//! aborted and nothing is published.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use zeroize::Zeroizing;

use crate::transfer::{DownloadHandle, TransferError, UploadHandle};

use super::passive::Passive;

/// Plaintext bytes read from the data connection per write into the upload (and per read of a
/// download): the same bound as an SFTP write.
const CHUNK: usize = 64 * 1024;

/// After our close_notify, how long the client gets to send its own before the connection drops.
const DRAIN: Duration = Duration::from_secs(5);

pub type DataStream = TlsStream<TcpStream>;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "no data connection arrived from your address in time; connect to the PASV/EPSV port first"
    )]
    NoConnection,
    #[error("TLS handshake on the data connection failed: {0}")]
    Handshake(String),
    #[error(
        "the data connection ended without TLS close_notify, so the upload may be truncated; nothing was stored, send the whole file again"
    )]
    Truncated,
    #[error("the data connection stalled for {0} s; transfer aborted")]
    Timeout(u64),
    #[error("data connection failed: {0}")]
    Io(String),
    #[error("{0}")]
    Transfer(TransferError),
    #[error("aborted by ABOR")]
    Aborted,
    #[error(
        "TLS session reuse required: the data connection {0} the control connection's TLS session (require_ssl_reuse is on); use a client that resumes TLS sessions, such as lftp or curl"
    )]
    NotReused(&'static str),
}

/// Accepts the client's data connection and completes the TLS handshake (`PROT P`). With
/// `reuse`, the handshake must have resumed the session whose resumption data is `reuse`: the
/// control connection's own random token, so no other connection's session will do.
pub async fn open(
    passive: Passive,
    acceptor: &TlsAcceptor,
    timeout: Duration,
    reuse: Option<&[u8]>,
) -> Result<DataStream, DataError> {
    let tcp = passive
        .accept(timeout)
        .await
        .ok_or(DataError::NoConnection)?;
    drop(passive);
    let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(DataError::Handshake(e.to_string())),
        Err(_) => return Err(DataError::Handshake("timed out".into())),
    };
    if let Some(token) = reuse {
        match stream.get_ref().1.received_resumption_data() {
            Some(t) if t == token => {}
            Some(_) => return Err(DataError::NotReused("resumed a TLS session other than")),
            None => return Err(DataError::NotReused("did not resume")),
        }
    }
    Ok(stream)
}

/// Streams the data connection into `upload` until the client's close_notify; returns the
/// byte count. A plain TCP end (no close_notify) is [`DataError::Truncated`].
pub async fn receive(
    stream: &mut DataStream,
    upload: &mut UploadHandle,
    timeout: Duration,
) -> Result<u64, DataError> {
    // Wiped when dropped, like any plaintext the gateway copies.
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut offset = 0u64;
    loop {
        let n = match tokio::time::timeout(timeout, stream.read(&mut buf[..])).await {
            Err(_) => return Err(DataError::Timeout(timeout.as_secs())),
            Ok(Ok(0)) => return Ok(offset),
            Ok(Ok(n)) => n,
            // rustls reports a TCP end before close_notify as UnexpectedEof.
            // A reset is no close_notify either.
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Err(DataError::Truncated);
            }
            Ok(Err(e)) => return Err(DataError::Io(e.to_string())),
        };
        upload
            .write_pieces(offset, &[&buf[..n]])
            .await
            .map_err(DataError::Transfer)?;
        offset += n as u64;
    }
}

/// Sends `download` from `offset` to its end; returns the bytes sent.
pub async fn send_download(
    stream: &mut DataStream,
    download: &mut DownloadHandle,
    mut offset: u64,
    timeout: Duration,
) -> Result<u64, DataError> {
    let start = offset;
    while let Some(data) = download
        .read(offset, CHUNK as u32)
        .await
        .map_err(DataError::Transfer)?
    {
        let data = Zeroizing::new(data);
        send(stream, &data, timeout).await?;
        offset += data.len() as u64;
    }
    Ok(offset - start)
}

pub async fn send(
    stream: &mut DataStream,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), DataError> {
    match tokio::time::timeout(timeout, stream.write_all(bytes)).await {
        Err(_) => Err(DataError::Timeout(timeout.as_secs())),
        Ok(Err(e)) => Err(DataError::Io(e.to_string())),
        Ok(Ok(())) => Ok(()),
    }
}

/// Ends the data connection cleanly: our close_notify now, then (in the background) a short
/// wait for the client's, so that a client that answers it (Python's `unwrap()`) does not meet
/// a reset connection.
pub async fn finish(mut stream: DataStream, timeout: Duration) -> Result<(), DataError> {
    match tokio::time::timeout(timeout, stream.shutdown()).await {
        Err(_) => return Err(DataError::Timeout(timeout.as_secs())),
        Ok(Err(e)) => return Err(DataError::Io(e.to_string())),
        Ok(Ok(())) => {}
    }
    tokio::spawn(async move {
        let mut sink = [0u8; 512];
        let _ = tokio::time::timeout(DRAIN, async {
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    });
    Ok(())
}
