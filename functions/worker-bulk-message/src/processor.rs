//! Sends each recipient its email through SES (v1 `SendEmail`, which LocalStack's free
//! tier implements and records at `GET /_aws/ses`). A rejected or invalid recipient fails
//! that item; a throttled send is retried by the runtime, never counted as failed.
//!
//! Sends are paced by an [`AdaptiveRate`] per process. It starts from the account's SES
//! sending rate (`GetSendQuota` `MaxSendRate`, or `SES_MAX_SEND_RATE` when set above 0)
//! shared over the worker's processes (`MAXIMUM_CONCURRENCY` + `PLAN_CONCURRENCY`: its two
//! event source mappings' invocations at most), and may grow to the whole
//! rate while sends succeed: one busy process uses what idle ones leave.
//!
//! SES has no idempotency key: sends in flight when a process crashes are sent again.
//! The runtime's checkpoints bound how many.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jobs_core::JobType;
use jobs_core::domain::params::{BulkMessageParams, Recipient, is_email};
use jobs_core::domain::record::JobRecord;
use jobs_core::domain::template::Template;
use jobs_core::worker::{AdaptiveRate, ItemOutcome, ItemResult, Processor, WorkError, in_order};

/// Emails sent at once: enough to hide SES latency.
const CONCURRENCY: usize = 10;
/// The sending rate of an SES account in the sandbox (SES Developer Guide, "Service quotas
/// in Amazon SES"): used when `GetSendQuota` cannot be read.
const SANDBOX_SEND_RATE: f64 = 1.0;

pub struct BulkMessages {
    ses: aws_sdk_ses::Client,
    /// Sends per second for the whole account when set (`SES_MAX_SEND_RATE` > 0).
    max_send_rate: Option<f64>,
    /// Processes that share the account's rate (`MAXIMUM_CONCURRENCY` + `PLAN_CONCURRENCY`).
    processes: f64,
    rate: OnceLock<AdaptiveRate>,
}

impl BulkMessages {
    pub fn new(
        ses: aws_sdk_ses::Client,
        max_send_rate: Option<f64>,
        processes: u32,
    ) -> BulkMessages {
        BulkMessages {
            ses,
            max_send_rate: max_send_rate.filter(|r| *r > 0.0),
            processes: f64::from(processes.max(1)),
            rate: OnceLock::new(),
        }
    }

    /// The process's send rate, built on the first send from the account's quota.
    async fn rate(&self) -> &AdaptiveRate {
        if let Some(rate) = self.rate.get() {
            return rate;
        }
        let account = match self.max_send_rate {
            Some(rate) => rate,
            None => match self.ses.get_send_quota().send().await {
                Ok(quota) => quota.max_send_rate,
                Err(err) => {
                    tracing::warn!(error = %aws_sdk_ses::error::DisplayErrorContext(&err), "GetSendQuota failed; pacing at the sandbox rate");
                    SANDBOX_SEND_RATE
                }
            },
        };
        tracing::info!(
            account_rate = account,
            processes = self.processes,
            "send rate set"
        );
        self.rate
            .get_or_init(|| AdaptiveRate::new(account / self.processes, account))
    }

    /// Sends `params.from`'s message to `recipient`; `personal` (a job from a file): its
    /// subject and body are templates filled with the recipient's fields.
    async fn send(
        &self,
        params: &BulkMessageParams,
        personal: Option<&(Template, Template)>,
        recipient: &Recipient,
    ) -> ItemResult {
        let address = recipient.email();
        // Chunk messages are not trusted: re-check what the API validated.
        if !is_email(address) {
            return Ok(ItemOutcome::Rejected("not a valid email address".into()));
        }
        let (subject, body) = match personal {
            None => (params.subject.clone(), params.body.clone()),
            Some((subject, body)) => {
                let none = BTreeMap::new();
                let fields = match recipient {
                    Recipient::WithFields { fields, .. } => fields,
                    Recipient::Address(_) => &none,
                };
                let rendered = subject
                    .render(fields)
                    .and_then(|s| body.render(fields).map(|b| (s, b)));
                match rendered {
                    Ok((subject, _)) if subject.contains(['\r', '\n']) => {
                        return Ok(ItemOutcome::Rejected(
                            "the subject would hold a line break".into(),
                        ));
                    }
                    Ok(texts) => texts,
                    Err(reason) => return Ok(ItemOutcome::Rejected(reason)),
                }
            }
        };
        let content = |text: &str| {
            aws_sdk_ses::types::Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| WorkError::Rejected(e.to_string()))
        };
        let message = aws_sdk_ses::types::Message::builder()
            .subject(content(&subject)?)
            .body(
                aws_sdk_ses::types::Body::builder()
                    .text(content(&body)?)
                    .build(),
            )
            .build();
        let rate = self.rate().await;
        rate.acquire().await;
        let result = ItemOutcome::of(
            self.ses
                .send_email()
                .source(&params.from)
                .destination(
                    aws_sdk_ses::types::Destination::builder()
                        .to_addresses(address)
                        .build(),
                )
                .message(message)
                .send()
                .await,
        );
        rate.record(&result);
        result
    }
}

impl Processor for BulkMessages {
    const JOB_TYPE: JobType = JobType::BulkMessageSending;
    const STEP: usize = CONCURRENCY;
    type Params = BulkMessageParams;
    type Item = Recipient;

    async fn items(
        &self,
        _job: &JobRecord,
        params: &BulkMessageParams,
    ) -> Result<Vec<Recipient>, WorkError> {
        Ok(params
            .recipients
            .iter()
            .cloned()
            .map(Recipient::Address)
            .collect())
    }

    fn label(recipient: &Recipient) -> String {
        recipient.email().to_string()
    }

    async fn process(
        &self,
        job: &JobRecord,
        params: &BulkMessageParams,
        recipients: &[Recipient],
    ) -> Vec<ItemResult> {
        // A job from a file is personal; the API checked both templates at create.
        let personal = match job.file {
            None => None,
            Some(_) => match Template::parse(&params.subject)
                .and_then(|s| Template::parse(&params.body).map(|b| (s, b)))
            {
                Ok(templates) => Some(templates),
                Err(reason) => {
                    return vec![Err(WorkError::Rejected(reason)); recipients.len()];
                }
            },
        };
        in_order(
            recipients
                .iter()
                .map(|r| self.send(params, personal.as_ref(), r))
                .collect(),
            CONCURRENCY,
        )
        .await
    }
}
