//! One module per console page.

pub mod audit;
pub mod register;
pub mod whoami;
