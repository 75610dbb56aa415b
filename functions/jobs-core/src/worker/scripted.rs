//! The one stand-in processor for tests and benchmarks (feature `test-support`): its items
//! say how they end, so a test scripts a job's outcome through its params.
//!
//! Params: `{"items": [...]}` (strings or any JSON). An item that is a string starting with
//! `fail` is rejected (`"<item> is broken"`); `"throttled"` meets a throttling error and
//! `"transient"` a server error, every time; everything else succeeds.

use serde::Deserialize;
use serde_json::Value;

use super::{ItemOutcome, ItemResult, Processor, WorkError};
use crate::domain::job::JobType;
use crate::domain::record::JobRecord;

pub struct Scripted;

#[derive(Debug, Deserialize)]
pub struct ScriptedParams {
    pub items: Vec<Value>,
}

impl Processor for Scripted {
    /// Any registered type would do; the runtime only compares it with the job's.
    const JOB_TYPE: JobType = JobType::ProfileFieldUpdate;
    type Params = ScriptedParams;
    type Item = Value;

    async fn items(
        &self,
        _job: &JobRecord,
        params: &ScriptedParams,
    ) -> Result<Vec<Value>, WorkError> {
        Ok(params.items.clone())
    }

    fn label(item: &Value) -> String {
        item.as_str()
            .map_or_else(|| item.to_string(), str::to_string)
    }

    async fn process(
        &self,
        _job: &JobRecord,
        _params: &ScriptedParams,
        items: &[Value],
    ) -> Vec<ItemResult> {
        items
            .iter()
            .map(|item| match item.as_str() {
                Some("throttled") => Err(WorkError::Throttled(
                    "Throttling: Maximum sending rate exceeded.".into(),
                )),
                Some("transient") => {
                    Err(WorkError::Transient("ServiceUnavailable: try again".into()))
                }
                Some(text) if text.starts_with("fail") => {
                    Ok(ItemOutcome::Rejected(format!("{text} is broken")))
                }
                _ => Ok(ItemOutcome::Succeeded),
            })
            .collect()
    }
}
