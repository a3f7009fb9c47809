//! API tokens: random secrets shown once, stored only as SHA-256 hashes, and the extractor that
//! turns a `Authorization: Bearer` header into the calling user.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use latch_core::Catalog;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Prefix of every token secret: makes a leaked token recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "latch_";

/// A freshly made token: `secret` is shown to the user once and never stored.
pub struct NewToken {
    pub id: String,
    pub secret: String,
    pub secret_hash: String,
}

/// Makes a token: 256 random bits from the OS.
pub fn new_token() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    NewToken {
        id: format!("tok_{}", ulid::Ulid::new().to_string().to_lowercase()),
        secret_hash: hash_secret(&secret),
        secret,
    }
}

/// What the store keeps of a secret. Tokens carry 256 bits of entropy, so a fast hash is
/// enough (no password stretching needed) and lookups stay cheap.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The authenticated caller of an API endpoint.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub token_id: String,
}

impl Caller {
    pub fn is_admin(&self, catalog: &Catalog) -> bool {
        catalog.has_role(&self.user, latch_core::UserRole::Admin)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing `Authorization: Bearer <token>` header: get a token with `latch admin token create`".into()))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the `Authorization` header must be `Bearer <token>`".into())
            })?;
        authenticate(state, secret).await
    }
}

/// The user a token secret belongs to: a live token of someone still in the organisation. The
/// API's bearer header and the web UI's session cookie both come here.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    let token = state
        .store
        .token_by_hash(&hash_secret(secret))
        .await?
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "unknown or revoked token: ask an admin for a new one (`latch admin token create`)"
                    .into(),
            )
        })?;
    if state.catalog.get().user(&token.user).is_none() {
        return Err(ApiError::Unauthorized(format!(
            "token `{}` belongs to `{}`, who is no longer in the organisation",
            token.id, token.user
        )));
    }
    Ok(Caller {
        user: token.user,
        token_id: token.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX) && a.secret.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(a.secret_hash, hash_secret(&a.secret));
        assert!(!a.secret_hash.contains(&a.secret[TOKEN_PREFIX.len()..]));
        assert!(a.id.starts_with("tok_"));
    }
}
