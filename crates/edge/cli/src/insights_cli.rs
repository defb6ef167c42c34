//! `opentrail insights list|metrics`: the Insights events of a running server (LookupEvents
//! with EventCategory=insight) and a terminal chart of one API's counts
//! (ListInsightsMetricData) with the baseline of its latest insight marked.

use crate::args::{ChartFormat, InsightsCommand, ListFormat};
use crate::client::{parse_time_arg, ApiClient};
use anyhow::bail;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::io::Write;

const LOOKUP_PAGE_SIZE: u64 = 50;
/// Width in cells of the longest bar.
const BAR_WIDTH: usize = 40;
/// Up to this many periods a bar per period; beyond, sparkline rows.
const MAX_BAR_ROWS: usize = 120;
/// Periods per sparkline row.
const SPARK_ROW: usize = 60;
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const BASELINE_MARK: char = '┊';

/// One Insights event, as `insights list` shows it.
#[derive(Debug, Clone, PartialEq)]
struct InsightRow {
    time: String,
    state: String,
    event_source: String,
    event_name: String,
    insight_type: String,
    error_code: String,
    baseline: Option<f64>,
    insight: Option<f64>,
}

impl InsightRow {
    /// The fields of a LookupEvents `Event` whose `CloudTrailEvent` is an Insights record.
    fn from_event(event: &Value) -> Option<Self> {
        let record: Value = serde_json::from_str(event["CloudTrailEvent"].as_str()?).ok()?;
        let details = record.get("insightDetails")?;
        let text = |value: &Value| value.as_str().unwrap_or("").to_owned();
        let statistics = &details["insightContext"]["statistics"];
        Some(Self {
            time: text(&record["eventTime"]),
            state: text(&details["state"]),
            event_source: text(&details["eventSource"]),
            event_name: text(&details["eventName"]),
            insight_type: text(&details["insightType"]),
            error_code: text(&details["errorCode"]),
            baseline: statistics["baseline"]["average"].as_f64(),
            insight: statistics["insight"]["average"].as_f64(),
        })
    }
}

/// Every Insights event LookupEvents returns for the window, newest first.
async fn insight_events(
    client: &ApiClient,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    max_items: Option<usize>,
) -> anyhow::Result<Vec<Value>> {
    let mut input = json!({ "EventCategory": "insight", "MaxResults": LOOKUP_PAGE_SIZE });
    if let Some(start) = start {
        input["StartTime"] = json!(opentrail_model::epoch_seconds(start));
    }
    if let Some(end) = end {
        input["EndTime"] = json!(opentrail_model::epoch_seconds(end));
    }
    let mut events = Vec::new();
    loop {
        let page = client.call("LookupEvents", &input).await?;
        for event in page["Events"].as_array().into_iter().flatten() {
            if max_items.is_some_and(|max| events.len() >= max) {
                return Ok(events);
            }
            events.push(event.clone());
        }
        match page.get("NextToken").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => input["NextToken"] = json!(token),
            _ => return Ok(events),
        }
    }
}

fn optional_time(text: Option<&str>) -> anyhow::Result<Option<DateTime<Utc>>> {
    text.map(parse_time_arg).transpose()
}

fn average(value: Option<f64>) -> String {
    value.map_or_else(String::new, |value| format!("{value:.4}"))
}

fn write_table(out: &mut impl Write, rows: &[InsightRow]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20}  {:<5}  {:<28}  {:<28}  {:<19}  {:<24}  {:>10}  {:>10}",
        "TIME",
        "STATE",
        "EVENT SOURCE",
        "EVENT NAME",
        "INSIGHT TYPE",
        "ERROR CODE",
        "BASELINE",
        "INSIGHT"
    )?;
    for row in rows {
        writeln!(
            out,
            "{:<20}  {:<5}  {:<28}  {:<28}  {:<19}  {:<24}  {:>10}  {:>10}",
            row.time,
            row.state,
            row.event_source,
            row.event_name,
            row.insight_type,
            if row.error_code.is_empty() {
                "-"
            } else {
                &row.error_code
            },
            average(row.baseline),
            average(row.insight)
        )?;
    }
    Ok(())
}

/// One API's counts, as ListInsightsMetricData returns them.
#[derive(Debug, Default)]
struct Series {
    timestamps: Vec<DateTime<Utc>>,
    values: Vec<f64>,
}

async fn metric_series(client: &ApiClient, mut input: Value) -> anyhow::Result<Series> {
    let mut series = Series::default();
    loop {
        let page = client.call("ListInsightsMetricData", &input).await?;
        let timestamps = page["Timestamps"].as_array().cloned().unwrap_or_default();
        let values = page["Values"].as_array().cloned().unwrap_or_default();
        if timestamps.len() != values.len() {
            bail!(
                "ListInsightsMetricData returned {} timestamps and {} values",
                timestamps.len(),
                values.len()
            );
        }
        for (time, value) in timestamps.iter().zip(&values) {
            let Some(time) = time
                .as_f64()
                .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64))
            else {
                bail!("ListInsightsMetricData returned a timestamp that is not a number: {time}");
            };
            series.timestamps.push(time);
            series.values.push(value.as_f64().unwrap_or(0.0));
        }
        match page.get("NextToken").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => input["NextToken"] = json!(token),
            _ => return Ok(series),
        }
    }
}

