//! The SFTP front end: a russh server with modern algorithms (or, by the operator's choice, a
//! compatible set), per-IP and per-user brute-force defence, a session limit per user, and one
//! [`handler::SftpSession`] per SFTP channel. It knows only `transfer` (and `config` at startup).

mod algorithms;
mod connection;
mod framing;
pub mod handler;
mod hostkeys;
mod inflow;
mod listener;
mod offer;
mod outbox;
mod requests;
mod server;

use std::net::SocketAddr;

pub use algorithms::preferred_algorithms;
pub use connection::ConnectionError;
pub use hostkeys::load_host_keys;
pub use server::{SftpServer, ShutdownReport};

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("host key {path}: {reason}")]
    HostKey { path: String, reason: String },
    #[error("cannot listen on {addr}: {source}; is another process using the port?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
