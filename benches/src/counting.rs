//! A DynamoDB client that counts its requests by operation and adds up the read capacity
//! that queries and scans report, so a benchmark measures the code's real requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

const WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub requests: BTreeMap<String, u64>,
    pub read_units: f64,
    /// Write requests whose key is a metrics aggregate (`pk` = `METRIC#…`).
    pub metric_writes: u64,
}

impl Counts {
    pub fn writes(&self) -> u64 {
        WRITES
            .iter()
            .map(|op| self.requests.get(*op).copied().unwrap_or(0))
            .sum()
    }

    pub fn write_detail(&self) -> String {
        let parts: Vec<String> = WRITES
            .iter()
            .filter_map(|op| self.requests.get(*op).map(|n| format!("{n} {op}")))
            .collect();
        parts.join(" + ")
    }
}

#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<Mutex<Counts>>);

impl Counter {
    pub fn client(&self, config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(self.clone())
                .build(),
        )
    }

    /// The counts so far, and zero again.
    pub fn take(&self) -> Counts {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(query) = context.input_mut().downcast_mut::<QueryInput>() {
            query.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        } else if let Some(scan) = context.input_mut().downcast_mut::<ScanInput>() {
            scan.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        } else if let Some(get) = context.input_mut().downcast_mut::<BatchGetItemInput>() {
            get.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_string();
        let aggregate = WRITES.contains(&operation.as_str())
            && context
                .request()
                .body()
                .bytes()
                .is_some_and(|body| body.windows(8).any(|w| w == b"\"METRIC#"));
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.requests.entry(operation).or_default() += 1;
        counts.metric_writes += u64::from(aggregate);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let mut consumed: Vec<&aws_sdk_dynamodb::types::ConsumedCapacity> = Vec::new();
        if let Some(q) = output.downcast_ref::<QueryOutput>() {
            consumed.extend(&q.consumed_capacity);
        } else if let Some(s) = output.downcast_ref::<ScanOutput>() {
            consumed.extend(&s.consumed_capacity);
        } else if let Some(b) = output.downcast_ref::<BatchGetItemOutput>() {
            consumed.extend(b.consumed_capacity.iter().flatten());
        }
        let units: f64 = consumed.iter().filter_map(|c| c.capacity_units).sum();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).read_units += units;
        Ok(())
    }
}
