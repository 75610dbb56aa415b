//! Per-type job parameters: their shape, their limits, and the error that names the field.
//!
//! Limits (also in the OpenAPI document):
//! - bulk_message_sending: channel `email`; `from` a valid address; `subject` 1..=998 chars,
//!   no line breaks; `body` 1..=100,000 chars; `recipients` 1..=10,000 valid addresses.
//! - session_termination: exactly one of `user_ids` (1..=10,000 ids), `all_users: true`,
//!   `idle_for_seconds` (60..=31,536,000).
//! - ai_text_embedding: `documents` 1..=5,000 of `{id, text}` (unique ids of 1..=256
//!   chars, text 1..=8,000 chars); `model` `hashing-v1` (default) or
//!   `amazon.titan-embed-text-v2`.
//! - profile_field_update: `field` matching `^[a-z][a-z0-9_]{0,63}$` and not protected;
//!   `value` a string (≤ 4,096 chars), number, bool or null (null removes the field);
//!   `user_ids` 1..=10,000.
//! - user ids: 1..=128 printable characters.

use crate::domain::template::Template;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::job::JobType;
use crate::error::ApiError;

pub const MAX_RECIPIENTS: usize = 10_000;
pub const MAX_USER_IDS: usize = 10_000;
pub const MAX_DOCUMENTS: usize = 5_000;
pub const MAX_DOCUMENT_CHARS: usize = 8_000;
pub const MAX_DOCUMENT_ID_CHARS: usize = 256;
pub const MAX_SUBJECT_CHARS: usize = 998;
pub const MAX_BODY_CHARS: usize = 100_000;
pub const MAX_USER_ID_CHARS: usize = 128;
pub const MAX_FIELD_VALUE_CHARS: usize = 4_096;
pub const MIN_IDLE_SECONDS: u64 = 60;
pub const MAX_IDLE_SECONDS: u64 = 31_536_000;
pub const EMBEDDING_MODELS: [&str; 2] = ["hashing-v1", "amazon.titan-embed-text-v2"];
/// Fields no bulk update may touch: identity, tenancy and credentials.
pub const PROTECTED_FIELDS: [&str; 10] = [
    "id",
    "user_id",
    "tenant",
    "tenant_id",
    "email",
    "role",
    "password",
    "password_hash",
    "created_at",
    "updated_at",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkMessageParams {
    pub channel: String,
    pub from: String,
    pub subject: String,
    pub body: String,
    pub recipients: Vec<String>,
}

/// One recipient of a Bulk Message Sending job: an address (inline jobs, and files with
/// no other column), or an address with the recipient's fields (a file's other columns),
/// which fill the subject's and body's `{{field}}`s ([`Template`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recipient {
    Address(String),
    WithFields {
        email: String,
        fields: std::collections::BTreeMap<String, String>,
    },
}

impl Recipient {
    pub fn email(&self) -> &str {
        match self {
            Recipient::Address(email) | Recipient::WithFields { email, .. } => email,
        }
    }
}

/// One user of a Profile Field Update job: a user id (the job's `value`), or, from a
/// file with a `value` column, a user id with its own value (a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileTarget {
    User(String),
    WithValue { user_id: String, value: String },
}

