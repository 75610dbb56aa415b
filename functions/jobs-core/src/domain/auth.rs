//! Who calls: the caller of an operation (from a token, or a schedule acting for its
//! owner), its role and tenant. Shared by the API and the scheduler; tokens themselves are
//! verified by the API (`jobs-api-core`).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Acts on every tenant's jobs.
    Admin,
    /// Acts on its own tenant's jobs only.
    Member,
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub tenant: String,
    pub role: Role,
    /// Where the request came from, for the audit trail.
    pub origin: crate::domain::audit::Origin,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Who acts, for the audit trail: the token's subject, or `schedule:<id>` for a
    /// schedule's run.
    pub fn actor(&self) -> String {
        match &self.origin.schedule_id {
            Some(id) => format!("schedule:{id}"),
            None => self.user.clone(),
        }
    }

    /// Whether this caller may see or act on a job of `tenant`.
    pub fn can_access(&self, tenant: &str) -> bool {
        self.is_admin() || self.tenant == tenant
    }
}

/// Tenants are slugs: they appear in keys, URLs and search, so their form is fixed.
pub fn is_tenant(tenant: &str) -> bool {
    let mut chars = tenant.chars();
    matches!(chars.next(), Some('a'..='z' | '0'..='9'))
        && tenant.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_slugs() {
        assert!(is_tenant("acme") && is_tenant("acme-2_eu"));
        assert!(!is_tenant("") && !is_tenant("Acme") && !is_tenant("-acme") && !is_tenant("a<b>"));
    }
}
