//! The resource owners: passwords as Argon2id hashes, checks limited per user and address.

use std::{collections::HashMap, sync::Arc, time::Duration};

use crate::config::DemoConfig;
use http::StatusCode;
use tower_oauth_revoke::{
    client_auth::{AuthFailureLimiter, RemoteAddr},
    error::{ErrorCode, OAuthError},
};

/// The resource owners, and a limit on failed password checks per (user, address), as for
/// clients: 20 a minute, then 429 + `Retry-After`.
///
/// Passwords are kept as Argon2id hashes (PHC strings), as a password database should keep
/// them; SHA-256, fine for the generated secrets of clients, is far too fast for passwords
/// people choose.
#[derive(Clone)]
pub(crate) struct Users {
    hashes: Arc<HashMap<String, String>>,
    /// Checked for an unknown user, so that it costs what a wrong password costs.
    decoy: Arc<String>,
    limiter: AuthFailureLimiter,
}

pub(crate) enum UserAuthError {
    Invalid,
    Limited(u64),
}

/// An Argon2id hash of `password` with a random salt, as a PHC string.
pub(crate) fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes of salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with its default parameters")
        .to_string()
}

pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Users {
    pub(crate) fn new(config: &DemoConfig) -> Self {
        Self {
            hashes: Arc::new(
                config
                    .users
                    .iter()
                    .map(|u| (u.name.clone(), hash_password(&u.password)))
                    .collect(),
            ),
            decoy: Arc::new(hash_password("decoy")),
            limiter: AuthFailureLimiter::new(20, Duration::from_secs(60)),
        }
    }

    pub(crate) fn authenticate(
        &self,
        name: &str,
        password: &str,
        addr: Option<RemoteAddr>,
    ) -> Result<(), UserAuthError> {
        let attempt = self
            .limiter
            .begin(name, addr)
            .map_err(UserAuthError::Limited)?;
        let ok = match self.hashes.get(name) {
            Some(hash) => verify_password(password, hash),
            None => {
                let _ = verify_password(password, &self.decoy);
                false
            }
        };
        if ok {
            attempt.succeeded();
            Ok(())
        } else {
            attempt.failed();
            Err(UserAuthError::Invalid)
        }
    }
}

pub(crate) fn too_many_attempts(retry_after: u64) -> OAuthError {
    OAuthError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TemporarilyUnavailable,
        "too many failed attempts; try again later",
    )
    .with_retry_after(retry_after)
}
