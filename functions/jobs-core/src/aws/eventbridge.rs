//! The event bus (`EVENT_BUS_NAME`) on EventBridge: [`EventBus`] as one `PutEvents` entry.

use super::LazyClient;
use crate::domain::ended::{EVENT_SOURCE, JobEndEvent};
use crate::env::{self, SettingError};
use crate::error::StoreError;
use crate::ports::EventBus;

pub struct EventBridgeBus {
    client: LazyClient<aws_sdk_eventbridge::Client>,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(
        client: LazyClient<aws_sdk_eventbridge::Client>,
        bus_name: impl Into<String>,
    ) -> EventBridgeBus {
        EventBridgeBus {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// The bus named by `EVENT_BUS_NAME`; its client is built on the first job end.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<EventBridgeBus, SettingError> {
        Ok(EventBridgeBus::new(
            LazyClient::new(config, aws_sdk_eventbridge::Client::new),
            env::required("EVENT_BUS_NAME")?,
        ))
    }
}

impl EventBus for EventBridgeBus {
    async fn put_event(&self, event: &JobEndEvent) -> Result<(), StoreError> {
        let detail =
            serde_json::to_string(event).map_err(|e| StoreError::encode("a job end event", e))?;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(event.detail_type())
            .detail(detail)
            .build();
        let out = self
            .client
            .get()
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| StoreError::aws("events:PutEvents", e))?;
        // PutEvents answers 200 with per-entry failures (e.g. throttling of one entry).
        if out.failed_entry_count() > 0 {
            let detail = out
                .entries()
                .iter()
                .filter_map(|e| {
                    e.error_code()
                        .map(|c| format!("{c}: {}", e.error_message().unwrap_or("")))
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(StoreError::Incomplete {
                operation: "events:PutEvents",
                count: out.failed_entry_count() as usize,
                detail,
            });
        }
        Ok(())
    }
}
