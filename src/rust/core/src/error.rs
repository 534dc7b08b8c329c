//! One error type for the whole core. Each variant has a stable `kind()`,
//! which the R side turns into the condition class `keopsr_<kind>_error`.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// The formula string does not parse. `column` is 1-based.
    #[error("malformed formula at column {column}: {message}\n  {formula}\n  {caret}")]
    Syntax {
        formula: String,
        column: usize,
        caret: String,
        message: String,
    },

    /// The formula parses but uses an unknown name, a wrong number of
    /// arguments or an invalid literal.
    #[error("{message}{}", at_column(*column))]
    Formula { message: String, column: Option<usize> },

    /// Dimensions of operands do not agree.
    #[error("{message}{}", at_column(*column))]
    Dimension { message: String, column: Option<usize> },

    /// The data passed for evaluation does not match the declared variables.
    #[error("{0}")]
    Input(String),

    /// The GPU backend is not usable (no driver, no GPU, no NVRTC) or failed.
    #[error("{0}")]
    Backend(String),

    /// A reduction argument (K, axis) is invalid for the given data.
    #[error("{0}")]
    Reduction(String),

    /// An option value is invalid.
    #[error("{0}")]
    Option(String),

    /// The user interrupted a computation.
    #[error("computation interrupted by the user")]
    Interrupted,

    /// A bug: an internal invariant failed (a caught panic, for instance).
    #[error("internal error in keopsr (please report it): {0}")]
    Internal(String),
}

fn at_column(column: Option<usize>) -> String {
    column.map(|c| format!(" (at column {c} of the formula)")).unwrap_or_default()
}

impl Error {
    /// Stable name used for the R condition class `keopsr_<kind>_error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Syntax { .. } | Error::Formula { .. } => "formula",
            Error::Dimension { .. } => "dimension",
            Error::Input(_) => "input",
            Error::Backend(_) => "backend",
            Error::Reduction(_) => "reduction",
            Error::Option(_) => "option",
            Error::Interrupted => "interrupt",
            Error::Internal(_) => "internal",
        }
    }

    pub fn formula(message: impl Into<String>, column: Option<usize>) -> Self {
        Error::Formula { message: message.into(), column }
    }

    pub fn dimension(message: impl Into<String>, column: Option<usize>) -> Self {
        Error::Dimension { message: message.into(), column }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
