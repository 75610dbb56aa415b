//! What a job is, as the API shows it.

use serde::{Deserialize, Serialize};

use crate::domain::registry::{JobTypeSpec, REGISTRY};

/// A job type. Each variant has one entry in [`REGISTRY`](crate::domain::registry::REGISTRY), in
/// the same order; its serde name is the entry's `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    BulkMessageSending,
    SessionTermination,
    AiTextEmbedding,
    ProfileFieldUpdate,
}

impl JobType {
    pub const ALL: [JobType; 4] = [
        JobType::BulkMessageSending,
        JobType::SessionTermination,
        JobType::AiTextEmbedding,
        JobType::ProfileFieldUpdate,
    ];

    /// This type's entry in the registry: key, label, chunk size, limits, validation.
    /// A new variant fails to compile here until it has its entry.
    pub fn spec(self) -> &'static JobTypeSpec {
        match self {
            JobType::BulkMessageSending => &REGISTRY[0],
            JobType::SessionTermination => &REGISTRY[1],
            JobType::AiTextEmbedding => &REGISTRY[2],
            JobType::ProfileFieldUpdate => &REGISTRY[3],
        }
    }

    pub fn key(self) -> &'static str {
        self.spec().key
    }

    pub fn label(self) -> &'static str {
        self.spec().label
    }

    pub fn parse(key: &str) -> Option<JobType> {
        REGISTRY
            .iter()
            .find(|spec| spec.key == key)
            .map(|spec| spec.job_type)
    }

    /// Whether a search term (already lower-cased) names this type: a prefix of its key,
    /// of its label or of any word of its label ("embed" finds AI Text Embedding).
    pub fn matches_search(self, term: &str) -> bool {
        let label = self.label().to_ascii_lowercase();
        self.key().starts_with(term)
            || label.starts_with(term)
            || label.split(' ').any(|word| word.starts_with(term))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    CompletedWithErrors,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::CompletedWithErrors,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn key(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::CompletedWithErrors => "completed_with_errors",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(key: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.key() == key)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Items not done because the job was cancelled.
    #[serde(default)]
    pub cancelled: u64,
    pub percent: u8,
}

impl Progress {
    /// A job's progress: `percent` is the settled share of `total`, rounded down, and 100
    /// for a job that ended `completed` or `completed_with_errors` (also with 0 items, e.g. a
    /// session termination that matched no session).
    pub fn of(status: JobStatus, total: u64, succeeded: u64, failed: u64) -> Progress {
        let progress = Progress::new(total, succeeded, failed);
        match status {
            JobStatus::Completed | JobStatus::CompletedWithErrors => Progress {
                percent: 100,
                ..progress
            },
            _ => progress,
        }
    }

    pub fn new(total: u64, succeeded: u64, failed: u64) -> Progress {
        let done = succeeded.saturating_add(failed).min(total);
        let percent = done
            .saturating_mul(100)
            .checked_div(total)
            .map_or(0, |p| p as u8);
        Progress {
            total,
            succeeded,
            failed,
            cancelled: 0,
            percent,
        }
    }
}

/// One sampled item failure, kept on the job for its details view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    pub item: String,
    pub reason: String,
}

/// A job as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub type_label: String,
    pub tenant: String,
    pub status: JobStatus,
    pub progress: Progress,
    pub user: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    /// Set once a cancel was asked for; the job ends `cancelled` when its chunks are settled.
    pub cancel_requested_at: Option<String>,
    /// When the job was removed from the lists (listed with `hidden=true`), else `null`.
    pub hidden_at: Option<String>,
    /// Why an active job is not moving faster, when it is waiting (else `null`).
    pub waiting_for: Option<Waiting>,
    /// The job whose failed items this job retries (else `null`).
    pub retry_of: Option<String>,
    /// The jobs that retry this job's failed items, oldest first.
    pub retries: Vec<String>,
    /// The schedule that started the job (else `null`).
    pub schedule_id: Option<String>,
    pub params_summary: serde_json::Value,
    pub errors: Vec<ItemError>,
    /// A queued job from a file whose plan pauses between invocations: rows of the file
    /// read so far (else `null`).
    pub rows_read: Option<u64>,
    /// Whether the job's items come from an uploaded file (`input.upload_id`).
    pub from_file: bool,
}

/// What an active job is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Waiting {
    /// Nothing settled yet: the job is queued, or its chunks wait behind other work on
    /// its type's queue.
    Capacity,
    /// A chunk met a downstream rate limit within the last [`Waiting::PACED_FOR_SECONDS`]:
    /// the job runs at the pace the downstream allows.
    RateLimit,
    /// The tenant runs its `max_running_jobs` of this type: the job starts, in creation
    /// order, as they end.
    TenantLimit,
}

impl Waiting {
    /// How long after its last throttled call a job still shows `rate_limit`.
    pub const PACED_FOR_SECONDS: i64 = 60;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_keys_round_trip_through_serde_and_parse() {
        for t in JobType::ALL {
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, serde_json::json!(t.key()));
            assert_eq!(JobType::parse(t.key()), Some(t));
        }
        assert_eq!(JobType::parse("Bulk Message Sending"), None);
    }

    #[test]
    fn search_matches_key_label_and_label_words() {
        assert!(JobType::AiTextEmbedding.matches_search("embed"));
        assert!(JobType::AiTextEmbedding.matches_search("ai text"));
        assert!(JobType::BulkMessageSending.matches_search("bulk_m"));
        assert!(!JobType::BulkMessageSending.matches_search("session"));
    }

    #[test]
    fn percent_is_floor_of_done_over_total_and_safe_for_zero() {
        assert_eq!(Progress::new(0, 0, 0).percent, 0);
        assert_eq!(
            Progress::of(JobStatus::Completed, 0, 0, 0).percent,
            100,
            "a completed job with no items is done"
        );
        assert_eq!(Progress::of(JobStatus::Running, 0, 0, 0).percent, 0);
        assert_eq!(
            Progress::of(JobStatus::Cancelled, 10, 2, 0).percent,
            20,
            "a cancelled job shows how far it got"
        );
        assert_eq!(Progress::new(3, 1, 0).percent, 33);
        assert_eq!(Progress::new(3, 2, 1).percent, 100);
        assert_eq!(Progress::new(10, 20, 0).percent, 100);
    }
}
