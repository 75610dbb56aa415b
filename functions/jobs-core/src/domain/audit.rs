//! The audit trail: who did what to which job, API key or sender, from where, with what
//! outcome, and how each job ended. Entries live in their own table (`AUDIT_TABLE`, docs/design.md "Audit
//! trail"), are only ever appended (a conditional put; no role of the stack holds an update
//! or delete action on the table) and expire after `AUDIT_RETENTION_DAYS`, by default
//! longer than the jobs they describe.
//!
//! | item  | pk         | sk                                          | `by_day` index partition | `by_tenant_day` index partition |
//! |-------|------------|---------------------------------------------|------------------------|------|
//! | a job's entry | `JOB#<id>` | `<at>#<id>#0#created`, `<at>#<id>#9#ended`, or for an operator's action `<at>#<id>#5#<ulid>#<kind>` | `audit_day` = `<yyyy-mm-dd>#<shard>` | `audit_tenant_day` = `<tenant>#<yyyy-mm-dd>#<shard>` |
//! | an API key's or a sender's entry | `TENANT#<tenant>` | `<at>#<key id or sender>#5#<ulid>#<kind>` | the same | the same |
//!
//! `at` is the fixed-width UTC time of [`crate::clock`], so string order is time order in
//! both the job's partition and the index. Entries whose event happens once per job have a
//! key without a random part, so writing them again (a retried request, a redelivered
//! message) changes nothing.

use serde::{Deserialize, Serialize};

use crate::domain::auth::{Caller, Role};
use crate::domain::job::JobStatus;
use crate::domain::record::{JobRecord, job_pk};
use crate::error::StoreError;
use crate::ports::AuditLog;

/// Partitions of one day in the `by_day` index: DynamoDB takes at most 1,000 writes per
/// second per partition (Developer Guide, "Partitions and data distribution"); a bulk
/// action on 1,000 jobs writes 1,000 entries in about a second, so a day is spread over
/// four, by the last character of the job id.
pub const AUDIT_SHARDS: u32 = 4;
/// Days an entry is kept when `AUDIT_RETENTION_DAYS` is not set (jobs: 90).
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 400;

/// What happened to a job, an API key or a sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    /// The worker planned the job (taken from the job's `started_at`, not stored).
    Started,
    CancelRequested,
    Hidden,
    Unhidden,
    /// A new job was created over this job's failed items (`related_job`).
    Retried,
    /// The job reached its final status (`status`), by whatever path.
    Ended,
    /// A tenant admin created an API key (`api_key_id`).
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// An API key was used for the first time in a UTC day (the actor is the key).
    ApiKeyUsed,
    /// A sender (`sender`: an address or a domain) was registered for the tenant.
    SenderAdded,
    /// A sender was removed from the tenant.
    SenderRemoved,
    /// A platform admin set the tenant's limits.
    LimitsChanged,
}

impl EventKind {
    pub fn key(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Started => "started",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::Hidden => "hidden",
            EventKind::Unhidden => "unhidden",
            EventKind::Retried => "retried",
            EventKind::Ended => "ended",
            EventKind::ApiKeyCreated => "api_key_created",
            EventKind::ApiKeyRevoked => "api_key_revoked",
            EventKind::ApiKeyUsed => "api_key_used",
            EventKind::SenderAdded => "sender_added",
            EventKind::SenderRemoved => "sender_removed",
            EventKind::LimitsChanged => "limits_changed",
        }
    }
}

/// Who acted: the token's claims (an API key acts as `api_key:<id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    pub role: Role,
    pub tenant: String,
}

impl Actor {
    pub fn of(caller: &Caller) -> Actor {
        Actor {
            sub: caller.actor(),
            role: caller.role,
            tenant: caller.tenant.clone(),
        }
    }
}

/// What a tenant-level entry is about.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    /// An API key, by id.
    ApiKey(&'a str),
    /// A sender: an address or a domain.
    Sender(&'a str),
    /// The tenant's limits, as they were and as they are set.
    Limits(LimitsChange),
}

/// A change of a tenant's limits, recorded on `limits_changed`: every limit before and
/// after (the stack's defaults before the first change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsChange {
    pub before: crate::domain::limits::TenantLimits,
    pub after: crate::domain::limits::TenantLimits,
}

