//! Config errors: the path and value at fault, and the JavaScript class each becomes.
//! Also serde's error type for reading a [`ConfigValue`], so rules speak through it.

use super::value::{js_number, ConfigValue};
use serde::de::{self, Unexpected};
use std::fmt;

/// Which JavaScript error class an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A value of the wrong kind, or a missing one: `TypeError`.
    Type,
    /// A value out of its range or set: `RangeError`.
    Range,
    /// Anything else (an unknown provider type): `Error`.
    Plain,
}

/// A config error: `"<path> <message>"`, e.g. `queue.worker.concurrency must be at least 1, got 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError(Box<ErrorParts>);

/// What a [`ConfigError`] holds (boxed: errors are rare, results are common).
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorParts {
    pub kind: ErrorKind,
    /// Where, once known; `Some("")` when the message already says where.
    pub(super) path: Option<String>,
    /// A field found missing inside the struct at `path`.
    pub(super) missing: Option<String>,
    pub(super) message: String,
    /// `(expected, got)` of a `must be <expected>, got <got>` message.
    pub(super) parts: Option<(String, String)>,
}

impl ConfigError {
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Type, message)
    }
    pub fn range(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Range, message)
    }
    pub(super) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConfigError(Box::new(ErrorParts {
            kind,
            path: None,
            missing: None,
            message: message.into(),
            parts: None,
        }))
    }

    /// `must be <expected>, got <got>`.
    pub fn expected(kind: ErrorKind, expected: impl Into<String>, got: impl Into<String>) -> Self {
        let (expected, got) = (expected.into(), got.into());
        let mut e = Self::new(kind, format!("must be {expected}, got {got}"));
        e.parts = Some((expected, got));
        e
    }

    /// The path of the value at fault, unless a deeper one is already known.
    pub(crate) fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(match self.missing.take() {
                Some(field) => format!("{path}.{field}"),
                None => path.to_owned(),
            });
        }
        self
    }

    /// Prefix a path relative to a block (`providerConfig.x`) with where the block is.
    pub(super) fn within(mut self, block_path: &str) -> Self {
        if let Some(p) = &self.path {
            if let Some(rest) = p.strip_prefix("providerConfig") {
                self.path = Some(format!("{block_path}{rest}"));
            }
        }
        self
    }

    pub(super) fn when_missing(mut self, condition: &str) -> Self {
        if self.message.starts_with("is required") {
            self.message =
                self.message
                    .replacen("is required", &format!("is required{condition}"), 1);
        }
        self
    }

    /// The message without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::ops::Deref for ConfigError {
    type Target = ErrorParts;
    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ConfigError {
    fn deref_mut(&mut self) -> &mut ErrorParts {
        &mut self.0
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_deref() {
            Some("") | None => f.write_str(&self.message),
            Some(p) => write!(f, "{p} {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl de::Error for ConfigError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConfigError::type_error(msg.to_string())
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        ConfigError::type_error(format!("must be {exp}, got {}", unexpected(unexp)))
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        ConfigError::range(format!("must be {exp}, got {}", unexpected(unexp)))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        ConfigError::range(format!(
            "must be {}, got {}",
            one_of(expected),
            ConfigValue::from(variant).describe()
        ))
    }
    fn missing_field(field: &'static str) -> Self {
        let mut e = ConfigError::type_error("is required, got undefined");
        e.missing = Some(field.to_owned());
        e
    }
}

/// serde's description of a value, as close to JavaScript's as it allows.
fn unexpected(u: Unexpected<'_>) -> String {
    match u {
        Unexpected::Other(s) => s.to_owned(),
        Unexpected::Str(s) => ConfigValue::from(s).describe(),
        Unexpected::Float(n) => js_number(n),
        Unexpected::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// `'a', 'b' or 'c'`.
pub fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}
