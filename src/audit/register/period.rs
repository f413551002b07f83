//! The register's period: `[from, to)` in UTC (times parsed by `audit::time`).

pub use crate::audit::time::{DateError, Millis, format_time, parse_time};

/// The half-open interval of time the register covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Millis,
    pub to: Millis,
}

impl Period {
    pub fn contains(&self, t: Millis) -> bool {
        self.from <= t && t < self.to
    }
}
