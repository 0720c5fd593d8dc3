use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What went wrong, in terms every protocol can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    RateLimited,
    BudgetExceeded,
    GuardrailBlocked,
    /// The provider answered with an error; `GatewayError::status` holds its status.
    Upstream,
    Timeout,
    /// No target could take the request.
    Unavailable,
    Internal,
}

/// One error taxonomy for the whole gateway; each surface renders it in its own protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request parameter at fault, when known (`messages[0].content`).
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `invalid_api_key`).
    pub code: Option<String>,
    /// For `Upstream`: the provider's status. Otherwise, an override of the kind's status.
    pub status: Option<u16>,
    /// The provider's own error type, kept so a same-protocol client sees what it would have.
    pub upstream_type: Option<String>,
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            param: None,
            code: None,
            status: None,
            upstream_type: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn upstream(status: u16, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Upstream, message);
        e.status = Some(status);
        e
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// An HTTP status other than the kind's usual one (409 for a conflict, say).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The HTTP status a client sees for this error.
    pub fn http_status(&self) -> u16 {
        if let Some(status) = self.status {
            return status;
        }
        match self.kind {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::BudgetExceeded => 402,
            ErrorKind::Permission => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::GuardrailBlocked => 400,
            ErrorKind::Upstream => 502,
            ErrorKind::Timeout => 504,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GatewayError {}
