//! `GET /jobs`: which index answers a listing, with which key range and filter.
//!
//! | caller / filters            | index            | partition           |
//! |-----------------------------|------------------|---------------------|
//! | member, or admin + tenant   | `by_tenant`      | tenant              |
//! | … + user                    | `by_tenant_user` | `tenant#user`       |
//! | admin, no tenant            | `by_month`       | each month, newest first, back to the retention horizon |
//! | `hidden=true`: as above     | `hidden_by_tenant` (user as a filter) or `hidden_by_month` | the same |
//!
//! The created-date range is a key condition on `list_sk`; status, type, user (when not in
//! the key) and `q` are filters on the projected attributes.

use time::OffsetDateTime;

use jobs_core::clock::{self, DayEnd};
use jobs_core::domain::auth::{Caller, is_tenant};
use jobs_core::domain::job::{JobStatus, JobType};
use jobs_core::domain::params::is_user_id;
use jobs_core::domain::record::ListIndex;
use jobs_core::error::ApiError;
use jobs_core::ports::{ListFilter, Search};

pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 100;
pub const MAX_SEARCH_CHARS: usize = 100;
const KNOWN_PARAMS: [&str; 10] = [
    "type",
    "status",
    "user",
    "tenant",
    "q",
    "created_from",
    "created_to",
    "limit",
    "cursor",
    "hidden",
];

/// A validated `GET /jobs` query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub job_type: Option<JobType>,
    pub status: Option<JobStatus>,
    pub user: Option<String>,
    pub tenant: Option<String>,
    pub search: Option<String>,
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
    /// List the hidden jobs instead of the visible ones.
    pub hidden: bool,
}

impl ListRequest {
    /// Validates query parameters; each problem is a 400 naming the parameter.
    pub fn parse(params: &[(String, String)]) -> Result<ListRequest, ApiError> {
        let mut req = ListRequest {
            limit: DEFAULT_LIMIT,
            ..ListRequest::default()
        };
        for (name, value) in crate::query::checked(params, &KNOWN_PARAMS)? {
            let bad = |msg: &str| ApiError::bad_param(name, msg);
            // An empty search is no search; any other empty value is a client bug worth naming.
            if value.is_empty() {
                if name == "q" {
                    continue;
                }
                return Err(bad("must not be empty (leave the parameter out instead)"));
            }
            match name {
                "type" => {
                    req.job_type =
                        Some(JobType::parse(value).ok_or_else(|| bad("unknown job type"))?)
                }
                "status" => {
                    req.status = Some(JobStatus::parse(value).ok_or_else(|| bad("unknown status"))?)
                }
                "user" if is_user_id(value) => req.user = Some(value.to_string()),
                "user" => return Err(bad("must be 1 to 128 printable characters")),
                "tenant" if is_tenant(value) => req.tenant = Some(value.to_string()),
                "tenant" => {
                    return Err(bad(
                        "must be a tenant id (lower-case letters, digits, - and _)",
                    ));
                }
                "q" if value.chars().count() <= MAX_SEARCH_CHARS
                    && !value.chars().any(char::is_control) =>
                {
                    req.search = Some(value.trim().to_lowercase()).filter(|q| !q.is_empty());
                }
                "q" => return Err(bad("must be at most 100 printable characters")),
                "created_from" => {
                    req.created_from =
                        Some(bound(value, DayEnd::Start).ok_or_else(|| {
                            bad("must be a date (YYYY-MM-DD) or an RFC 3339 time")
                        })?)
                }
                "created_to" => {
                    req.created_to =
                        Some(bound(value, DayEnd::End).ok_or_else(|| {
                            bad("must be a date (YYYY-MM-DD) or an RFC 3339 time")
                        })?)
                }
                "hidden" => {
                    req.hidden = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("must be true or false")),
                    };
                }
                "limit" => {
                    req.limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad("must be an integer from 1 to 100"))?;
                }
                _ => req.cursor = Some(value.to_string()),
            }
        }
        if let (Some(from), Some(to)) = (&req.created_from, &req.created_to)
            && from > to
        {
            return Err(ApiError::bad_param(
                "created_from",
                "must not be after created_to",
            ));
        }
        Ok(req)
    }
}

fn bound(value: &str, end: DayEnd) -> Option<String> {
    clock::parse_bound(value, end).map(clock::format)
}

