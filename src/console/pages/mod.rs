//! One module per console page.

pub mod whoami;
