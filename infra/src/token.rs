//! The token secret of a local deployment, and dev tokens signed with it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use jobs_api_core::tokens::{Claims, mint};
use jobs_core::domain::auth::Role;

use crate::artifacts_dir;

/// `TOKEN_SECRET` from the environment, else the local secret file, created on first use
/// with 32 random bytes. The file is git-ignored and readable by its owner only.
pub fn secret() -> Result<String> {
    if let Ok(secret) = std::env::var("TOKEN_SECRET") {
        if secret.len() < jobs_api_core::api::MIN_SECRET_BYTES {
            bail!(
                "TOKEN_SECRET must be at least {} bytes",
                jobs_api_core::api::MIN_SECRET_BYTES
            );
        }
        return Ok(secret);
    }
    let path = artifacts_dir().join("token-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_string());
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(artifacts_dir())?;
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

pub fn dev_token(
    secret: &str,
    tenant: &str,
    user: &str,
    role: Role,
    ttl: Duration,
) -> Result<String> {
    if !jobs_core::domain::auth::is_tenant(tenant) {
        bail!("tenant must be lower-case letters, digits, - and _");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let claims = Claims {
        sub: user.to_string(),
        tenant: tenant.to_string(),
        role,
        exp: now + ttl.as_secs(),
        nbf: None,
        iat: Some(now),
    };
    Ok(mint(secret.as_bytes(), &claims)?)
}

/// Parses `90s`, `15m`, `1h`, `7d`.
pub fn parse_ttl(text: &str) -> Result<Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number.parse().with_context(|| format!("bad ttl {text}"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("bad ttl unit in {text}; use s, m, h or d"),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_ttl("90").unwrap().as_secs(), 90);
        assert_eq!(parse_ttl("2d").unwrap().as_secs(), 172_800);
        assert!(parse_ttl("1w").is_err() && parse_ttl("h").is_err());
    }

    #[test]
    fn dev_tokens_verify_with_the_service_verifier() {
        let secret = "s".repeat(32);
        let token = dev_token(
            &secret,
            "acme",
            "alice",
            Role::PlatformAdmin,
            Duration::from_secs(60),
        )
        .unwrap();
        let caller = jobs_api_core::tokens::TokenVerifier::new(secret.as_bytes())
            .verify(&token)
            .unwrap();
        assert!(caller.is_platform_admin() && caller.tenant == "acme");
        assert!(
            dev_token(
                &secret,
                "ACME",
                "alice",
                Role::Operator,
                Duration::from_secs(60)
            )
            .is_err()
        );
    }
}