/// Where an operator's request came from: API Gateway's request id and source IP, and the
/// `User-Agent` header. Each is absent when the request did not carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// On a scheduled run's entries: the schedule, which is then the actor
    /// (`sub` = `schedule:<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
}

/// Longest user agent kept; longer ones are cut (a header can hold 8 KiB).
pub const MAX_USER_AGENT_CHARS: usize = 256;

impl Origin {
    pub fn new(
        request_id: Option<String>,
        source_ip: Option<String>,
        user_agent: Option<&str>,
    ) -> Origin {
        Origin {
            request_id,
            source_ip,
            user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
            schedule_id: None,
        }
    }
}

/// One entry of the trail, as `GET /jobs/{id}/events` and `GET /audit` return it: about a
/// job (`job_id`), an API key (`api_key_id`), a sender (`sender`), or (none of them) the
/// tenant's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC, milliseconds.
    pub at: String,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The tenant of the job, key or sender.
    pub tenant: String,
    /// Who acted; absent for the service's own events (started, ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, flatten)]
    pub origin: Origin,
    /// `ok`, or the error code the action was refused with (e.g. `conflict`).
    pub outcome: String,
    /// On `ended`: the job's final status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// On `retried`: the new job; on `created`: the job whose items it retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_job: Option<String>,
    /// On `limits_changed`: the limits before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsChange>,
}

/// An audit table item: an event and its keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub pk: String,
    pub sk: String,
    /// The `by_day` index partition: `<yyyy-mm-dd>#<shard>`.
    pub audit_day: String,
    /// The `by_tenant_day` index partition: `<tenant>#<yyyy-mm-dd>#<shard>` (a tenant
    /// admin's view of its own trail).
    pub audit_tenant_day: String,
    /// Epoch seconds after which DynamoDB TTL removes the entry.
    pub expires_at: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// The partitions of a day (`yyyy-mm-dd`), one per shard: `by_day`'s, or with `tenant`
/// `by_tenant_day`'s.
pub fn day_partitions(day: &str, tenant: Option<&str>) -> Vec<String> {
    (0..AUDIT_SHARDS)
        .map(|shard| match tenant {
            Some(tenant) => format!("{tenant}#{day}#{shard}"),
            None => format!("{day}#{shard}"),
        })
        .collect()
}

/// `yyyy-mm-dd` of a fixed-width timestamp.
pub fn day_of(at: &str) -> &str {
    at.get(..10).unwrap_or(at)
}

fn shard_of(subject: &str) -> u32 {
    crate::domain::record::shard_of(subject, AUDIT_SHARDS)
}

impl AuditEvent {
    /// What the entry is about: the job id, the key id or the sender.
    pub fn subject(&self) -> &str {
        self.job_id
            .as_deref()
            .or(self.api_key_id.as_deref())
            .or(self.sender.as_deref())
            .unwrap_or_default()
    }
}

/// The sort key an event of `subject` (a job id, a key id, a sender) at `at` gets: see
/// the module table. Within one millisecond, a job's events keep their life-cycle order
/// (created, started, the operators' actions in the order this process recorded them,
/// ended).
pub fn event_sk(at: &str, subject: &str, kind: EventKind) -> String {
    match kind {
        EventKind::Created => format!("{at}#{subject}#0#created"),
        EventKind::Started => format!("{at}#{subject}#1#started"),
        EventKind::Ended => format!("{at}#{subject}#9#ended"),
        _ => format!("{at}#{subject}#5#{}#{}", next_ulid(), kind.key()),
    }
}

/// A ULID greater than every one this process made before (`ulid::Generator`: within a
/// millisecond, the previous one plus one).
fn next_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = generator.get_or_insert_with(ulid::Generator::new);
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

/// Writes the trail: the log and how long its entries are kept.
pub struct Audit<A> {
    log: A,
    retention_days: u32,
}

impl<A: AuditLog> Audit<A> {
    pub fn new(log: A, retention_days: u32) -> Audit<A> {
        Audit {
            log,
            retention_days,
        }
    }

    pub fn log(&self) -> &A {
        &self.log
    }

