//! Protocol front ends. Each knows only `transfer` (and `config` at startup), and the two
//! connection-level pieces they share: which connections are taken ([`admission`]) and how a
//! connection is ended from outside ([`killswitch`]).

pub mod admission;
pub mod ftps;
pub mod killswitch;
pub mod sftp;
