//! Where bb8 reports connection errors, so a checkout that timed out can say why.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use diesel_async::pooled_connection::PoolError;

use super::{DatabaseUrl, describe};

/// Keeps the last connection error bb8 saw, because bb8 reports a checkout that
/// failed to connect as a bare timeout.
#[derive(Clone, Default)]
pub(super) struct LastError(Arc<Mutex<Option<String>>>);

impl fmt::Debug for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LastError")
    }
}

impl LastError {
    /// The newest error, scrubbed, if one was seen since the last call.
    pub(super) fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn set(&self, message: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }
}

/// The sink bb8 reports connection errors to; keeps the newest, scrubbed of the password.
#[derive(Debug, Clone)]
pub(super) struct ErrorSink {
    last: LastError,
    url: DatabaseUrl,
}

impl ErrorSink {
    /// A sink recording into `last`, scrubbing `url`'s password.
    pub(super) fn new(last: LastError, url: DatabaseUrl) -> Self {
        Self { last, url }
    }
}

impl bb8::ErrorSink<PoolError> for ErrorSink {
    fn sink(&self, error: PoolError) {
        let message = self.url.redact(&describe(&error));
        tracing::warn!(error = %message, "keyroute: database connection failed");
        self.last.set(message);
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}
