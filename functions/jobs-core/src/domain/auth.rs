//! Who calls: the caller of an operation (from a token, or a schedule acting for its
//! owner), its role and tenant. Shared by the API and the scheduler; tokens themselves are
//! verified by the API (`jobs-api-core`).

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};

/// What a caller may do, lowest first: each role may do what the ones below it may
/// (docs/api.md, Roles). Tokens minted before the four roles say `member` (now `operator`)
/// or `admin` (now `platform_admin`); both are still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads its tenant's jobs, items, events, metrics and schedules.
    Viewer,
    /// + creates, cancels, hides, unhides and retries jobs, bulk actions, schedules.
    #[serde(alias = "member")]
    Operator,
    /// + its tenant's audit trail, API keys and senders.
    TenantAdmin,
    /// Everything in every tenant: queue health, the global audit trail, tenant settings.
    #[serde(alias = "admin")]
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Viewer,
        Role::Operator,
        Role::TenantAdmin,
        Role::PlatformAdmin,
    ];

    /// The role's name in tokens, `GET /me` and errors.
    pub fn key(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::TenantAdmin => "tenant_admin",
            Role::PlatformAdmin => "platform_admin",
        }
    }

    /// The role named `key` (its name or a pre-four-roles alias).
    pub fn parse(key: &str) -> Option<Role> {
        serde_json::from_value(serde_json::Value::String(key.to_string())).ok()
    }
}

/// The API's operations, one per `operationId` of openapi.json, and the least role each
/// needs: the one table the server checks before any operation runs. A role below it is
/// `403`; whose objects an allowed role reaches is [`Caller::can_access`] (another
/// tenant's object is `404`) and [`Caller::tenant_scope`] (naming another tenant is `403`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    GetMe,
    ListJobs,
    GetJob,
    ListJobItems,
    ListJobEvents,
    GetMetrics,
    ListSchedules,
    GetSchedule,
    PreviewSchedule,
    CreateJob,
    CancelJob,
    HideJob,
    UnhideJob,
    RetryJob,
    BulkJobs,
    CreateSchedule,
    UpdateSchedule,
    DeleteSchedule,
    RunSchedule,
    ListAuditEvents,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    CreateSender,
    ListSenders,
    DeleteSender,
    GetTenantLimits,
    SetTenantLimits,
    GetQueueHealth,
    CreateUpload,
    ExportJobItems,
    GetJobItemsExport,
}

impl Operation {
    pub const ALL: [Operation; 32] = [
        Operation::GetMe,
        Operation::ListJobs,
        Operation::GetJob,
        Operation::ListJobItems,
        Operation::ListJobEvents,
        Operation::GetMetrics,
        Operation::ListSchedules,
        Operation::GetSchedule,
        Operation::PreviewSchedule,
        Operation::CreateJob,
        Operation::CancelJob,
        Operation::HideJob,
        Operation::UnhideJob,
        Operation::RetryJob,
        Operation::BulkJobs,
        Operation::CreateSchedule,
        Operation::UpdateSchedule,
        Operation::DeleteSchedule,
        Operation::RunSchedule,
        Operation::ListAuditEvents,
        Operation::CreateApiKey,
        Operation::ListApiKeys,
        Operation::RevokeApiKey,
        Operation::CreateSender,
        Operation::ListSenders,
        Operation::DeleteSender,
        Operation::GetTenantLimits,
        Operation::SetTenantLimits,
        Operation::GetQueueHealth,
        Operation::CreateUpload,
        Operation::ExportJobItems,
        Operation::GetJobItemsExport,
    ];

    /// The least role that may call the operation.
    pub fn required_role(self) -> Role {
        use Operation::*;
        match self {
            GetMe | ListJobs | GetJob | ListJobItems | ListJobEvents | GetMetrics
            | ListSchedules | GetSchedule | PreviewSchedule | GetTenantLimits | ExportJobItems
            | GetJobItemsExport => Role::Viewer,
            CreateJob | CancelJob | HideJob | UnhideJob | RetryJob | BulkJobs | CreateSchedule
            | UpdateSchedule | DeleteSchedule | RunSchedule | CreateUpload => Role::Operator,
            // Its tenant's trail; a platform admin's reaches every tenant.
            ListAuditEvents | CreateApiKey | ListApiKeys | RevokeApiKey | CreateSender
            | ListSenders | DeleteSender => Role::TenantAdmin,
            GetQueueHealth | SetTenantLimits => Role::PlatformAdmin,
        }
    }

