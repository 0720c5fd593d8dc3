//! The one place errors become HTTP responses, in the caller's protocol.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_protocols::{anthropic, openai};
use switchyard_types::{GatewayError, Protocol};

/// An error on its way to a client of the given protocol.
pub struct SurfaceError {
    pub protocol: Protocol,
    pub error: GatewayError,
}

impl SurfaceError {
    pub fn openai(error: GatewayError) -> Self {
        SurfaceError { protocol: Protocol::OpenAi, error }
    }

    pub fn new(protocol: Protocol, error: GatewayError) -> Self {
        SurfaceError { protocol, error }
    }
}

impl IntoResponse for SurfaceError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
        // Gemini and Bedrock are provider protocols only: no client speaks them here.
        let body = match self.protocol {
            Protocol::Anthropic => anthropic::encode_error(&self.error),
            Protocol::OpenAi | Protocol::Gemini | Protocol::Bedrock => openai::encode_error(&self.error),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(after) = self.error.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
