//! The one mapping from everything that can go wrong in a handler to an HTTP response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latch_api::ErrorBody;
use latch_core::{Refusal, RefusalKind};
use latch_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(message) => Self::Unavailable(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl ApiError {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Refused(Refusal {
            kind: RefusalKind::Forbidden,
            message: message.into(),
        })
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::Refused(Refusal {
            kind: RefusalKind::NotFound,
            message: message.into(),
        })
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Refused(refusal) => match refusal.kind {
                RefusalKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
                RefusalKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
                RefusalKind::Conflict => (StatusCode::CONFLICT, "conflict"),
                RefusalKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            },
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Unavailable(detail) | Self::Internal(detail) => {
                // Details go to the log; the caller learns only what they can act on.
                tracing::error!(%status, detail, "request failed");
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    "the database is unavailable: try again shortly".to_owned()
                } else {
                    "internal error: see the server log".to_owned()
                }
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code.to_owned(),
                message,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