/// The baseline (calls per minute) of the latest insight on this API, and when it started.
fn latest_baseline(
    rows: &[InsightRow],
    event_source: &str,
    event_name: &str,
    insight_type: &str,
    error_code: Option<&str>,
) -> Option<(f64, String)> {
    rows.iter()
        .filter(|row| {
            row.state == "Start"
                && row.event_source == event_source
                && row.event_name == event_name
                && row.insight_type == insight_type
                && error_code.is_none_or(|code| row.error_code == code)
        })
        .max_by(|a, b| a.time.cmp(&b.time))
        .and_then(|row| Some((row.baseline?, row.time.clone())))
}

/// A bar of `value` on a scale where `scale` fills `BAR_WIDTH` cells, with the baseline's
/// cell marked where the bar does not cover it.
fn bar(value: f64, baseline: Option<f64>, scale: f64) -> String {
    let cells = |amount: f64| {
        if scale <= 0.0 {
            0
        } else {
            ((amount / scale) * BAR_WIDTH as f64).round() as usize
        }
    };
    let filled = cells(value).min(BAR_WIDTH);
    let mark = baseline.map(|baseline| cells(baseline).min(BAR_WIDTH - 1));
    (0..BAR_WIDTH)
        .map(|cell| match mark {
            _ if cell < filled => '█',
            Some(mark) if mark == cell => BASELINE_MARK,
            _ => ' ',
        })
        .collect()
}

/// One block character per value, scaled to the largest.
fn sparkline(values: &[f64], scale: f64) -> String {
    values
        .iter()
        .map(|value| {
            if scale <= 0.0 || *value <= 0.0 {
                return ' ';
            }
            let level = ((value / scale) * (SPARKS.len() - 1) as f64).round() as usize;
            SPARKS[level.min(SPARKS.len() - 1)]
        })
        .collect()
}

/// The chart: a bar per period (sparkline rows when there are many), the baseline per
/// period marked.
fn write_chart(
    out: &mut impl Write,
    series: &Series,
    period_seconds: u32,
    baseline_per_minute: Option<&(f64, String)>,
) -> std::io::Result<()> {
    let per_period =
        baseline_per_minute.map(|(average, _)| average * f64::from(period_seconds) / 60.0);
    let largest = series.values.iter().copied().fold(0.0_f64, f64::max);
    let total: f64 = series.values.iter().sum();
    match baseline_per_minute {
        Some((average, since)) => writeln!(
            out,
            "baseline {average:.4}/min ({:.4} per period, from the insight of {since}), marked {BASELINE_MARK}",
            per_period.unwrap_or(0.0)
        )?,
        None => writeln!(out, "baseline unknown (no Insights event for this API)")?,
    }
    writeln!(
        out,
        "{} periods of {period_seconds} s, total {total}, largest {largest}",
        series.values.len()
    )?;
    let scale = largest.max(per_period.unwrap_or(0.0));
    if series.values.len() <= MAX_BAR_ROWS {
        for (time, value) in series.timestamps.iter().zip(&series.values) {
            writeln!(
                out,
                "{} │{}│ {value}",
                opentrail_model::iso8601(*time),
                bar(*value, per_period, scale)
            )?;
        }
        return Ok(());
    }
    for (times, values) in series
        .timestamps
        .chunks(SPARK_ROW)
        .zip(series.values.chunks(SPARK_ROW))
    {
        writeln!(
            out,
            "{} {}",
            opentrail_model::iso8601(times[0]),
            sparkline(values, scale)
        )?;
    }
    Ok(())
}

