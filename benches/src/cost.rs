//! What the coordination of 1,000,000 items costs at AWS list prices, from the requests and
//! durations a run through the deployed stack counted, beside two other designs: one
//! message, one invocation and one counter write per item; and Step Functions Distributed
//! Map starting one Express child workflow per batch of items. The items' own work (one
//! profile write each, the Lambda time it takes) is the same in all three and is left out
//! of the comparison. Prices: US East (N. Virginia), on demand, from the AWS pricing pages
//! of Lambda, SQS, DynamoDB, S3 and Step Functions (docs/performance.md, benchmark 9).

/// Lambda: per request, and per GB-second on arm64 (the template's cheaper architecture).
pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// SQS standard queues: per request (each 64 KB of a message is one).
pub const SQS_REQUEST: f64 = 0.40 / 1e6;
/// DynamoDB on demand: per write request unit (1 KB; a transactional write takes 2) and
/// read request unit (4 KB strongly consistent).
pub const WRITE_UNIT: f64 = 0.625 / 1e6;
pub const READ_UNIT: f64 = 0.125 / 1e6;
/// S3 Standard: per `PUT` (and multipart part) and per `GET`.
pub const S3_PUT: f64 = 0.005 / 1e3;
pub const S3_GET: f64 = 0.0004 / 1e3;
/// Step Functions: a Standard state transition (a Distributed Map pays one per child
/// workflow it starts: Developer Guide, "Transitions"); an Express request, and an Express
/// GB-second (billed in 64 MB steps).
pub const STATE_TRANSITION: f64 = 0.025 / 1e3;
pub const EXPRESS_REQUEST: f64 = 1.00 / 1e6;
pub const EXPRESS_GB_SECOND: f64 = 0.000_016_67;

/// Billable usage of one design for a number of items.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub sqs_requests: f64,
    pub write_units: f64,
    pub read_units: f64,
    pub s3_puts: f64,
    pub s3_gets: f64,
    pub state_transitions: f64,
    pub express_requests: f64,
    pub express_gb_seconds: f64,
}

impl Usage {
    /// US dollars at the prices above.
    pub fn dollars(&self) -> f64 {
        self.lambda_requests * LAMBDA_REQUEST
            + self.lambda_gb_seconds * LAMBDA_GB_SECOND
            + self.sqs_requests * SQS_REQUEST
            + self.write_units * WRITE_UNIT
            + self.read_units * READ_UNIT
            + self.s3_puts * S3_PUT
            + self.s3_gets * S3_GET
            + self.state_transitions * STATE_TRANSITION
            + self.express_requests * EXPRESS_REQUEST
            + self.express_gb_seconds * EXPRESS_GB_SECOND
    }

    /// The same usage `k` times over (every figure here grows with the items).
    pub fn scaled(&self, k: f64) -> Usage {
        Usage {
            lambda_requests: self.lambda_requests * k,
            lambda_gb_seconds: self.lambda_gb_seconds * k,
            sqs_requests: self.sqs_requests * k,
            write_units: self.write_units * k,
            read_units: self.read_units * k,
            s3_puts: self.s3_puts * k,
            s3_gets: self.s3_gets * k,
            state_transitions: self.state_transitions * k,
            express_requests: self.express_requests * k,
            express_gb_seconds: self.express_gb_seconds * k,
        }
    }

    /// The biggest terms, e.g. "SQS $0.0050, DynamoDB $0.0312".
    pub fn breakdown(&self) -> String {
        let terms = [
            (
                "Lambda",
                self.lambda_requests * LAMBDA_REQUEST + self.lambda_gb_seconds * LAMBDA_GB_SECOND,
            ),
            ("SQS", self.sqs_requests * SQS_REQUEST),
            (
                "DynamoDB",
                self.write_units * WRITE_UNIT + self.read_units * READ_UNIT,
            ),
            ("S3", self.s3_puts * S3_PUT + self.s3_gets * S3_GET),
            (
                "Step Functions",
                self.state_transitions * STATE_TRANSITION
                    + self.express_requests * EXPRESS_REQUEST
                    + self.express_gb_seconds * EXPRESS_GB_SECOND,
            ),
        ];
        terms
            .iter()
            .filter(|(_, dollars)| *dollars > 0.0)
            .map(|(name, dollars)| format!("{name} ${dollars:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One message, one invocation and one counter write per item: SQS send, receive and delete
/// per item, a Lambda request per item, an `UpdateItem` of the job's counter per item
/// (`job_kib` KiB, so that many write units each). Lambda time: the same work as ours.
pub fn per_item(items: f64, job_kib: f64) -> Usage {
    Usage {
        lambda_requests: items,
        sqs_requests: 3.0 * items,
        write_units: items * job_kib.ceil().max(1.0),
        ..Usage::default()
    }
}

/// Step Functions Distributed Map over the same file: an `ItemReader` over the CSV (a few
/// `GET`s), one Express child per batch of `batch` items (one state transition in the
/// parent, one Express request, one Lambda request), each child billed at 64 MB for the
/// `seconds_per_batch` its Lambda task takes; the Map Run counts progress itself.
pub fn distributed_map(items: f64, batch: f64, seconds_per_batch: f64) -> Usage {
    let children = (items / batch).ceil();
    Usage {
        lambda_requests: children,
        state_transitions: children + 3.0,
        express_requests: children,
        express_gb_seconds: children * seconds_per_batch.max(0.1) * 0.0625,
        s3_gets: 1.0 + (items / 100_000.0).ceil(),
        ..Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prices_add_up_as_the_pricing_pages_state() {
        // 1,000,000 Lambda requests and 3,000,000 SQS requests: $0.20 and $1.20.
        let naive = per_item(1e6, 1.0);
        assert!((naive.dollars() - (0.20 + 1.20 + 0.625)).abs() < 1e-9);
        // 10,000 children: 10,003 transitions, 10,000 Express requests and Lambda requests.
        let map = distributed_map(1e6, 100.0, 1.0);
        assert_eq!(map.state_transitions, 10_003.0);
        let expected = 10_003.0 * 0.025 / 1e3
            + 10_000.0 * (1.0 / 1e6 + 0.20 / 1e6)
            + 10_000.0 * 0.0625 * 0.000_016_67
            + 11.0 * 0.0004 / 1e3;
        assert!((map.dollars() - expected).abs() < 1e-9);
        assert!(map.breakdown().starts_with("Lambda $0.0020, S3"));
        // A run of 100,000 items, scaled to 1,000,000: the same as 1,000,000 per item.
        let scaled = per_item(1e5, 1.0).scaled(10.0);
        assert!((scaled.dollars() - naive.dollars()).abs() < 1e-9);
        assert_eq!(scaled.breakdown(), naive.breakdown());
    }
}
