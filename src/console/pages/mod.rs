//! One module per console page.

pub mod destinations;
pub mod explain;
pub mod matrix;
pub mod policies;
pub mod proposals;
pub mod whoami;