impl ProfileTarget {
    pub fn user_id(&self) -> &str {
        match self {
            ProfileTarget::User(id) | ProfileTarget::WithValue { user_id: id, .. } => id,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTerminationParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<Vec<String>>,
    /// Named sessions (a retry of sessions a criteria job found: `retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_users: Option<bool>,
    #[serde(
        default,
        deserialize_with = "whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_for_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingParams {
    pub documents: Vec<Document>,
    #[serde(default = "default_model")]
    pub model: String,
}

fn default_model() -> String {
    EMBEDDING_MODELS[0].to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFieldParams {
    pub field: String,
    pub value: Value,
    pub user_ids: Vec<String>,
}

/// Parameters that passed validation, in their stored form (defaults filled in).
#[derive(Debug, Clone)]
pub struct ValidParams {
    pub params: Value,
    /// What the Jobs page shows about the request without loading the whole input.
    pub summary: Value,
    /// Items known at creation; 0 when the worker discovers them (criteria-based jobs).
    pub total: u64,
    /// An address the job will send email from: the API checks that SES may send from it
    /// before accepting the job (422 on `params.from`).
    pub sender: Option<String>,
}

/// JSON Schema's `integer` includes `60.0`; serde's `u64` alone would refuse it.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=9.0e15).contains(f))
                .map(|f| f as u64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("must be a whole number of seconds"))
}

/// One job type's params: how they decode (serde, `deny_unknown_fields`) and what a valid
/// request must hold beyond their shape.
pub trait JobParams: DeserializeOwned {
    /// Params that may be JSON `null` (every other optional param is left out, never null).
    const NULLABLE: &'static [&'static str] = &[];

    /// Checks the limits and returns the params in their stored form.
    fn check(self) -> Result<ValidParams, ApiError>;

    /// Checks params whose items come from an uploaded file (`input.upload_id`): all but
    /// the item list, which the file gives (and `total` is 0 until the plan counts it).
    fn check_for_file(self) -> Result<ValidParams, ApiError>;
}

/// Validates the params of a job of `job_type` (its registry entry's `validate`).
pub fn validate(job_type: JobType, params: Value) -> Result<ValidParams, ApiError> {
    (job_type.spec().validate)(params)
}

/// Validates the params of a job of `job_type` whose items come from a file: the type's
/// item field (`recipients`, `documents`, `user_ids`) must be left out (`422` naming it).
pub fn validate_for_file(job_type: JobType, mut params: Value) -> Result<ValidParams, ApiError> {
    if let crate::domain::registry::ItemSource::Param(field) = job_type.spec().items
        && let Some(object) = params.as_object_mut()
    {
        if object.contains_key(field) {
            return Err(ApiError::invalid(
                format!("params.{field}"),
                "the items come from input.upload_id: leave this out",
            ));
        }
        object.insert(field.to_string(), Value::Array(Vec::new()));
    }
    (job_type.spec().validate_file)(params)
}

/// Decodes `params` as `P` and checks them for a job whose items come from a file: each
/// registry entry's `validate_file`.
pub fn validate_file_as<P: JobParams>(params: Value) -> Result<ValidParams, ApiError> {
    decode::<P>(params)?.check_for_file()
}

/// Decodes `params` as `P` and checks them: what each registry entry's `validate` is.
pub fn validate_as<P: JobParams>(params: Value) -> Result<ValidParams, ApiError> {
    let null_key = params.as_object().and_then(|o| {
        o.iter()
            .find(|(k, v)| v.is_null() && !P::NULLABLE.contains(&k.as_str()))
            .map(|(k, _)| k.clone())
    });
    if let Some(key) = null_key {
        return Err(ApiError::invalid(
            format!("params.{}", key.chars().take(64).collect::<String>()),
            "must not be null (leave it out instead)",
        ));
    }
    decode::<P>(params)?.check()
}

/// Decodes with the path of the offending field, e.g. `params.recipients[3]`.
fn decode<T: DeserializeOwned>(params: Value) -> Result<T, ApiError> {
    if !params.is_object() {
        return Err(ApiError::invalid("params", "must be an object"));
    }
    serde_path_to_error::deserialize(params).map_err(|err| ApiError::undecodable(err, "params"))
}

fn stored<T: Serialize>(params: &T, summary: Value, total: usize) -> Result<ValidParams, ApiError> {
    let params =
        serde_json::to_value(params).map_err(|e| ApiError::invalid("params", e.to_string()))?;
    Ok(ValidParams {
        params,
        summary,
        total: total as u64,
        sender: None,
    })
}

impl BulkMessageParams {
    /// Everything but the recipients.
    fn check_message(&self) -> Result<(), ApiError> {
        if self.channel != "email" {
            return Err(ApiError::invalid("params.channel", "must be \"email\""));
        }
        if !is_email(&self.from) {
            return Err(ApiError::invalid(
                "params.from",
                "must be a valid email address",
            ));
        }
        text_len("params.subject", &self.subject, MAX_SUBJECT_CHARS)?;
        if self.subject.contains(['\r', '\n']) {
            return Err(ApiError::invalid(
                "params.subject",
                "must not contain line breaks",
            ));
        }
        text_len("params.body", &self.body, MAX_BODY_CHARS)
    }

