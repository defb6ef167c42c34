//! `opentrail events lookup|export`: event history from a running server, through
//! LookupEvents with automatic paging. Export writes what the console's download writes.

use crate::args::{EventsCommand, ExportFormat, LookupFilter, OutputFormat};
use crate::client::{parse_time_arg, ApiClient};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::Write;

const PAGE_SIZE: u64 = 50;

/// CSV columns of the console's event history download.
const CSV_COLUMNS: [&str; 12] = [
    "Event ID",
    "Event time",
    "User name",
    "Event name",
    "Resource type",
    "Resource name",
    "AWS access key",
    "AWS region",
    "Error code",
    "Source IP address",
    "Event source",
    "Read-only",
];

fn parse_time(text: &str) -> anyhow::Result<f64> {
    Ok(opentrail_model::epoch_seconds(parse_time_arg(text)?))
}

fn lookup_input(filter: &LookupFilter) -> anyhow::Result<Value> {
    let mut input = json!({ "MaxResults": PAGE_SIZE });
    if let Some(attribute) = &filter.attribute {
        let Some((key, value)) = attribute.split_once('=') else {
            bail!("--attribute must look like Key=Value, got {attribute}");
        };
        input["LookupAttributes"] = json!([{ "AttributeKey": key, "AttributeValue": value }]);
    }
    if let Some(start) = &filter.start_time {
        input["StartTime"] = json!(parse_time(start)?);
    }
    if let Some(end) = &filter.end_time {
        input["EndTime"] = json!(parse_time(end)?);
    }
    if let Some(category) = &filter.event_category {
        input["EventCategory"] = json!(category);
    }
    Ok(input)
}

/// Pages through LookupEvents, handing each event to `each` until `max_items`.
async fn for_each_event(
    client: &ApiClient,
    filter: &LookupFilter,
    mut each: impl FnMut(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let mut input = lookup_input(filter)?;
    let mut seen = 0;
    loop {
        let page = client.call("LookupEvents", &input).await?;
        for event in page["Events"].as_array().into_iter().flatten() {
            if filter.max_items.is_some_and(|max| seen >= max) {
                return Ok(seen);
            }
            each(event)?;
            seen += 1;
        }
        match page.get("NextToken").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => input["NextToken"] = json!(token),
            _ => return Ok(seen),
        }
    }
}

fn event_time(event: &Value) -> String {
    event["EventTime"]
        .as_f64()
        .and_then(|s| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64))
        .map(opentrail_model::iso8601)
        .unwrap_or_default()
}

fn resource_column(event: &Value, member: &str) -> String {
    event["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r[member].as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn csv_row(event: &Value) -> Vec<String> {
    let record: Value = event["CloudTrailEvent"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
    vec![
        text(&event["EventId"]),
        event_time(event),
        text(&event["Username"]),
        text(&event["EventName"]),
        resource_column(event, "ResourceType"),
        resource_column(event, "ResourceName"),
        text(&event["AccessKeyId"]),
        text(&record["awsRegion"]),
        text(&record["errorCode"]),
        text(&record["sourceIPAddress"]),
        text(&event["EventSource"]),
        text(&event["ReadOnly"]),
    ]
}

pub async fn events(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Lookup {
            client,
            filter,
            output,
        } => {
            let client = ApiClient::new(&client)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match output {
                OutputFormat::Json => {
                    let mut events = Vec::new();
                    for_each_event(&client, &filter, |e| {
                        events.push(e.clone());
                        Ok(())
                    })
                    .await?;
                    serde_json::to_writer_pretty(&mut out, &json!({ "Events": events }))?;
                    writeln!(out)?;
                }
                OutputFormat::Csv => {
                    let mut writer = csv::Writer::from_writer(out);
                    writer.write_record(CSV_COLUMNS)?;
                    for_each_event(&client, &filter, |e| Ok(writer.write_record(csv_row(e))?))
                        .await?;
                    writer.flush()?;
                }
                OutputFormat::Table => {
                    writeln!(
                        out,
                        "{:<20}  {:<36}  {:<24}  {:<32}  EventSource",
                        "EventTime", "EventId", "Username", "EventName"
                    )?;
                    for_each_event(&client, &filter, |e| {
                        let text = |k: &str| e[k].as_str().unwrap_or("").to_owned();
                        writeln!(
                            out,
                            "{:<20}  {:<36}  {:<24}  {:<32}  {}",
                            event_time(e),
                            text("EventId"),
                            text("Username"),
                            text("EventName"),
                            text("EventSource")
                        )?;
                        Ok(())
                    })
                    .await?;
                }
            }
        }
        EventsCommand::Export {
            client,
            filter,
            format,
            out,
        } => {
            let client = ApiClient::new(&client)?;
            let file = std::fs::File::create(&out)
                .with_context(|| format!("failed to create {}", out.display()))?;
            let mut file = std::io::BufWriter::new(file);
            let count = match format {
                ExportFormat::Csv => {
                    let mut writer = csv::Writer::from_writer(&mut file);
                    writer.write_record(CSV_COLUMNS)?;
                    let n =
                        for_each_event(&client, &filter, |e| Ok(writer.write_record(csv_row(e))?))
                            .await?;
                    writer.flush()?;
                    n
                }
                ExportFormat::Json => {
                    // The console's JSON download: {"Records":[<CloudTrail event>, ...]}.
                    file.write_all(b"{\"Records\":[")?;
                    let mut first = true;
                    let n = for_each_event(&client, &filter, |e| {
                        let record = e["CloudTrailEvent"].as_str().unwrap_or("null");
                        if !first {
                            file.write_all(b",")?;
                        }
                        first = false;
                        file.write_all(record.as_bytes())?;
                        Ok(())
                    })
                    .await?;
                    file.write_all(b"]}\n")?;
                    n
                }
            };
            file.flush()?;
            eprintln!("exported {count} events to {}", out.display());
        }
    }
    Ok(())
}
