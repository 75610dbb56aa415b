//! Jobs from uploaded files, end to end: a presigned PUT to LocalStack's S3, `POST /jobs`
//! with `input.upload_id`, the worker's streaming plan and ranged chunk reads, the item
//! report of the bad rows.

use std::io::Write;
use std::time::Duration;

use e2e::{Reply, Stack, fresh_tenant, json};
use jobs_core::domain::auth::Role;
use serde_json::Value;

/// Uploads `body` through `POST /uploads` and its presigned PUT; the upload id.
async fn upload(stack: &Stack, token: &str, format: Value, body: Vec<u8>) -> String {
    let created = stack
        .send("POST", "/uploads", Some(token), Some(&format))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let answer = created.body;
    let mut put = stack.http.put(answer["url"].as_str().unwrap()).body(body);
    for (name, value) in answer["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let stored = stack.reply(put).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    answer["upload_id"].as_str().unwrap().to_string()
}

/// Uploads `body` (a CSV unless `format` says otherwise), creates the job `job(upload_id)`
/// and waits at most 60 s for it to end; the ended job.
async fn run_from_file(
    stack: &Stack,
    token: &str,
    format: Value,
    body: Vec<u8>,
    job: impl Fn(&str) -> Value,
) -> Value {
    let id = upload(stack, token, format, body).await;
    let created = stack.create(token, &job(&id)).await;
    stack
        .wait_until_done(
            token,
            created["id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await
}

/// A job's (succeeded, failed).
fn counts(job: &Value) -> (Option<u64>, Option<u64>) {
    (
        job["progress"]["succeeded"].as_u64(),
        job["progress"]["failed"].as_u64(),
    )
}

fn from_file(upload_id: &str) -> Value {
    json!({"type": "session_termination", "params": {}, "input": {"upload_id": upload_id}})
}

/// Every failed item of job `id`, following `next_cursor`.
async fn failed_items(stack: &Stack, token: &str, id: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let page: Reply = stack
            .send(
                "GET",
                &format!("/jobs/{id}/items?outcome=failed&limit=1000&cursor={cursor}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        rows.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn a_job_of_20_000_rows_from_a_csv_counts_exactly_and_lists_each_bad_row_by_its_line() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("file");
    let token = stack.token(&tenant, "alice", false);
    // 20,000 rows; every 1,000th has no session id (its line: row + 1, after the header).
    let mut csv = String::from("session_id\n");
    let mut bad_lines = Vec::new();
    for row in 1..=20_000u64 {
        if row % 1_000 == 0 {
            csv.push_str("\"\"\n");
            bad_lines.push(row + 1);
        } else {
            csv.push_str(&format!("s-{row}\n"));
        }
    }
    let id = upload(
        &stack,
        &token,
        json!({"content_type": "text/csv"}),
        csv.into_bytes(),
    )
    .await;
    let job = stack.create(&token, &from_file(&id)).await;
    assert_eq!(
        (job["status"].as_str(), job["progress"]["total"].as_u64()),
        (Some("queued"), Some(0))
    );
    let job_id = job["id"].as_str().unwrap();

    let again = stack
        .send("POST", "/jobs", Some(&token), Some(&from_file(&id)))
        .await;
    assert_eq!(
        (again.status, again.error_field()),
        (409, Some("input.upload_id")),
        "an upload gives one job its items: {}",
        again.body
    );
    let other = stack.token(&fresh_tenant("file-other"), "bob", false);
    let theirs = stack
        .send("POST", "/jobs", Some(&other), Some(&from_file(&id)))
        .await;
    assert_eq!(
        (theirs.status, theirs.error_field()),
        (422, Some("input.upload_id"))
    );

    let done = stack
        .wait_until_done(&token, job_id, Duration::from_secs(240))
        .await;
    assert_eq!(done["status"], "completed_with_errors", "{done}");
    assert_eq!(
        done["progress"],
        json!({"total": 20_000, "succeeded": 19_980, "failed": 20, "cancelled": 0, "percent": 100})
    );
    let failed = failed_items(&stack, &token, job_id).await;
    let mut reported: Vec<String> = failed
        .iter()
        .map(|row| row["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    reported.sort();
    let mut expected: Vec<String> = bad_lines
        .iter()
        .map(|line| format!("line {line}: no session_id"))
        .collect();
    expected.sort();
    assert_eq!(reported, expected, "each bad row once, by its line");

    // The report of all 20,000 items, written to S3 by the exporter; a viewer may ask.
    let viewer = stack.token_as(&tenant, "vera", Role::Viewer);
    let all = export_csv(&stack, &viewer, job_id, "all").await;
    let lines: Vec<&str> = all.split_terminator("\r\n").collect();
    assert_eq!(lines[0], "position,item,outcome,reason");
    assert_eq!(lines.len(), 20_001, "a header and a row per item");
    assert_eq!(lines[1], "0,session s-1,succeeded,");
    assert_eq!(
        lines[1_000],
        "999,line 1001,failed,line 1001: no session_id"
    );
    assert_eq!(lines.iter().filter(|l| l.contains(",failed,")).count(), 20);
    let only_failed = export_csv(&stack, &viewer, job_id, "failed").await;
    let expected_csv: String = std::iter::once("position,item,outcome,reason\r\n".to_string())
        .chain(failed.iter().map(|row| {
            format!(
                "{},{},failed,{}\r\n",
                row["position"],
                row["item"].as_str().unwrap(),
                row["reason"].as_str().unwrap()
            )
        }))
        .collect();
    assert_eq!(
        only_failed, expected_csv,
        "the rows of the JSON report, as CSV"
    );
    let theirs = stack
        .send(
            "POST",
            &format!("/jobs/{job_id}/items/export"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(theirs.status, 404, "another tenant's job");

    // Its retry is planned from this job's item list: the 20 bad rows, each failing again
    // by its line in the original file.
    let retry = stack
        .send("POST", &format!("/jobs/{job_id}/retry"), Some(&token), None)
        .await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    assert_eq!(
        (
            retry.body["retry_of"].as_str(),
            retry.body["from_file"].as_bool()
        ),
        (Some(job_id), Some(true))
    );
    let retry_id = retry.body["id"].as_str().unwrap();
    let done = stack
        .wait_until_done(&token, retry_id, Duration::from_secs(60))
        .await;
    assert_eq!(
        done["progress"],
        json!({"total": 20, "succeeded": 0, "failed": 20, "cancelled": 0, "percent": 100})
    );
    let mut again: Vec<String> = failed_items(&stack, &token, retry_id)
        .await
        .iter()
        .map(|row| row["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    again.sort();
    assert_eq!(again, expected, "the same rows, by the same lines");
}

/// The ledger items of job `id`: one per chunk that ran or settled its items.
async fn ledger_items(stack: &Stack, id: &str) -> usize {
    use aws_sdk_dynamodb::types::{AttributeValue, Select};
    let mut count = 0;
    let mut start = None;
    loop {
        let page = stack
            .dynamo
            .query()
            .table_name(stack.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :chunk)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("JOB#{id}")))
            .expression_attribute_values(":chunk", AttributeValue::S("CHUNK#".into()))
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("Query");
        count += page.count() as usize;
        start = page.last_evaluated_key;
        if start.is_none() {
            return count;
        }
    }
}

#[tokio::test]
async fn cancelling_a_file_job_of_2_000_chunks_takes_about_one_commit_per_chain() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("file-cancel");
    let token = stack.token(&tenant, "alice", false);
    // 200,000 sessions in chunks of 100: 2,000 chunks, 200 in each of the window's 10 chains.
    let csv: String = std::iter::once("session_id\n".to_string())
        .chain((0..200_000).map(|i| format!("s-{i}\n")))
        .collect();
    let upload_id = upload(
        &stack,
        &token,
        json!({"content_type": "text/csv"}),
        csv.into_bytes(),
    )
    .await;
    let job = stack.create(&token, &from_file(&upload_id)).await;
    let id = job["id"].as_str().unwrap();
    let path = format!("/jobs/{id}");
    // Cancelled once chunks have run.
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = stack.send("GET", &path, Some(&token), None).await;
        if now.body["progress"]["succeeded"].as_u64() > Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "no chunk ran: {}",
            now.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cancel = stack
        .send("POST", &format!("{path}/cancel"), Some(&token), None)
        .await;
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let done = stack
        .wait_until_done(&token, id, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let progress = &done["progress"];
    let (succeeded, cancelled) = (
        progress["succeeded"].as_u64().unwrap(),
        progress["cancelled"].as_u64().unwrap(),
    );
    assert_eq!(
        (progress["total"].as_u64(), progress["failed"].as_u64()),
        (Some(200_000), Some(0))
    );
    assert_eq!(succeeded + cancelled, 200_000, "every item counted once");
    let ran = ledger_items(&stack, id).await;
    assert!(
        ran < 200,
        "{ran} of 2,000 chunks have a ledger item: the rest of each chain ended with one commit"
    );
}

/// Asks for job `id`'s item report of `outcome`, waits at most 60 s for the exporter to
/// write it, and downloads it from its presigned URL.
async fn export_csv(stack: &Stack, token: &str, id: &str, outcome: &str) -> String {
    let asked = stack
        .send(
            "POST",
            &format!("/jobs/{id}/items/export?outcome={outcome}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(asked.body["status"], "pending");
    let path = format!(
        "/jobs/{id}/items/export/{}",
        asked.body["export_id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = stack.send("GET", &path, Some(token), None).await;
        assert_eq!(state.status, 200, "{}", state.body);
        match state.body["status"].as_str() {
            Some("ready") => {
                let url = state.body["url"].as_str().unwrap();
                let download = stack.http.get(url).send().await.unwrap();
                assert_eq!(download.status(), 200);
                let disposition = download.headers()["content-disposition"]
                    .to_str()
                    .unwrap()
                    .to_string();
                assert_eq!(
                    disposition,
                    format!("attachment; filename=\"job-{id}-{outcome}.csv\"")
                );
                let body = download.text().await.unwrap();
                assert_eq!(state.body["bytes"].as_u64(), Some(body.len() as u64));
                return body;
            }
            Some("pending") if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => panic!("export of {outcome}: {}", state.body),
        }
    }
}

#[tokio::test]
async fn a_gzip_ndjson_file_runs_and_a_file_that_is_not_what_it_says_fails_its_job() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("file-gz");
    let token = stack.token(&tenant, "alice", false);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"user_id\":\"u1\"}\n{\"user_id\":\"u2\"}\n{\"user_id\":\"u3\"}\n")
        .unwrap();
    let done = run_from_file(
        &stack,
        &token,
        json!({"content_type": "application/x-ndjson", "content_encoding": "gzip"}),
        gz.finish().unwrap(),
        from_file,
    )
    .await;
    assert_eq!(
        (
            done["status"].as_str(),
            done["progress"]["succeeded"].as_u64()
        ),
        (Some("completed"), Some(3)),
        "{done}"
    );

    for (body, reason) in [
        (
            &b"name\nann\n"[..],
            "line 1: exactly one of the columns user_id, session_id",
        ),
        (b"session_id\ns1\nJos\xe9\n", "line 3: not UTF-8"),
    ] {
        let done = run_from_file(
            &stack,
            &token,
            json!({"content_type": "text/csv"}),
            body.to_vec(),
            from_file,
        )
        .await;
        assert_eq!(done["status"], "failed", "{done}");
        assert_eq!(done["progress"]["succeeded"], 0);
        assert_eq!(done["errors"][0]["reason"], reason, "{done}");
    }
}

#[tokio::test]
async fn a_bulk_job_from_a_file_sends_each_recipient_its_own_fields() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("file-mail");
    let token = stack.token(&tenant, "alice", false);
    let from = stack.own_sender(&tenant).await;
    // Line 4 has no first_name (the default fills it); line 5 has no plan (no default:
    // it fails); line 6's value holds {{…}}, sent as it is.
    let csv = "email,first_name,plan\n\
               ann@example.org,Ann,Pro\n\
               bob@example.org,Bob,Free\n\
               cy@example.org,,Team\n\
               dee@example.org,Dee,\n\
               eve@example.org,{{plan}},Pro\n";
    let done = run_from_file(
        &stack,
        &token,
        json!({"content_type": "text/csv"}),
        csv.into(),
        |id| {
            json!({"type": "bulk_message_sending", "input": {"upload_id": id}, "params": {
                "channel": "email", "from": from,
                "subject": "Your {{plan}} plan",
                "body": "Hi {{first_name | \"there\"}}, thanks for choosing {{plan}}."}})
        },
    )
    .await;
    assert_eq!(counts(&done), (Some(4), Some(1)), "{done}");
    assert_eq!(done["errors"][0]["item"], "dee@example.org");
    assert!(
        done["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no plan for {{plan}}"),
        "{done}"
    );
    let mut sent: Vec<(String, String, String)> = stack
        .sent_mail(&from)
        .await
        .iter()
        .map(|m| {
            (
                m["Destination"]["ToAddresses"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m["Subject"].as_str().unwrap_or_default().to_string(),
                m["Body"]["text_part"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    sent.sort();
    let expected = [
        (
            "ann@example.org",
            "Your Pro plan",
            "Hi Ann, thanks for choosing Pro.",
        ),
        (
            "bob@example.org",
            "Your Free plan",
            "Hi Bob, thanks for choosing Free.",
        ),
        (
            "cy@example.org",
            "Your Team plan",
            "Hi there, thanks for choosing Team.",
        ),
        (
            "eve@example.org",
            "Your Pro plan",
            "Hi {{plan}}, thanks for choosing Pro.",
        ),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(sent, expected);

    let broken = stack
        .send(
            "POST",
            "/jobs",
            Some(&token),
            Some(&json!({"type": "bulk_message_sending", "input": {"upload_id": ulid_like()}, "params": {
                "channel": "email", "from": from, "subject": "Hi", "body": "Hi {{first_name"}})),
        )
        .await;
    assert_eq!(
        (broken.status, broken.error_field()),
        (422, Some("params.body")),
        "{}",
        broken.body
    );
}

/// An upload id that was never handed out.
fn ulid_like() -> String {
    "01KBN0000000000000000000000".chars().take(26).collect()
}

#[tokio::test]
async fn a_profile_file_s_value_column_overrides_the_job_s_value_per_user() {
    let stack = Stack::load().await;
    let tenant = fresh_tenant("file-value");
    let token = stack.token(&tenant, "alice", false);
    let table = stack.outputs["ProfilesTableName"].clone();
    infra::seed::put_items(
        &stack.dynamo,
        &table,
        vec![
            infra::seed::profile(&tenant, "u1", "Ann"),
            infra::seed::profile(&tenant, "u2", "Ben"),
        ],
    )
    .await
    .expect("seed profiles");
    let csv = "user_id,value\nu1,fr-FR\nu2,\nghost,it-IT\n";
    let done = run_from_file(
        &stack,
        &token,
        json!({"content_type": "text/csv"}),
        csv.into(),
        |id| {
            json!({"type": "profile_field_update", "input": {"upload_id": id}, "params": {"field": "locale", "value": "de-DE"}})
        },
    )
    .await;
    assert_eq!(counts(&done), (Some(2), Some(1)), "{done}");
    assert_eq!(done["errors"][0]["item"], "ghost");
    for (user, locale) in [("u1", "fr-FR"), ("u2", "de-DE")] {
        let item = stack
            .dynamo
            .get_item()
            .table_name(&table)
            .key(
                "tenant",
                aws_sdk_dynamodb::types::AttributeValue::S(tenant.clone()),
            )
            .key(
                "user_id",
                aws_sdk_dynamodb::types::AttributeValue::S(user.into()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
            .expect("the profile");
        assert_eq!(
            item["locale"].as_s().ok().map(String::as_str),
            Some(locale),
            "{user}"
        );
    }
}