pub async fn insights(command: InsightsCommand) -> anyhow::Result<()> {
    match command {
        InsightsCommand::List {
            client,
            start_time,
            end_time,
            max_items,
            output,
        } => {
            let client = ApiClient::new(&client)?;
            let start = optional_time(start_time.as_deref())?;
            let end = optional_time(end_time.as_deref())?;
            let events = insight_events(&client, start, end, max_items).await?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match output {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &json!({ "Events": events }))?;
                    writeln!(out)?;
                }
                ListFormat::Table => {
                    let rows: Vec<InsightRow> =
                        events.iter().filter_map(InsightRow::from_event).collect();
                    write_table(&mut out, &rows)?;
                }
            }
            Ok(())
        }
        InsightsCommand::Metrics {
            client,
            event_source,
            event_name,
            insight_type,
            error_code,
            period,
            start_time,
            end_time,
            output,
        } => {
            let client = ApiClient::new(&client)?;
            let end = optional_time(end_time.as_deref())?.unwrap_or_else(Utc::now);
            let start = optional_time(start_time.as_deref())?.unwrap_or(end - Duration::hours(1));
            let mut input = json!({
                "EventSource": event_source,
                "EventName": event_name,
                "InsightType": insight_type,
                "Period": period,
                "StartTime": opentrail_model::epoch_seconds(start),
                "EndTime": opentrail_model::epoch_seconds(end),
                "DataType": "FillWithZeros",
            });
            if let Some(code) = &error_code {
                input["ErrorCode"] = json!(code);
            }
            let series = metric_series(&client, input).await?;
            // The baseline of the latest insight on this API up to the chart's end (the
            // model's baseline is only published in Insights events).
            let rows: Vec<InsightRow> =
                insight_events(&client, Some(end - Duration::days(90)), Some(end), None)
                    .await?
                    .iter()
                    .filter_map(InsightRow::from_event)
                    .collect();
            let baseline = latest_baseline(
                &rows,
                &event_source,
                &event_name,
                &insight_type,
                error_code.as_deref(),
            );
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match output {
                ChartFormat::Json => {
                    let timestamps: Vec<String> = series
                        .timestamps
                        .iter()
                        .map(|time| opentrail_model::iso8601(*time))
                        .collect();
                    let answer = json!({
                        "Timestamps": timestamps,
                        "Values": series.values,
                        "BaselineAverage": baseline.as_ref().map(|(average, _)| *average),
                    });
                    serde_json::to_writer_pretty(&mut out, &answer)?;
                    writeln!(out)?;
                }
                ChartFormat::Chart => {
                    let error = error_code
                        .as_deref()
                        .map_or_else(String::new, |code| format!(" {code}"));
                    writeln!(out, "{event_source} {event_name} {insight_type}{error}")?;
                    write_chart(&mut out, &series, period, baseline.as_ref())?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_fills_its_share_and_marks_the_baseline_beyond_it() {
        let drawn = bar(10.0, Some(20.0), 40.0);
        assert_eq!(drawn.chars().count(), BAR_WIDTH);
        assert_eq!(drawn.chars().filter(|c| *c == '█').count(), 10);
        assert_eq!(drawn.chars().position(|c| c == BASELINE_MARK), Some(20));
        // A bar covering the baseline hides its mark.
        assert!(!bar(40.0, Some(20.0), 40.0).contains(BASELINE_MARK));
        // A zero baseline still shows at the first cell of an empty bar.
        assert_eq!(
            bar(0.0, Some(0.0), 40.0).chars().next(),
            Some(BASELINE_MARK)
        );
    }

    #[test]
    fn a_sparkline_scales_to_the_largest_value() {
        assert_eq!(sparkline(&[0.0, 1.0, 8.0, 4.0], 8.0), " ▂█▅");
        assert_eq!(sparkline(&[0.0, 0.0], 0.0), "  ");
    }

    #[test]
    fn the_latest_start_of_the_api_gives_the_baseline() {
        let row = |time: &str, state: &str, name: &str, baseline: f64| InsightRow {
            time: time.into(),
            state: state.into(),
            event_source: "ssm.amazonaws.com".into(),
            event_name: name.into(),
            insight_type: "ApiCallRateInsight".into(),
            error_code: String::new(),
            baseline: Some(baseline),
            insight: Some(3.0),
        };
        let rows = [
            row("2026-01-01T06:00:00Z", "Start", "SendCommand", 0.04),
            row("2026-01-02T06:00:00Z", "Start", "SendCommand", 0.05),
            row("2026-01-03T06:00:00Z", "End", "SendCommand", 0.06),
            row("2026-01-04T06:00:00Z", "Start", "GetRolePolicy", 0.07),
        ];
        let found = latest_baseline(
            &rows,
            "ssm.amazonaws.com",
            "SendCommand",
            "ApiCallRateInsight",
            None,
        );
        assert_eq!(found, Some((0.05, "2026-01-02T06:00:00Z".to_owned())));
    }

    #[test]
    fn an_insights_record_gives_a_row() {
        let record = json!({
            "eventTime": "2026-01-01T06:00:00Z", "eventType": "AwsCloudTrailInsight",
            "insightDetails": {"state": "Start", "eventSource": "iam.amazonaws.com",
                "eventName": "GetRolePolicy", "insightType": "ApiErrorRateInsight",
                "errorCode": "NoSuchEntityException",
                "insightContext": {"statistics": {"baseline": {"average": 0.0017},
                    "insight": {"average": 18.0}}}}});
        let event = json!({ "CloudTrailEvent": record.to_string() });
        let row = InsightRow::from_event(&event).expect("a row");
        assert_eq!(row.error_code, "NoSuchEntityException");
        assert_eq!((row.baseline, row.insight), (Some(0.0017), Some(18.0)));
        assert!(InsightRow::from_event(&json!({ "CloudTrailEvent": "{}" })).is_none());
    }
}