/// Where a listing's entries come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partitions {
    One(String),
    /// Month buckets from `newest` back to `oldest`, inclusive.
    Months {
        newest: String,
        oldest: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPlan {
    pub index: ListIndex,
    pub partitions: Partitions,
    pub sort_from: Option<String>,
    pub sort_to: Option<String>,
    pub filter: ListFilter,
    /// Binds cursors to this caller and these filters.
    pub scope: String,
}

/// Chooses the index, partitions and filter for a listing. Naming another tenant is a 403
/// unless the caller is a platform admin ([`Caller::tenant_scope`]).
pub fn plan(
    caller: &Caller,
    req: &ListRequest,
    now: OffsetDateTime,
    retention_days: u32,
) -> Result<ListPlan, ApiError> {
    let tenant = caller.tenant_scope(req.tenant.as_deref(), "tenant")?;
    let mut filter = ListFilter {
        status: req.status,
        job_type: req.job_type,
        user: None,
        search: req.search.as_ref().map(|term| Search {
            term: term.clone(),
            types: JobType::ALL
                .into_iter()
                .filter(|t| t.matches_search(term))
                .collect(),
        }),
    };
    let (index, partitions) = match (&tenant, &req.user) {
        (Some(t), user) if req.hidden => {
            filter.user = user.clone();
            (ListIndex::HiddenByTenant, Partitions::One(t.clone()))
        }
        (Some(t), Some(u)) => (ListIndex::ByTenantUser, Partitions::One(format!("{t}#{u}"))),
        (Some(t), None) => (ListIndex::ByTenant, Partitions::One(t.clone())),
        (None, user) => {
            filter.user = user.clone();
            let newest = match req
                .created_to
                .as_deref()
                .and_then(|to| clock::parse_bound(to, DayEnd::End))
            {
                Some(to) if to < now => clock::month_of(to),
                _ => clock::month_of(now),
            };
            let horizon = clock::month_of(now - time::Duration::days(i64::from(retention_days)));
            let oldest = match req
                .created_from
                .as_deref()
                .and_then(|f| clock::parse_bound(f, DayEnd::Start))
            {
                Some(from) if clock::month_of(from) > horizon => clock::month_of(from),
                _ => horizon,
            };
            (
                if req.hidden {
                    ListIndex::HiddenByMonth
                } else {
                    ListIndex::ByMonth
                },
                Partitions::Months { newest, oldest },
            )
        }
    };
    let scope = format!(
        "{}:{}|tenant={}|type={}|status={}|user={}|q={}|from={}|to={}|hidden={}",
        caller.role.key(),
        caller.tenant,
        tenant.as_deref().unwrap_or("*"),
        req.job_type.map(JobType::key).unwrap_or(""),
        req.status.map(JobStatus::key).unwrap_or(""),
        req.user.as_deref().unwrap_or(""),
        req.search.as_deref().unwrap_or(""),
        req.created_from.as_deref().unwrap_or(""),
        req.created_to.as_deref().unwrap_or(""),
        req.hidden,
    );
    Ok(ListPlan {
        index,
        partitions,
        // `list_sk` is `<created_at>#<id>`: '#' sorts before digits, '~' after every id char.
        sort_from: req.created_from.clone(),
        sort_to: req.created_to.as_ref().map(|to| format!("{to}#~")),
        filter,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_core::domain::auth::Role;
    use time::macros::datetime;

    fn q(pairs: &[(&str, &str)]) -> Result<ListRequest, ApiError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        ListRequest::parse(&owned)
    }

    fn caller(role: Role) -> Caller {
        Caller {
            user: "alice".into(),
            tenant: "acme".into(),
            role,
            origin: Default::default(),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

    #[test]
    fn parses_every_parameter() {
        let req = q(&[
            ("type", "ai_text_embedding"),
            ("status", "running"),
            ("user", "bob"),
            ("tenant", "acme"),
            ("q", " Emb "),
            ("created_from", "2026-11-01"),
            ("created_to", "2026-11-30"),
            ("limit", "50"),
            ("cursor", "abc"),
        ])
        .unwrap();
        assert_eq!(req.job_type, Some(JobType::AiTextEmbedding));
        assert_eq!(req.status, Some(JobStatus::Running));
        assert_eq!(req.search.as_deref(), Some("emb"));
        assert_eq!(
            req.created_from.as_deref(),
            Some("2026-11-01T00:00:00.000Z")
        );
        assert_eq!(req.created_to.as_deref(), Some("2026-11-30T23:59:59.999Z"));
        assert_eq!(req.limit, 50);
        assert_eq!(q(&[]).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(
            q(&[("q", "")]).unwrap().search,
            None,
            "an empty search is no search"
        );
        // Bounds beyond the years keys can hold are clamped, not refused.
        let far = q(&[
            ("created_from", "0000-01-01T00:00:00+01:00"),
            ("created_to", "9999-12-31T23:59:59-12:00"),
        ])
        .unwrap();
        assert_eq!(
            far.created_from.as_deref(),
            Some("0000-01-01T00:00:00.000Z")
        );
        assert_eq!(far.created_to.as_deref(), Some("9999-12-31T23:59:59.999Z"));
    }

    #[test]
    fn bad_parameters_are_400_naming_the_parameter() {
        for (pairs, field) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "101")], "limit"),
            (vec![("limit", "ten")], "limit"),
            (vec![("type", "reboot")], "type"),
            (vec![("status", "done")], "status"),
            (vec![("tenant", "ACME")], "tenant"),
            (vec![("created_from", "last week")], "created_from"),
            (
                vec![("created_from", "2026-11-30"), ("created_to", "2026-11-01")],
                "created_from",
            ),
            (vec![("sort", "asc")], "sort"),
            (vec![("limit", "5"), ("limit", "6")], "limit"),
            (vec![("type", "")], "type"),
            (vec![("status", ""), ("q", "")], "status"),
            (vec![("created_to", "")], "created_to"),
        ] {
            let err = q(&pairs).unwrap_err();
            assert_eq!(
                (err.status(), err.field.as_deref()),
                (400, Some(field)),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn members_list_their_own_tenant_only() {
        let member = caller(Role::Operator);
        let plan = plan(&member, &q(&[]).unwrap(), NOW, 90).unwrap();
        assert_eq!(
            (plan.index, plan.partitions),
            (ListIndex::ByTenant, Partitions::One("acme".into()))
        );
        let err = super::plan(&member, &q(&[("tenant", "globex")]).unwrap(), NOW, 90).unwrap_err();
        assert_eq!((err.status(), err.field.as_deref()), (403, Some("tenant")));
    }

    #[test]
    fn user_filter_uses_the_per_user_index_within_a_tenant() {
        let p = plan(
            &caller(Role::PlatformAdmin),
            &q(&[("tenant", "globex"), ("user", "bob")]).unwrap(),
            NOW,
            90,
        )
        .unwrap();
        assert_eq!(p.index, ListIndex::ByTenantUser);
        assert_eq!(p.partitions, Partitions::One("globex#bob".into()));
        assert_eq!(p.filter.user, None);
    }

    #[test]
    fn admin_without_tenant_walks_months_back_to_the_horizon() {
        let p = plan(
            &caller(Role::PlatformAdmin),
            &q(&[("user", "bob")]).unwrap(),
            NOW,
            90,
        )
        .unwrap();
        assert_eq!(p.index, ListIndex::ByMonth);
        assert_eq!(
            p.partitions,
            Partitions::Months {
                newest: "2026-11".into(),
                oldest: "2026-08".into()
            }
        );
        assert_eq!(p.filter.user.as_deref(), Some("bob"));
        let p = plan(
            &caller(Role::PlatformAdmin),
            &q(&[("created_from", "2026-10-15"), ("created_to", "2026-10-20")]).unwrap(),
            NOW,
            90,
        )
        .unwrap();
        assert_eq!(
            p.partitions,
            Partitions::Months {
                newest: "2026-10".into(),
                oldest: "2026-10".into()
            }
        );
        assert_eq!(p.sort_to.as_deref(), Some("2026-10-20T23:59:59.999Z#~"));
    }

    #[test]
    fn hidden_jobs_are_listed_from_the_hidden_indexes() {
        let p = plan(
            &caller(Role::Operator),
            &q(&[("hidden", "true"), ("user", "bob")]).unwrap(),
            NOW,
            90,
        )
        .unwrap();
        assert_eq!(
            (p.index, p.partitions, p.filter.user.as_deref()),
            (
                ListIndex::HiddenByTenant,
                Partitions::One("acme".into()),
                Some("bob")
            )
        );
        let p = plan(
            &caller(Role::PlatformAdmin),
            &q(&[("hidden", "true")]).unwrap(),
            NOW,
            90,
        )
        .unwrap();
        assert_eq!(p.index, ListIndex::HiddenByMonth);
        let visible = plan(
            &caller(Role::PlatformAdmin),
            &q(&[("hidden", "false")]).unwrap(),
            NOW,
            90,
        )
        .unwrap();
        assert!(
            visible.index == ListIndex::ByMonth && visible.scope != p.scope,
            "a cursor of one list is refused by the other"
        );
        assert_eq!(
            q(&[("hidden", "yes")]).unwrap_err().field.as_deref(),
            Some("hidden")
        );
    }

    #[test]
    fn search_resolves_matching_types_and_scope_binds_filters() {
        let admin = caller(Role::PlatformAdmin);
        let p = plan(&admin, &q(&[("q", "sess")]).unwrap(), NOW, 90).unwrap();
        assert_eq!(
            p.filter.search.unwrap().types,
            vec![JobType::SessionTermination]
        );
        let a = plan(&admin, &q(&[("status", "failed")]).unwrap(), NOW, 90)
            .unwrap()
            .scope;
        let b = plan(&admin, &q(&[("status", "running")]).unwrap(), NOW, 90)
            .unwrap()
            .scope;
        let c = plan(
            &caller(Role::Operator),
            &q(&[("status", "failed")]).unwrap(),
            NOW,
            90,
        )
        .unwrap()
        .scope;
        assert!(a != b && a != c);
    }
}
