//! One module per console page.

pub mod proposals;
pub mod whoami;
