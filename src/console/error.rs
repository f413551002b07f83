//! What a console request can fail with, each shown to the officer as a page that says what to
//! do, with the matching HTTP status.

use hyper::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request itself is wrong: a missing or malformed field, named in the message.
    #[error("{0}")]
    BadRequest(String),
    /// The officer's roles do not allow this, or a rule such as four-eyes forbids it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. a proposal already decided).
    #[error("{0}")]
    Conflict(String),
    /// The gateway could not do it (an unreadable audit log, a failed write); named, not hidden.
    #[error("{0}")]
    Internal(String),
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Why the console could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleSetupError {
    #[error("console: {0}")]
    Tls(#[from] crate::admin::AdminError),
}