    /// Days an entry is kept; the job metrics' aggregates are kept as long.
    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// The entry of `event`, with its keys and expiry.
    pub fn record_of(&self, event: AuditEvent) -> AuditRecord {
        let expires_at = crate::clock::parse(&event.at)
            .unwrap_or_else(crate::clock::now)
            .unix_timestamp()
            + i64::from(self.retention_days) * 86_400;
        let subject = event.subject();
        let day = format!("{}#{}", day_of(&event.at), shard_of(subject));
        AuditRecord {
            pk: match &event.job_id {
                Some(id) => job_pk(id),
                None => format!("TENANT#{}", event.tenant),
            },
            sk: event_sk(&event.at, subject, event.kind),
            audit_tenant_day: format!("{}#{day}", event.tenant),
            audit_day: day,
            expires_at,
            event,
        }
    }

    /// Records that `caller` did `kind` (an API key's or a sender's kind) to `subject` of
    /// its `tenant` at `at` with `outcome` (`ok` or an error code).
    pub async fn tenant_action(
        &self,
        tenant: &str,
        subject: Subject<'_>,
        kind: EventKind,
        caller: &Caller,
        at: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let (api_key_id, sender, limits) = match subject {
            Subject::ApiKey(id) => (Some(id.to_string()), None, None),
            Subject::Sender(sender) => (None, Some(sender.to_string()), None),
            Subject::Limits(change) => (None, None, Some(change)),
        };
        let event = AuditEvent {
            at: at.to_string(),
            kind,
            job_id: None,
            api_key_id,
            sender,
            tenant: tenant.to_string(),
            actor: Some(Actor::of(caller)),
            origin: caller.origin.clone(),
            outcome: outcome.to_string(),
            status: None,
            related_job: None,
            limits,
        };
        self.log.append(&self.record_of(event)).await
    }

    /// Records that `caller` did `kind` to `job` at `at` with `outcome` (`ok` or an error
    /// code).
    pub async fn action(
        &self,
        job: &JobRecord,
        kind: EventKind,
        caller: &Caller,
        at: &str,
        outcome: &str,
        related_job: Option<&str>,
    ) -> Result<(), StoreError> {
        let event = AuditEvent {
            at: at.to_string(),
            kind,
            job_id: Some(job.id.clone()),
            api_key_id: None,
            sender: None,
            tenant: job.tenant.clone(),
            actor: Some(Actor::of(caller)),
            origin: caller.origin.clone(),
            outcome: outcome.to_string(),
            status: None,
            related_job: related_job.map(str::to_string),
            limits: None,
        };
        self.log.append(&self.record_of(event)).await
    }

    /// Records how `job` (now in its final status) ended; written once per job whoever
    /// calls it, as its key is the job's `completed_at`.
    pub async fn ended(&self, job: &JobRecord) -> Result<(), StoreError> {
        let event = AuditEvent {
            at: job
                .completed_at
                .clone()
                .unwrap_or_else(|| crate::clock::format(crate::clock::now())),
            kind: EventKind::Ended,
            job_id: Some(job.id.clone()),
            api_key_id: None,
            sender: None,
            tenant: job.tenant.clone(),
            actor: None,
            origin: Origin::default(),
            outcome: "ok".into(),
            status: Some(job.status),
            related_job: None,
            limits: None,
        };
        self.log.append(&self.record_of(event)).await
    }
}