    /// The `operationId` in openapi.json.
    pub fn operation_id(self) -> &'static str {
        use Operation::*;
        match self {
            GetMe => "getMe",
            ListJobs => "listJobs",
            GetJob => "getJob",
            ListJobItems => "listJobItems",
            ListJobEvents => "listJobEvents",
            GetMetrics => "getMetrics",
            ListSchedules => "listSchedules",
            GetSchedule => "getSchedule",
            PreviewSchedule => "previewSchedule",
            CreateJob => "createJob",
            CancelJob => "cancelJob",
            HideJob => "hideJob",
            UnhideJob => "unhideJob",
            RetryJob => "retryJob",
            BulkJobs => "bulkJobs",
            CreateSchedule => "createSchedule",
            UpdateSchedule => "updateSchedule",
            DeleteSchedule => "deleteSchedule",
            RunSchedule => "runSchedule",
            ListAuditEvents => "listAuditEvents",
            CreateApiKey => "createApiKey",
            ListApiKeys => "listApiKeys",
            RevokeApiKey => "revokeApiKey",
            CreateSender => "createSender",
            ListSenders => "listSenders",
            DeleteSender => "deleteSender",
            GetTenantLimits => "getTenantLimits",
            SetTenantLimits => "setTenantLimits",
            GetQueueHealth => "getQueueHealth",
            CreateUpload => "createUpload",
            ExportJobItems => "exportJobItems",
            GetJobItemsExport => "getJobItemsExport",
        }
    }

    pub fn from_operation_id(id: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.operation_id() == id)
    }
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
    pub fn is_platform_admin(&self) -> bool {
        self.role == Role::PlatformAdmin
    }

    /// Whether the caller's role may call `operation` (the table in [`Operation`]).
    pub fn may(&self, operation: Operation) -> bool {
        self.role >= operation.required_role()
    }

    /// A `403` unless the caller's role may call `operation`.
    pub fn check(&self, operation: Operation) -> Result<(), ApiError> {
        if self.may(operation) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "the role {} may not call {}; it needs {} or above",
                self.role.key(),
                operation.operation_id(),
                operation.required_role().key()
            ),
        ))
    }

    /// The operations the caller's role may call, as `operationId`s (for `GET /me`).
    pub fn operations(&self) -> Vec<&'static str> {
        Operation::ALL
            .into_iter()
            .filter(|o| self.may(*o))
            .map(Operation::operation_id)
            .collect()
    }

    /// Who acts, for the audit trail: the token's subject, or `schedule:<id>` for a
    /// schedule's run.
    pub fn actor(&self) -> String {
        match &self.origin.schedule_id {
            Some(id) => format!("schedule:{id}"),
            None => self.user.clone(),
        }
    }

    /// Whether this caller may see or act on an object of `tenant`. Another tenant's
    /// object answers `404`, as one that does not exist.
    pub fn can_access(&self, tenant: &str) -> bool {
        self.is_platform_admin() || self.tenant == tenant
    }

    /// The tenant a request names (`?tenant=`, a create's `tenant`) as the caller may use
    /// it: a platform admin gets what it named (`None`: every tenant); anyone else its own
    /// tenant, and `403` on `field` when it named another one.
    pub fn tenant_scope(
        &self,
        named: Option<&str>,
        field: &str,
    ) -> Result<Option<String>, ApiError> {
        match named {
            _ if self.is_platform_admin() => Ok(named.map(str::to_string)),
            Some(tenant) if tenant != self.tenant => Err(ApiError::field(
                ErrorCode::Forbidden,
                field,
                format!("the role {} acts in its own tenant only", self.role.key()),
            )),
            _ => Ok(Some(self.tenant.clone())),
        }
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
    fn each_role_may_what_the_ones_below_it_may() {
        for operation in Operation::ALL {
            let allowed: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|role| *role >= operation.required_role())
                .collect();
            assert_eq!(allowed.last(), Some(&Role::PlatformAdmin), "{operation:?}");
        }
        let viewer = |role| Caller {
            user: "u".into(),
            tenant: "acme".into(),
            role,
            origin: Default::default(),
        };
        assert!(viewer(Role::Viewer).may(Operation::ListJobs));
        assert!(!viewer(Role::Viewer).may(Operation::CancelJob));
        assert!(viewer(Role::Operator).may(Operation::CancelJob));
        assert!(!viewer(Role::TenantAdmin).may(Operation::GetQueueHealth));
        assert_eq!(
            viewer(Role::Viewer)
                .check(Operation::CreateJob)
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn tokens_minted_before_the_four_roles_still_read() {
        assert_eq!(Role::parse("member"), Some(Role::Operator));
        assert_eq!(Role::parse("admin"), Some(Role::PlatformAdmin));
        assert_eq!(Role::parse("tenant_admin"), Some(Role::TenantAdmin));
        assert_eq!(Role::parse("owner"), None);
        assert_eq!(serde_json::to_value(Role::Operator).unwrap(), "operator");
    }

    #[test]
    fn naming_another_tenant_is_refused_unless_platform_admin() {
        let caller = |role| Caller {
            user: "u".into(),
            tenant: "acme".into(),
            role,
            origin: Default::default(),
        };
        let operator = caller(Role::Operator);
        assert_eq!(
            operator.tenant_scope(None, "tenant").unwrap().as_deref(),
            Some("acme")
        );
        assert_eq!(
            operator
                .tenant_scope(Some("acme"), "tenant")
                .unwrap()
                .as_deref(),
            Some("acme")
        );
        let refused = operator.tenant_scope(Some("globex"), "tenant").unwrap_err();
        assert_eq!(
            (refused.status(), refused.field.as_deref()),
            (403, Some("tenant"))
        );
        let admin = caller(Role::PlatformAdmin);
        assert_eq!(admin.tenant_scope(None, "tenant").unwrap(), None);
        assert_eq!(
            admin
                .tenant_scope(Some("globex"), "tenant")
                .unwrap()
                .as_deref(),
            Some("globex")
        );
    }

    #[test]
    fn tenant_slugs() {
        assert!(is_tenant("acme") && is_tenant("acme-2_eu"));
        assert!(!is_tenant("") && !is_tenant("Acme") && !is_tenant("-acme") && !is_tenant("a<b>"));
    }
}
