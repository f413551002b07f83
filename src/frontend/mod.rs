//! Protocol front ends. Each knows only `transfer` (and `config` at startup).

pub mod ftps;
pub mod sftp;
