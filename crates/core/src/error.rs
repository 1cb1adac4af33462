//! The one error type of the queue core.
//! Each variant's message is what a JavaScript caller sees, so it names the value at fault.

use thiserror::Error;

/// Errors the queue core returns to its callers.
#[derive(Debug, Error)]
pub enum QueueError {
    /// The provider was closed; nothing more can be enqueued.
    #[error("Queue provider is closed")]
    Closed,
    /// `acknowledge`/`fail`/`release` with a handle this provider never gave out, or one
    /// whose attempt is already over.
    #[error("Unknown receipt handle: {0}")]
    UnknownReceipt(String),
    /// A value a caller passed is out of range or of the wrong form. The message names it.
    #[error("{0}")]
    Invalid(String),
    /// The backend (SQS, the network) failed.
    #[error("{0}")]
    Backend(String),
    /// This provider cannot do this operation (an admin call SQS does not allow). The
    /// message names the provider and the operation.
    #[error("{0}")]
    Unsupported(String),
    /// The scheduler's database failed.
    #[error("{0}")]
    Store(String),
}

impl QueueError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        QueueError::Invalid(msg.into())
    }
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Store(format!("scheduler database error: {e}"))
    }
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;
