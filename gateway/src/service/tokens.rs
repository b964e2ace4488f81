//! Secrets handed to clients: session tokens and API keys (256 random bits,
//! URL-safe), stored only as their SHA-256.

use base64::Engine;
use domain::ErrorCode;
use sha2::Digest;

use crate::error::ApiError;

/// What every API key starts with (tells a key from a session token).
pub const API_KEY_PREFIX: &str = "osk_";

/// The stored form of a token or key.
pub fn hash_token(token: &str) -> String {
    domain::hex::encode(&sha2::Sha256::digest(token.as_bytes()))
}

/// A fresh random token.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a token");
        ApiError::new(ErrorCode::InternalError, "cannot create a token")
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
