//! One module per console page.

pub mod audit;
pub mod destinations;
pub mod explain;
pub mod matrix;
pub mod policies;
pub mod proposals;
pub mod register;
pub mod whoami;
