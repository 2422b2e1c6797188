//! The error a plugin returns to fail a call.

use std::fmt;

/// Fails the call: Edgeway answers 500 and counts the failure, as for a trap (authorizers
/// fail closed). The message goes to Edgeway's log, not to the client.
///
/// Any [`std::error::Error`] converts with `?`, its `source()` chain appended; build one from
/// text with [`Error::msg`].
///
/// ```
/// use edgeway_plugin_sdk::Error;
///
/// fn parse(text: &str) -> Result<u32, Error> {
///     if text.is_empty() {
///         return Err(Error::msg("empty"));
///     }
///     Ok(text.parse::<u32>()?)
/// }
/// assert_eq!(parse("").unwrap_err().message(), "empty");
/// assert!(parse("x").unwrap_err().message().contains("invalid digit"));
/// ```
pub struct Error {
    message: String,
}

impl Error {
    /// An error with `message`.
    pub fn msg(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, which is what crosses to Edgeway.
    pub fn into_message(self) -> String {
        self.message
    }
}

// Like `anyhow::Error`, `Error` does not implement `std::error::Error` itself, so this blanket
// conversion does not collide with `From<T> for T`.
impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error { message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}
