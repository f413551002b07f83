//! eugate: a secure file-transfer gateway.
//!
//! Partners upload over SFTP; every file is sealed with its tenant's key, the destination's
//! verified location is checked against the residency policy, and only then is ciphertext
//! streamed to storage. See `../shared/DESIGN.md` for the architecture and its invariants.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod cli;
pub mod config;
pub mod console;
pub mod crypto;
pub mod frontend;
pub mod keys;
pub mod policy;
pub mod storage;
pub mod tls;
pub mod transfer;
