//! Protocol front ends. Each knows only `transfer` (and `config` at startup), and the
//! connection-level pieces they share: which connections are taken ([`admission`]), how a
//! connection is ended from outside ([`killswitch`]) and who a connection behind a load balancer
//! is from ([`proxy_header`]).

pub mod admission;
pub mod ftps;
pub mod killswitch;
pub mod proxy_header;
pub mod sftp;