    fn summary(&self, recipients: Option<usize>) -> Value {
        json!({
            "channel": self.channel, "from": self.from, "subject": self.subject,
            "recipients": recipients,
        })
    }
}

impl JobParams for BulkMessageParams {
    fn check(self) -> Result<ValidParams, ApiError> {
        self.check_message()?;
        count("params.recipients", self.recipients.len(), MAX_RECIPIENTS)?;
        if let Some(i) = self.recipients.iter().position(|r| !is_email(r)) {
            return Err(ApiError::invalid(
                format!("params.recipients[{i}]"),
                "must be a valid email address",
            ));
        }
        let summary = self.summary(Some(self.recipients.len()));
        Ok(ValidParams {
            sender: Some(self.from.clone()),
            ..stored(&self, summary, self.recipients.len())?
        })
    }

    /// From a file, the subject and body are templates ([`Template`]): checked here.
    fn check_for_file(self) -> Result<ValidParams, ApiError> {
        self.check_message()?;
        Template::parse(&self.subject).map_err(|why| ApiError::invalid("params.subject", why))?;
        Template::parse(&self.body).map_err(|why| ApiError::invalid("params.body", why))?;
        let summary = self.summary(None);
        Ok(ValidParams {
            sender: Some(self.from.clone()),
            ..stored(&self, summary, 0)?
        })
    }
}

impl JobParams for SessionTerminationParams {
    fn check(self) -> Result<ValidParams, ApiError> {
        let chosen = [
            self.user_ids.is_some(),
            self.session_ids.is_some(),
            self.all_users.is_some(),
            self.idle_for_seconds.is_some(),
        ];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(ApiError::invalid(
                "params",
                "give exactly one of user_ids, session_ids, all_users, idle_for_seconds",
            ));
        }
        let (summary, total) = if let Some(ids) = &self.user_ids {
            user_ids("params.user_ids", ids)?;
            (
                json!({"selection": "user_ids", "users": ids.len()}),
                ids.len(),
            )
        } else if let Some(ids) = &self.session_ids {
            user_ids("params.session_ids", ids)?;
            (
                json!({"selection": "session_ids", "sessions": ids.len()}),
                ids.len(),
            )
        } else if let Some(all) = self.all_users {
            if !all {
                return Err(ApiError::invalid(
                    "params.all_users",
                    "must be true when given",
                ));
            }
            (json!({"selection": "all_users"}), 0)
        } else {
            let idle = self.idle_for_seconds.unwrap_or_default();
            if !(MIN_IDLE_SECONDS..=MAX_IDLE_SECONDS).contains(&idle) {
                return Err(ApiError::invalid(
                    "params.idle_for_seconds",
                    format!("must be between {MIN_IDLE_SECONDS} and {MAX_IDLE_SECONDS}"),
                ));
            }
            (
                json!({"selection": "idle_for_seconds", "idle_for_seconds": idle}),
                0,
            )
        };
        stored(&self, summary, total)
    }

    /// A file names the users (`user_id`) or sessions (`session_id`): no selection in params.
    fn check_for_file(self) -> Result<ValidParams, ApiError> {
        if self.user_ids.is_some()
            || self.session_ids.is_some()
            || self.all_users.is_some()
            || self.idle_for_seconds.is_some()
        {
            return Err(ApiError::invalid(
                "params",
                "the users or sessions come from input.upload_id: give no selection",
            ));
        }
        stored(&self, json!({"selection": "file"}), 0)
    }
}

impl EmbeddingParams {
    fn check_model(&self) -> Result<(), ApiError> {
        if !EMBEDDING_MODELS.contains(&self.model.as_str()) {
            return Err(ApiError::invalid(
                "params.model",
                format!("must be one of {}", EMBEDDING_MODELS.join(", ")),
            ));
        }
        Ok(())
    }
}

impl JobParams for EmbeddingParams {
    fn check(self) -> Result<ValidParams, ApiError> {
        self.check_model()?;
        count("params.documents", self.documents.len(), MAX_DOCUMENTS)?;
        let mut seen = std::collections::HashSet::with_capacity(self.documents.len());
        for (i, doc) in self.documents.iter().enumerate() {
            text_len(
                &format!("params.documents[{i}].id"),
                &doc.id,
                MAX_DOCUMENT_ID_CHARS,
            )?;
            text_len(
                &format!("params.documents[{i}].text"),
                &doc.text,
                MAX_DOCUMENT_CHARS,
            )?;
            if !seen.insert(doc.id.as_str()) {
                return Err(ApiError::invalid(
                    format!("params.documents[{i}].id"),
                    "duplicate id",
                ));
            }
        }
        let summary = json!({"model": self.model, "documents": self.documents.len()});
        stored(&self, summary, self.documents.len())
    }

