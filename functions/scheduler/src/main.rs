//! The scheduler function. An EventBridge rule on the default bus invokes it once a minute;
//! each invocation is one [`jobs_api_core::scheduler`] tick: the schedules that are due,
//! then the job ends left pending. The due times live in the Jobs table, not in the rule,
//! so a tick that comes early, late or twice starts each due job once.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use jobs_api_core::aws::{AwsJobs, jobs};
use jobs_api_core::scheduler::TickReport;
use jobs_core::aws::load_config;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    jobs_core::logging::init();
    let config = load_config().await;
    let retention_days = jobs_core::env::parsed_or("RETENTION_DAYS", 90)?;
    let jobs: &'static AwsJobs = Box::leak(Box::new(jobs(&config, retention_days)?));
    lambda_runtime::run(service_fn(move |event| tick(jobs, event))).await
}

/// Runs the schedules due now, whatever the event's own time says (LocalStack's rules fire
/// up to a minute off). An error (a due-index query failed) fails the invocation, and
/// EventBridge's retry is one more tick.
async fn tick(jobs: &AwsJobs, event: LambdaEvent<EventBridgeEvent>) -> Result<TickReport, Error> {
    let report = jobs.tick(jobs_core::clock::now()).await?;
    tracing::info!(event_id = ?event.payload.id, due = report.due, started = report.started, skipped = report.skipped, refused = report.refused, deferred = report.deferred, ends_handled = report.ends_handled, "tick");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_event_of_the_rule_is_the_handlers_input() {
        let event: EventBridgeEvent =
            serde_json::from_str(include_str!("../tests/fixtures/scheduled-event.json")).unwrap();
        assert_eq!(
            (event.source.as_str(), event.detail_type.as_str()),
            ("aws.events", "Scheduled Event")
        );
    }
}
