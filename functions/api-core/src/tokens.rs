//! Bearer tokens: HS256 JWTs whose claims say who the caller is and which tenant they act in.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use jobs_core::domain::auth::{Caller, Role, is_tenant};
use jobs_core::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub role: Role,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Verifies tokens with one secret; built once per process.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(secret: &[u8]) -> TokenVerifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenVerifier {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Checks a token. Every failure is a 401; the reason is only a hint (never which part
    /// of the signature was wrong).
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let reason = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not yet valid",
                    _ => "invalid token",
                };
                ApiError::unauthorized(reason)
            })?
            .claims;
        if !is_tenant(&claims.tenant) || !jobs_core::domain::params::is_user_id(&claims.sub) {
            return Err(ApiError::unauthorized("invalid token"));
        }
        Ok(Caller {
            user: claims.sub,
            tenant: claims.tenant,
            role: claims.role,
            origin: jobs_core::domain::audit::Origin::default(),
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header value; a `401` otherwise.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, ApiError> {
    let header = authorization.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))
}

/// Mints a token (used by `infra token` and the tests, never by the service).
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        jobs_core::clock::now().unix_timestamp() as u64
    }

    fn claims(role: Role) -> Claims {
        Claims {
            sub: "alice".into(),
            tenant: "acme".into(),
            role,
            exp: now() + 600,
            nbf: None,
            iat: None,
        }
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn valid_token_yields_the_caller() {
        let token = mint(SECRET, &claims(Role::Operator)).unwrap();
        let caller = TokenVerifier::new(SECRET).verify(&token).unwrap();
        assert_eq!(
            caller,
            Caller {
                user: "alice".into(),
                tenant: "acme".into(),
                role: Role::Operator,
                origin: Default::default()
            }
        );
        assert!(caller.can_access("acme") && !caller.can_access("globex"));
    }

    #[test]
    fn every_bad_token_is_401() {
        let v = TokenVerifier::new(SECRET);
        let expired = Claims {
            exp: now() - 60,
            ..claims(Role::PlatformAdmin)
        };
        let future = Claims {
            nbf: Some(now() + 600),
            ..claims(Role::PlatformAdmin)
        };
        let bad_tenant = Claims {
            tenant: "Acme Corp".into(),
            ..claims(Role::PlatformAdmin)
        };
        let good = mint(SECRET, &claims(Role::PlatformAdmin)).unwrap();
        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
        let header_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        let payload = good.split('.').nth(1).unwrap();
        let cases = [
            None,
            Some("Basic abc".to_string()),
            Some("Bearer ".to_string()),
            Some(bearer("not.a.jwt")),
            Some(bearer(
                &mint(
                    b"another-secret-another-secret-xx",
                    &claims(Role::PlatformAdmin),
                )
                .unwrap(),
            )),
            Some(bearer(&mint(SECRET, &expired).unwrap())),
            Some(bearer(&mint(SECRET, &future).unwrap())),
            Some(bearer(&mint(SECRET, &bad_tenant).unwrap())),
            Some(bearer(&tampered)),
            Some(bearer(&format!("{header_none}.{payload}."))),
        ];
        for case in cases {
            let err = bearer_token(case.as_deref())
                .and_then(|token| v.verify(token))
                .unwrap_err();
            assert_eq!(err.status(), 401, "{case:?}");
        }
    }

    #[test]
    fn token_without_tenant_claim_is_401() {
        #[derive(Serialize)]
        struct NoTenant {
            sub: &'static str,
            role: &'static str,
            exp: u64,
        }
        let token = encode(
            &Header::new(Algorithm::HS256),
            &NoTenant {
                sub: "alice",
                role: "admin",
                exp: now() + 600,
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            TokenVerifier::new(SECRET)
                .verify(&token)
                .unwrap_err()
                .status(),
            401
        );
    }
}
