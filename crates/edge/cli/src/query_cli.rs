//! `opentrail query 'SQL'`: runs a Lake query on a running server (StartQuery), shows
//! its progress on stderr while it runs (DescribeQuery), then prints every page of its
//! results (GetQueryResults) as a table, JSON or CSV. Ctrl-C cancels the query.

use crate::args::{OutputFormat, QueryArgs};
use crate::client::ApiClient;
use anyhow::bail;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// How often the query's status is asked while it runs.
const POLL_EVERY: Duration = Duration::from_millis(250);

pub async fn query(args: QueryArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let started = client
        .call("StartQuery", &json!({ "QueryStatement": args.sql }))
        .await?;
    let Some(query_id) = started["QueryId"].as_str().map(str::to_owned) else {
        bail!("StartQuery answered without a QueryId: {started}");
    };
    let progress = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} query {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let waited = tokio::select! {
        described = wait_until_done(&client, &query_id, &progress) => described,
        _ = tokio::signal::ctrl_c() => {
            progress.finish_and_clear();
            client.call("CancelQuery", &json!({ "QueryId": query_id })).await?;
            bail!("query {query_id} cancelled");
        }
    };
    progress.finish_and_clear();
    let described = waited?;
    let status = described["QueryStatus"].as_str().unwrap_or_default();
    if status != "FINISHED" {
        let why = described["ErrorMessage"]
            .as_str()
            .unwrap_or("no error message");
        bail!("query {query_id} {status}: {why}");
    }
    let rows = all_rows(&client, &query_id).await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Json => {
            let answer = json!({
                "QueryId": query_id,
                "QueryStatus": status,
                "QueryStatistics": described["QueryStatistics"],
                "QueryResultRows": rows,
            });
            serde_json::to_writer_pretty(&mut out, &answer)?;
            writeln!(out)?;
        }
        OutputFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            if let Some(first) = rows.first() {
                writer.write_record(row_cells(first).iter().map(|(name, _)| name))?;
            }
            for row in &rows {
                writer.write_record(row_cells(row).iter().map(|(_, value)| value))?;
            }
            writer.flush()?;
        }
        OutputFormat::Table => {
            print_table(&mut out, &rows)?;
            let statistics = &described["QueryStatistics"];
            eprintln!(
                "{} rows; {} events scanned, {} matched, {} bytes scanned in {} ms (query {query_id})",
                rows.len(),
                statistics["EventsScanned"],
                statistics["EventsMatched"],
                statistics["BytesScanned"],
                statistics["ExecutionTimeInMillis"],
            );
        }
    }
    Ok(())
}

/// Polls DescribeQuery until the query ends; returns the last answer.
async fn wait_until_done(
    client: &ApiClient,
    query_id: &str,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Value> {
    loop {
        let described = client
            .call("DescribeQuery", &json!({ "QueryId": query_id }))
            .await?;
        let status = described["QueryStatus"].as_str().unwrap_or_default();
        if !matches!(status, "QUEUED" | "RUNNING") {
            return Ok(described);
        }
        let statistics = &described["QueryStatistics"];
        progress.set_message(format!(
            "{query_id} {status}: {} events scanned",
            statistics["EventsScanned"].as_i64().unwrap_or(0)
        ));
        progress.tick();
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Every result row of a finished query, page after page.
async fn all_rows(client: &ApiClient, query_id: &str) -> anyhow::Result<Vec<Value>> {
    let mut input = json!({ "QueryId": query_id, "MaxQueryResults": 1000 });
    let mut rows = Vec::new();
    loop {
        let page = client.call("GetQueryResults", &input).await?;
        rows.extend(
            page["QueryResultRows"]
                .as_array()
                .into_iter()
                .flatten()
                .cloned(),
        );
        match page.get("NextToken").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => input["NextToken"] = json!(token),
            _ => return Ok(rows),
        }
    }
}

/// A result row's (column, value) pairs, in SELECT order (each cell is a one-key object).
fn row_cells(row: &Value) -> Vec<(String, String)> {
    row.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|cell| {
            cell.iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// Rows as an aligned text table under a header of the first row's column names.
fn print_table(out: &mut impl Write, rows: &[Value]) -> std::io::Result<()> {
    let cells: Vec<Vec<(String, String)>> = rows.iter().map(row_cells).collect();
    let Some(header) = cells.first() else {
        return writeln!(out, "(no rows)");
    };
    let names: Vec<String> = header.iter().map(|(name, _)| name.clone()).collect();
    let mut widths: Vec<usize> = names.iter().map(|name| name.chars().count()).collect();
    for row in &cells {
        for (index, (_, value)) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(value.chars().count());
            }
        }
    }
    let line = |values: Vec<&str>| {
        values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(names.iter().map(String::as_str).collect()))?;
    for row in &cells {
        writeln!(
            out,
            "{}",
            line(row.iter().map(|(_, value)| value.as_str()).collect())
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_in_select_order() {
        let rows = vec![
            json!([{"eventName": "CreateTrail"}, {"apiCount": "12"}]),
            json!([{"eventName": "StartQuery"}, {"apiCount": "3"}]),
        ];
        let mut out = Vec::new();
        print_table(&mut out, &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "eventName    apiCount\nCreateTrail  12\nStartQuery   3\n"
        );
        let mut empty = Vec::new();
        print_table(&mut empty, &[]).unwrap();
        assert_eq!(String::from_utf8(empty).unwrap(), "(no rows)\n");
    }
}