/// The `started` event of a job, from its record.
pub fn started_event(job: &JobRecord) -> Option<(String, AuditEvent)> {
    let at = job.started_at.clone()?;
    let sk = event_sk(&at, &job.id, EventKind::Started);
    let event = AuditEvent {
        at,
        kind: EventKind::Started,
        job_id: Some(job.id.clone()),
        api_key_id: None,
        sender: None,
        tenant: job.tenant.clone(),
        actor: None,
        origin: Origin::default(),
        outcome: "ok".into(),
        status: None,
        related_job: None,
        limits: None,
    };
    Some((sk, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> AuditEvent {
        AuditEvent {
            at: "2026-11-30T10:00:00.000Z".into(),
            kind,
            job_id: Some("01JDQ0000000000000000000A1".into()),
            api_key_id: None,
            sender: None,
            tenant: "acme".into(),
            actor: Some(Actor {
                sub: "alice".into(),
                role: Role::Operator,
                tenant: "acme".into(),
            }),
            origin: Origin::new(
                Some("req-1".into()),
                Some("203.0.113.9".into()),
                Some("curl/8"),
            ),
            outcome: "ok".into(),
            status: None,
            related_job: None,
            limits: None,
        }
    }

    #[test]
    fn keys_sort_by_time_and_once_per_job_events_have_fixed_keys() {
        let audit = Audit::new(crate::memory::MemoryAudit::default(), 400);
        let created = audit.record_of(event(EventKind::Created));
        assert_eq!(created.pk, "JOB#01JDQ0000000000000000000A1");
        assert_eq!(
            created.sk,
            "2026-11-30T10:00:00.000Z#01JDQ0000000000000000000A1#0#created"
        );
        assert_eq!(audit.record_of(event(EventKind::Created)).sk, created.sk);
        // '1' is 0x31 = 49: shard 1.
        assert_eq!(created.audit_day, "2026-11-30#1");
        assert_eq!(created.audit_tenant_day, "acme#2026-11-30#1");
        assert_eq!(created.expires_at, 1_796_032_800 + 400 * 86_400);
        let hidden = [
            audit.record_of(event(EventKind::Hidden)),
            audit.record_of(event(EventKind::Hidden)),
        ];
        assert!(
            hidden[0]
                .sk
                .starts_with("2026-11-30T10:00:00.000Z#01JDQ0000000000000000000A1#5#")
                && hidden[0].sk.ends_with("#hidden")
        );
        assert!(
            hidden[0].sk < hidden[1].sk,
            "two hides are two entries, in the order recorded"
        );
        let ended = audit.record_of(AuditEvent {
            kind: EventKind::Ended,
            ..event(EventKind::Ended)
        });
        assert!(
            created.sk < hidden[0].sk && hidden[1].sk < ended.sk,
            "life-cycle order within a millisecond"
        );
    }

    #[test]
    fn an_entry_round_trips_through_a_dynamodb_item_and_its_json_is_flat() {
        let audit = Audit::new(crate::memory::MemoryAudit::default(), 400);
        let record = audit.record_of(event(EventKind::CancelRequested));
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&record).unwrap();
        assert!(
            item.contains_key("request_id")
                && item.contains_key("source_ip")
                && item.contains_key("user_agent")
        );
        let back: AuditRecord = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back, record);
        let json = serde_json::to_value(&record.event).unwrap();
        assert_eq!(json["kind"], "cancel_requested");
        assert_eq!(
            json["actor"],
            serde_json::json!({"sub": "alice", "role": "operator", "tenant": "acme"})
        );
        assert_eq!(
            (
                json["request_id"].as_str(),
                json["source_ip"].as_str(),
                json["user_agent"].as_str()
            ),
            (Some("req-1"), Some("203.0.113.9"), Some("curl/8"))
        );
    }

    #[test]
    fn a_key_or_sender_entry_lives_in_its_tenants_partition() {
        let audit = Audit::new(crate::memory::MemoryAudit::default(), 400);
        let key = audit.record_of(AuditEvent {
            job_id: None,
            api_key_id: Some("k3y1d".into()),
            ..event(EventKind::ApiKeyCreated)
        });
        assert_eq!(key.pk, "TENANT#acme");
        assert!(key.sk.starts_with("2026-11-30T10:00:00.000Z#k3y1d#5#"));
        assert!(key.sk.ends_with("#api_key_created"));
        assert!(key.audit_tenant_day.starts_with("acme#2026-11-30#"));
        let json = serde_json::to_value(&key.event).unwrap();
        assert_eq!(json["api_key_id"], "k3y1d");
        assert!(json.get("job_id").is_none() && json.get("sender").is_none());
        assert_eq!(
            day_partitions("2026-11-30", Some("acme"))[3],
            "acme#2026-11-30#3"
        );
        assert_eq!(day_partitions("2026-11-30", None)[0], "2026-11-30#0");
    }

    #[test]
    fn long_user_agents_are_cut() {
        let origin = Origin::new(None, None, Some(&"x".repeat(10_000)));
        assert_eq!(
            origin.user_agent.map(|ua| ua.len()),
            Some(MAX_USER_AGENT_CHARS)
        );
    }
}