    fn check_for_file(self) -> Result<ValidParams, ApiError> {
        self.check_model()?;
        stored(&self, json!({"model": self.model, "documents": null}), 0)
    }
}

impl ProfileFieldParams {
    /// The field and value; the kind of value for the summary.
    fn check_update(&self) -> Result<&'static str, ApiError> {
        if !is_field_name(&self.field) {
            return Err(ApiError::invalid(
                "params.field",
                "must match ^[a-z][a-z0-9_]{0,63}$",
            ));
        }
        if PROTECTED_FIELDS.contains(&self.field.as_str()) {
            return Err(ApiError::invalid(
                "params.field",
                "is protected and cannot be updated",
            ));
        }
        let value_kind = match &self.value {
            Value::Null => "remove",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(s) if s.chars().count() <= MAX_FIELD_VALUE_CHARS => "string",
            Value::String(_) => {
                return Err(ApiError::invalid(
                    "params.value",
                    format!("must be at most {MAX_FIELD_VALUE_CHARS} characters"),
                ));
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(ApiError::invalid(
                    "params.value",
                    "must be a string, number, bool or null",
                ));
            }
        };
        Ok(value_kind)
    }
}

impl JobParams for ProfileFieldParams {
    const NULLABLE: &'static [&'static str] = &["value"];

    fn check(self) -> Result<ValidParams, ApiError> {
        let value_kind = self.check_update()?;
        user_ids("params.user_ids", &self.user_ids)?;
        let summary =
            json!({"field": self.field, "value": value_kind, "users": self.user_ids.len()});
        stored(&self, summary, self.user_ids.len())
    }

    fn check_for_file(self) -> Result<ValidParams, ApiError> {
        let value_kind = self.check_update()?;
        let summary = json!({"field": self.field, "value": value_kind, "users": null});
        stored(&self, summary, 0)
    }
}

fn count(field: &str, n: usize, max: usize) -> Result<(), ApiError> {
    if n == 0 || n > max {
        return Err(ApiError::invalid(
            field,
            format!("must hold 1 to {max} items, got {n}"),
        ));
    }
    Ok(())
}

fn text_len(field: &str, text: &str, max: usize) -> Result<(), ApiError> {
    let n = text.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(())
}

fn user_ids(field: &str, ids: &[String]) -> Result<(), ApiError> {
    count(field, ids.len(), MAX_USER_IDS)?;
    match ids.iter().position(|id| !is_user_id(id)) {
        Some(i) => Err(ApiError::invalid(
            format!("{field}[{i}]"),
            format!("must be 1 to {MAX_USER_ID_CHARS} printable characters"),
        )),
        None => Ok(()),
    }
}

pub fn is_user_id(id: &str) -> bool {
    let n = id.chars().count();
    (1..=MAX_USER_ID_CHARS).contains(&n) && !id.chars().any(char::is_control)
}

fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// A pragmatic address check (what mail providers accept), not the full RFC 5322 grammar:
/// one `@`, a local part of 1..=64 visible characters, a domain of dot-separated labels.
pub fn is_email(address: &str) -> bool {
    if address.len() > 254 {
        return false;
    }
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"@()<>[]\\,;:\"".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(t: JobType, params: Value) -> Option<String> {
        validate(t, params).err().and_then(|e| e.field)
    }

    fn bulk(recipients: Value) -> Value {
        json!({"channel": "email", "from": "ops@example.com", "subject": "Hi",
               "body": "Hello", "recipients": recipients})
    }

    #[test]
    fn params_for_a_file_check_all_but_the_items_which_they_must_leave_out() {
        let file = |t: JobType, params: Value| validate_for_file(t, params);
        let bulk_file = json!({"channel": "email", "from": "ops@example.com", "subject": "Hi", "body": "Hello"});
        let valid = file(JobType::BulkMessageSending, bulk_file.clone()).unwrap();
        assert_eq!(
            (valid.total, valid.sender.as_deref()),
            (0, Some("ops@example.com"))
        );
        assert_eq!(
            valid.params["recipients"],
            json!([]),
            "stored with an empty list"
        );
        assert_eq!(
            valid.summary["recipients"],
            Value::Null,
            "counted by the plan"
        );

        let refusals = [
            (
                JobType::BulkMessageSending,
                bulk(json!(["a@example.com"])),
                "params.recipients",
            ),
            (
                JobType::BulkMessageSending,
                json!({"channel": "sms", "from": "ops@example.com", "subject": "Hi", "body": "Hello"}),
                "params.channel",
            ),
            (
                JobType::BulkMessageSending,
                json!({"channel": "email", "from": "ops@example.com", "subject": "Hi", "body": "Hello {{first_name"}),
                "params.body",
            ),
            (
                JobType::BulkMessageSending,
                json!({"channel": "email", "from": "ops@example.com", "subject": "Hi {{name | there}}", "body": "Hello"}),
                "params.subject",
            ),
            (
                JobType::AiTextEmbedding,
                json!({"documents": []}),
                "params.documents",
            ),
            (
                JobType::AiTextEmbedding,
                json!({"model": "nope"}),
                "params.model",
            ),
            (
                JobType::ProfileFieldUpdate,
                json!({"field": "email", "value": 1}),
                "params.field",
            ),
            (
                JobType::ProfileFieldUpdate,
                json!({"field": "plan", "value": 1, "user_ids": ["u1"]}),
                "params.user_ids",
            ),
            (
                JobType::SessionTermination,
                json!({"all_users": true}),
                "params",
            ),
        ];
        for (t, params, field) in refusals {
            let err = file(t, params.clone()).expect_err(&params.to_string());
            assert_eq!(err.field.as_deref(), Some(field), "{params}: {err:?}");
        }
        assert_eq!(
            file(JobType::AiTextEmbedding, json!({})).unwrap().params["model"],
            "hashing-v1"
        );
        assert_eq!(
            file(
                JobType::ProfileFieldUpdate,
                json!({"field": "plan", "value": "pro"})
            )
            .unwrap()
            .total,
            0
        );
        assert_eq!(
            file(JobType::SessionTermination, json!({}))
                .unwrap()
                .summary,
            json!({"selection": "file"})
        );
        // Inline params still need their items.
        assert_eq!(
            field_of(JobType::BulkMessageSending, bulk_file).as_deref(),
            Some("params.recipients")
        );
    }

    #[test]
    fn valid_bulk_job_counts_recipients() {
        let ok = validate(
            JobType::BulkMessageSending,
            bulk(json!(["a@example.com", "b@x.io"])),
        )
        .unwrap();
        assert_eq!(ok.total, 2);
        assert_eq!(ok.summary["recipients"], 2);
    }

    #[test]
    fn bulk_errors_name_the_field() {
        let t = JobType::BulkMessageSending;
        assert_eq!(
            field_of(t, bulk(json!([]))).as_deref(),
            Some("params.recipients")
        );
        assert_eq!(
            field_of(t, bulk(json!(["a@example.com", "not-an-address"]))).as_deref(),
            Some("params.recipients[1]")
        );
        assert_eq!(
            field_of(t, bulk(json!(["a@example.com", 7]))).as_deref(),
            Some("params.recipients[1]")
        );
        let mut p = bulk(json!(["a@example.com"]));
        p["channel"] = json!("sms");
        assert_eq!(field_of(t, p).as_deref(), Some("params.channel"));
        let mut p = bulk(json!(["a@example.com"]));
        p["subject"] = json!("a\r\nBcc: x@y.z");
        assert_eq!(field_of(t, p).as_deref(), Some("params.subject"));
        let too_many: Vec<String> = (0..=MAX_RECIPIENTS)
            .map(|i| format!("u{i}@example.com"))
            .collect();
        assert_eq!(
            field_of(t, bulk(json!(too_many))).as_deref(),
            Some("params.recipients")
        );
        assert_eq!(
            field_of(t, json!(["not", "an", "object"])).as_deref(),
            Some("params")
        );
        let mut p = bulk(json!(["a@example.com"]));
        p["extra"] = json!(1);
        assert_eq!(field_of(t, p).as_deref(), Some("params.extra"));
    }

    #[test]
    fn optional_params_are_left_out_not_null_and_whole_numbers_may_be_floats() {
        let t = JobType::SessionTermination;
        assert_eq!(
            field_of(t, json!({"all_users": true, "idle_for_seconds": null})).as_deref(),
            Some("params.idle_for_seconds")
        );
        assert!(validate(t, json!({"idle_for_seconds": 60.0})).is_ok());
        assert_eq!(
            field_of(t, json!({"idle_for_seconds": 60.5})).as_deref(),
            Some("params.idle_for_seconds")
        );
        assert_eq!(
            field_of(t, json!({"idle_for_seconds": -60})).as_deref(),
            Some("params.idle_for_seconds")
        );
        assert_eq!(
            field_of(
                JobType::AiTextEmbedding,
                json!({"documents": [{"id": "d", "text": "x"}], "model": null})
            )
            .as_deref(),
            Some("params.model")
        );
        let remove = validate(
            JobType::ProfileFieldUpdate,
            json!({"field": "locale", "value": null, "user_ids": ["u"]}),
        )
        .unwrap();
        assert_eq!(remove.summary["value"], "remove");
    }

    #[test]
    fn sessions_need_exactly_one_selection() {
        let t = JobType::SessionTermination;
        assert!(validate(t, json!({"all_users": true})).is_ok());
        assert_eq!(
            validate(t, json!({"idle_for_seconds": 60})).unwrap().total,
            0
        );
        assert_eq!(
            validate(t, json!({"user_ids": ["u1", "u2"]}))
                .unwrap()
                .total,
            2
        );
        assert_eq!(field_of(t, json!({})).as_deref(), Some("params"));
        assert_eq!(
            field_of(t, json!({"all_users": true, "user_ids": ["u"]})).as_deref(),
            Some("params")
        );
        assert_eq!(
            field_of(t, json!({"all_users": false})).as_deref(),
            Some("params.all_users")
        );
        assert_eq!(
            field_of(t, json!({"idle_for_seconds": 59})).as_deref(),
            Some("params.idle_for_seconds")
        );
        assert_eq!(
            field_of(t, json!({"idle_for_seconds": -5})).as_deref(),
            Some("params.idle_for_seconds")
        );
        assert_eq!(
            field_of(t, json!({"user_ids": ["ok", ""]})).as_deref(),
            Some("params.user_ids[1]")
        );
    }

    #[test]
    fn embedding_defaults_model_and_checks_documents() {
        let t = JobType::AiTextEmbedding;
        let ok = validate(t, json!({"documents": [{"id": "d1", "text": "hello"}]})).unwrap();
        assert_eq!(ok.params["model"], "hashing-v1");
        assert_eq!(
            field_of(
                t,
                json!({"documents": [{"id": "d1", "text": "x".repeat(MAX_DOCUMENT_CHARS + 1)}]})
            )
            .as_deref(),
            Some("params.documents[0].text")
        );
        assert_eq!(
            field_of(
                t,
                json!({"documents": [{"id": "d", "text": "a"}, {"id": "d", "text": "b"}]})
            )
            .as_deref(),
            Some("params.documents[1].id")
        );
        assert_eq!(
            field_of(t, json!({"documents": [{"id": "d"}]})).as_deref(),
            Some("params.documents[0].text"),
            "a missing field is named itself, not its parent"
        );
        assert_eq!(field_of(t, json!({})).as_deref(), Some("params.documents"));
        assert_eq!(
            field_of(
                t,
                json!({"documents": [{"id": "d", "text": "a"}], "model": "gpt"})
            )
            .as_deref(),
            Some("params.model")
        );
    }

    #[test]
    fn profile_update_refuses_protected_fields_and_nested_values() {
        let t = JobType::ProfileFieldUpdate;
        assert!(
            validate(
                t,
                json!({"field": "locale", "value": null, "user_ids": ["u1"]})
            )
            .is_ok()
        );
        assert_eq!(
            field_of(
                t,
                json!({"field": "role", "value": "admin", "user_ids": ["u1"]})
            )
            .as_deref(),
            Some("params.field")
        );
        assert_eq!(
            field_of(
                t,
                json!({"field": "Locale", "value": "x", "user_ids": ["u1"]})
            )
            .as_deref(),
            Some("params.field")
        );
        assert_eq!(
            field_of(
                t,
                json!({"field": "locale", "value": {"a": 1}, "user_ids": ["u1"]})
            )
            .as_deref(),
            Some("params.value")
        );
        assert_eq!(
            field_of(t, json!({"field": "locale", "value": 1})).as_deref(),
            Some("params.user_ids")
        );
    }

    #[test]
    fn email_check_accepts_common_and_refuses_broken_addresses() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co.uk",
            "x_y@a-b.io",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@.com",
            "a b@example.com",
            "a@exa mple.com",
            "a..b@example.com",
            "a@-x.com",
            "<a@example.com>",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
