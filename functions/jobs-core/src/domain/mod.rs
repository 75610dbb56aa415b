//! The domain: the job types (`registry`), what is stored (`job`, `record`), how params are
//! checked (`params`), chunks and their ledger (`chunk`), the hourly job metrics
//! (`metrics`), the audit trail's entries (`audit`), the one path of a job's end (`ended`),
//! who calls (`auth`), the API keys it may call with (`api_key`) and the senders a tenant
//! may send from (`sender`), each tenant's limits (`limits`) and release windows
//! (`window`). Plain types and rules over the ports; no AWS client.

pub mod api_key;
pub mod audit;
pub mod auth;
pub mod chunk;
pub mod ended;
pub mod file;
pub mod job;
pub mod limits;
pub mod metrics;
pub mod params;
pub mod record;
pub mod registry;
pub mod sender;
pub mod template;
pub mod window;
