//! Users, passwords and sessions.
//!
//! Passwords are hashed with argon2 (PHC strings); a session token is 32
//! random bytes shown to the client once, and stored only as its SHA-256.
//! The same token serves the HMI (cookie) and machines (bearer header).

use crate::{Actor, MesError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use remine_domain::ports::{Store, UserRecord};
use remine_domain::{Action, AuditEvent, Role, Username};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// An open session. The token is a secret: `Debug` does not print it.
#[derive(Clone)]
pub struct Session {
    pub token: String,
    pub actor: Actor,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("actor", &self.actor)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Hashes a password with argon2 and a random salt.
pub fn hash_password(password: &str) -> Result<String, MesError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| MesError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| MesError::Internal(format!("hashing failed: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password for demo users, 16 characters without look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The user service.
#[derive(Debug, Clone)]
pub struct Users {
    store: Arc<dyn Store>,
    session_ttl: Duration,
}

impl Users {
    /// Sessions last `session_ttl` from login (the HMI's idle timeout is shorter and client-side).
    pub fn new(store: Arc<dyn Store>, session_ttl: Duration) -> Users {
        Users { store, session_ttl }
    }

    /// Adds a user. Needs the admin role, except for the system itself
    /// (the CLI on the plant server, and the demo).
    #[tracing::instrument(skip(self, password), fields(user = %name))]
    pub async fn add(
        &self,
        actor: &Actor,
        name: &Username,
        role: Role,
        password: &str,
    ) -> Result<(), MesError> {
        if actor.user != Username::system() {
            actor
                .role
                .authorise(Action::ManageUsers)
                .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        }
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(MesError::NotAllowed(format!(
                "password too short: at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        let record = UserRecord {
            name: name.clone(),
            role,
            password_hash: hash_password(password)?,
            created_at: Utc::now(),
        };
        let audit = AuditEvent {
            actor: actor.user.clone(),
            action: "user.add".into(),
            target: name.to_string(),
            old: None,
            new: Some(format!("role={}", role.name())),
            reason: "user created".into(),
        };
        self.store.add_user(&record, audit).await?;
        Ok(())
    }

    /// Issues a long-lived bearer token for a machine account (a platform
    /// connector, a data logger), acting as `user`. Only the system (the CLI
    /// on the plant server) or an admin may; the issue is audited, the token
    /// is shown once and stored only as its hash.
    #[tracing::instrument(skip(self, actor), fields(user = %name))]
    pub async fn issue_token(
        &self,
        actor: &Actor,
        name: &Username,
        ttl: Duration,
    ) -> Result<Session, MesError> {
        if actor.user != Username::system() {
            actor
                .role
                .authorise(Action::ManageUsers)
                .map_err(|e| MesError::NotAllowed(e.to_string()))?;
        }
        let user = self
            .store
            .user(name)
            .await?
            .ok_or_else(|| MesError::NotAllowed(format!("no user {name}")))?;
        let expires_at = Utc::now() + ttl;
        self.store
            .append(AuditEvent {
                actor: actor.user.clone(),
                action: "token.issue".into(),
                target: name.to_string(),
                old: None,
                new: Some(format!(
                    "expires {}",
                    expires_at.format("%Y-%m-%d %H:%M UTC")
                )),
                reason: "machine token".into(),
            })
            .await?;
        self.open_session(user, expires_at).await
    }

    async fn open_session(
        &self,
        user: UserRecord,
        expires_at: DateTime<Utc>,
    ) -> Result<Session, MesError> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        self.store
            .create_session(&token_hash(&token), &user.name, expires_at)
            .await?;
        Ok(Session {
            token,
            actor: Actor {
                user: user.name,
                role: user.role,
            },
            expires_at,
        })
    }

    /// Checks the password and opens a session.
    #[tracing::instrument(skip(self, password), fields(user = %name))]
    pub async fn login(&self, name: &str, password: &str) -> Result<Session, MesError> {
        let user = match Username::parse(name) {
            Ok(u) => self.store.user(&u).await?,
            Err(_) => None,
        };
        let Some(user) = user else {
            // Spend the same time as a real check, so timing does not tell
            // which user names exist.
            let _ = hash_password(password);
            return Err(MesError::BadCredentials);
        };
        if !verify_password(password, &user.password_hash) {
            return Err(MesError::BadCredentials);
        }
        self.open_session(user, Utc::now() + self.session_ttl).await
    }

    /// Checks a signer's password again (an electronic signature), and
    /// returns the signer with the role they hold now in the store (a role
    /// changed since login counts). A wrong password is refused without
    /// saying more.
    #[tracing::instrument(skip(self, password), fields(user = %actor.user))]
    pub async fn reauthenticate(&self, actor: &Actor, password: &str) -> Result<Actor, MesError> {
        let user = self.store.user(&actor.user).await?;
        match user {
            Some(u) if verify_password(password, &u.password_hash) => Ok(Actor {
                user: u.name,
                role: u.role,
            }),
            Some(_) => Err(MesError::NotAllowed(format!(
                "signature refused: the password does not match user {}",
                actor.user
            ))),
            None => {
                let _ = hash_password(password);
                Err(MesError::NotAllowed(format!(
                    "signature refused: user {} does not exist",
                    actor.user
                )))
            }
        }
    }

    /// The actor behind a session token.
    pub async fn authenticate(&self, token: &str) -> Result<Actor, MesError> {
        let user = self
            .store
            .session_user(&token_hash(token), Utc::now())
            .await?
            .ok_or(MesError::Unauthenticated)?;
        Ok(Actor {
            user: user.name,
            role: user.role,
        })
    }

    pub async fn logout(&self, token: &str) -> Result<(), MesError> {
        self.store.delete_session(&token_hash(token)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = random_password();
        assert_eq!(a.len(), 16);
        assert_ne!(a, random_password());
    }
}
