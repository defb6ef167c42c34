//! Insights: the Insights events (LookupEvents with EventCategory `insight`), and for each
//! a chart of the API's rate per period against its baseline (ListInsightsMetricData),
//! drawn on the server as inline SVG, with the insight's statistics and attributions.

use crate::events::origin;
use crate::form::{encode, Fields};
use crate::html::{error_box, esc, notice_box, page, Section};
use crate::lake::time_text;
use crate::session::{require, Session};
use crate::trails::call;
use crate::State;
use axum::extract::ConnectInfo;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use http::{HeaderMap, StatusCode, Uri};
use opentrail_http::api::CallOrigin;
use opentrail_operations::Operation;
use opentrail_wire::ApiError;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::SocketAddr;

const PAGE_SIZE: u64 = 50;
/// Pages of Insights events read to find the other half (Start or End) of an insight.
const PAIR_PAGES: usize = 20;

fn record_of(event: &Value) -> Value {
    event["CloudTrailEvent"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn event_time(record: &Value) -> Option<DateTime<Utc>> {
    record["eventTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn average(value: &Value) -> String {
    value["average"]
        .as_f64()
        .map_or_else(String::new, |a| format!("{a:.4}"))
}

fn view_link(id: &str) -> String {
    format!("/console/insights/view?id={}", encode(id))
}

pub async fn list(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (_, session) = match require(&console, &headers, true) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let fields = Fields::from_query(&uri);
    let mut input = json!({ "EventCategory": "insight", "MaxResults": PAGE_SIZE });
    if let Some(token) = fields.text("token") {
        input["NextToken"] = json!(token);
    }
    let mut body = String::new();
    match call(
        &console,
        &session,
        &origin(&peer, &headers),
        Operation::LookupEvents,
        input,
    )
    .await
    {
        Err(e) => body.push_str(&error_box(e.code, &e.message)),
        Ok(output) => {
            let events = output["Events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                body.push_str(&notice_box(
                    "No Insights events. Turn on Insights on a trail (its page, Insights) to have unusual API activity recorded.",
                ));
            } else {
                body.push_str(
                    "<div class=\"table-wrap\"><table id=\"insights\"><caption>Insights events, newest first</caption><thead><tr>\
                     <th scope=\"col\">Event time</th><th scope=\"col\">State</th><th scope=\"col\">Event source</th>\
                     <th scope=\"col\">Event name</th><th scope=\"col\">Insight type</th><th scope=\"col\">Error code</th>\
                     <th scope=\"col\">Baseline average</th><th scope=\"col\">Insight average</th></tr></thead><tbody>",
                );
                for event in &events {
                    let record = record_of(event);
                    let details = &record["insightDetails"];
                    let stats = &details["insightContext"]["statistics"];
                    let id = event["EventId"].as_str().unwrap_or("");
                    body.push_str(&format!(
                        "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&view_link(id)),
                        esc(record["eventTime"].as_str().unwrap_or("(event)")),
                        esc(details["state"].as_str().unwrap_or("")),
                        esc(details["eventSource"].as_str().unwrap_or("")),
                        esc(details["eventName"].as_str().unwrap_or("")),
                        esc(details["insightType"].as_str().unwrap_or("")),
                        esc(details["errorCode"].as_str().unwrap_or("")),
                        average(&stats["baseline"]),
                        average(&stats["insight"]),
                    ));
                }
                body.push_str("</tbody></table></div>");
            }
            let next = output["NextToken"].as_str().filter(|t| !t.is_empty());
            body.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
            if fields.text("token").is_some() {
                body.push_str("<a href=\"/console/insights\">First page</a> ");
            }
            if let Some(token) = next {
                body.push_str(&format!(
                    "<a href=\"/console/insights?token={}\" rel=\"next\">Next page</a>",
                    esc(&encode(token))
                ));
            }
            body.push_str("</nav>");
        }
    }
    page(
        "Insights events",
        Section::Insights,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

/// The Start and End events sharing `shared` (the insight's two halves), as records.
async fn halves(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
    shared: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut found = Vec::new();
    let mut input = json!({ "EventCategory": "insight", "MaxResults": PAGE_SIZE });
    for _ in 0..PAIR_PAGES {
        let output = call(
            console,
            session,
            origin,
            Operation::LookupEvents,
            input.clone(),
        )
        .await?;
        for event in output["Events"].as_array().into_iter().flatten() {
            let record = record_of(event);
            if record["sharedEventID"].as_str() == Some(shared) {
                found.push(record);
            }
        }
        match output["NextToken"].as_str().filter(|t| !t.is_empty()) {
            Some(token) if found.len() < 2 => input["NextToken"] = json!(token),
            _ => break,
        }
    }
    Ok(found)
}

/// The insight's window: its start and, once it has ended, its end.
struct Window {
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

impl Window {
    fn of(record: &Value, others: &[Value]) -> Option<Self> {
        let state_time = |state: &str| {
            std::iter::once(record)
                .chain(others)
                .find(|r| r["insightDetails"]["state"].as_str() == Some(state))
                .and_then(event_time)
        };
        let end = state_time("End");
        let start = state_time("Start").or_else(|| {
            // An End event alone: its duration (minutes) gives the start.
            let minutes = record["insightDetails"]["insightContext"]["statistics"]
                ["insightDuration"]
                .as_i64()?;
            Some(end? - Duration::minutes(minutes))
        })?;
        Some(Self { start, end })
    }

    /// The span charted: an hour before the insight to half an hour after it (an open
    /// insight: an hour after its start).
    fn chart_span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = self.end.unwrap_or(self.start + Duration::minutes(30));
        (
            self.start - Duration::minutes(60),
            end + Duration::minutes(30),
        )
    }
}

/// ListInsightsMetricData's period for a span: at most 6 hours in minutes, 3 days in
/// 5 minutes, longer in hours.
fn period_for(span: Duration) -> i64 {
    if span <= Duration::hours(6) {
        60
    } else if span <= Duration::days(3) {
        300
    } else {
        3600
    }
}

/// The data points of the insight's key over the span, zeros filled in (all pages).
async fn metric_points(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
    details: &Value,
    span: (DateTime<Utc>, DateTime<Utc>),
    period: i64,
) -> Result<Vec<(f64, f64)>, ApiError> {
    let mut input = json!({
        "EventSource": details["eventSource"].as_str().unwrap_or(""),
        "EventName": details["eventName"].as_str().unwrap_or(""),
        "InsightType": details["insightType"].as_str().unwrap_or(""),
        "Period": period,
        "StartTime": span.0.timestamp(),
        "EndTime": span.1.timestamp(),
        "DataType": "FillWithZeros",
    });
    if details["insightType"].as_str() == Some("ApiErrorRateInsight") {
        input["ErrorCode"] = json!(details["errorCode"].as_str().unwrap_or(""));
    }
    let mut points = Vec::new();
    loop {
        let output = call(
            console,
            session,
            origin,
            Operation::ListInsightsMetricData,
            input.clone(),
        )
        .await?;
        let times = output["Timestamps"].as_array().cloned().unwrap_or_default();
        let values = output["Values"].as_array().cloned().unwrap_or_default();
        points.extend(
            times
                .iter()
                .zip(&values)
                .filter_map(|(t, v)| Some((t.as_f64()?, v.as_f64()?))),
        );
        match output["NextToken"].as_str().filter(|t| !t.is_empty()) {
            Some(token) => input["NextToken"] = json!(token),
            None => return Ok(points),
        }
    }
}

/// Chart geometry (SVG user units).
const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The chart: the count per period as a line, the baseline (per period) as a dashed line,
/// the insight's window shaded. `points` are (epoch seconds, count).
fn chart_svg(
    points: &[(f64, f64)],
    baseline: Option<f64>,
    window: &Window,
    span: (DateTime<Utc>, DateTime<Utc>),
    period: i64,
    title: &str,
) -> String {
    let (t0, t1) = (span.0.timestamp() as f64, span.1.timestamp() as f64);
    let largest = points
        .iter()
        .map(|(_, v)| *v)
        .chain(baseline)
        .fold(0.0_f64, f64::max);
    let top = if largest <= 0.0 { 1.0 } else { largest * 1.1 };
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0).max(1.0) * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - v / top) * (HEIGHT - TOP - BOTTOM);
    let mut svg = format!(
        "<svg class=\"chart\" id=\"insight-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-labelledby=\"chart-title chart-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">{}</title><desc id=\"chart-desc\">{} data points of {period} s from {} to {}; \
         largest {}; baseline {} per period.</desc>",
        esc(title),
        points.len(),
        opentrail_model::iso8601(span.0),
        opentrail_model::iso8601(span.1),
        number(largest),
        baseline.map_or_else(|| "unknown".to_owned(), number),
    );
    // The insight's window.
    let window_end = window.end.unwrap_or(span.1).timestamp() as f64;
    let (wx0, wx1) = (x(window.start.timestamp() as f64), x(window_end));
    let _ = write!(
        svg,
        "<rect class=\"insight-window\" x=\"{wx0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"><title>Insight window</title></rect>",
        (wx1 - wx0).max(1.0),
        HEIGHT - TOP - BOTTOM
    );
    // Axes with the y range and the span's ends.
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{0}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/>\
         <text class=\"tick\" x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>\
         <text class=\"tick\" x=\"{2}\" y=\"{0}\" text-anchor=\"end\">0</text>\
         <text class=\"tick\" x=\"{LEFT}\" y=\"{5}\">{6}</text>\
         <text class=\"tick\" x=\"{1}\" y=\"{5}\" text-anchor=\"end\">{7}</text>",
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        LEFT - 6.0,
        TOP + 4.0,
        number(top),
        HEIGHT - BOTTOM + 18.0,
        span.0.format("%H:%M"),
        span.1.format("%H:%M UTC"),
    );
    if let Some(baseline) = baseline {
        let _ = write!(
            svg,
            "<line class=\"baseline\" id=\"chart-baseline\" data-value=\"{}\" x1=\"{LEFT}\" y1=\"{1:.1}\" x2=\"{2}\" y2=\"{1:.1}\"><title>Baseline {0} per period</title></line>",
            number(baseline),
            y(baseline),
            WIDTH - RIGHT,
        );
    }
    let coordinates: Vec<String> = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let values: Vec<String> = points.iter().map(|(_, v)| number(*v)).collect();
    let _ = write!(
        svg,
        "<polyline class=\"series\" id=\"chart-series\" data-values=\"{}\" points=\"{}\"><title>Count per {period} s</title></polyline>",
        values.join(","),
        coordinates.join(" "),
    );
    svg.push_str("</svg>");
    svg
}

fn attributions_html(context: &Value) -> String {
    let attributions = context["attributions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if attributions.is_empty() {
        return String::new();
    }
    let mut html = String::from("<h2>Attributions</h2><div class=\"attributions\">");
    for attribution in &attributions {
        let name = attribution["attribute"].as_str().unwrap_or("");
        let mut values: Vec<String> = Vec::new();
        for side in ["insight", "baseline"] {
            for item in attribution[side].as_array().into_iter().flatten() {
                let value = item["value"].as_str().unwrap_or("").to_owned();
                if !values.contains(&value) {
                    values.push(value);
                }
            }
        }
        let average_of = |side: &str, value: &str| {
            attribution[side]
                .as_array()
                .into_iter()
                .flatten()
                .find(|item| item["value"].as_str() == Some(value))
                .map_or_else(String::new, average)
        };
        let _ = write!(
            html,
            "<div class=\"table-wrap\"><table class=\"attribution\" data-attribute=\"{0}\"><caption>{0}</caption><thead><tr>\
             <th scope=\"col\">Value</th><th scope=\"col\">Average in the insight</th><th scope=\"col\">Average in the baseline</th>\
             </tr></thead><tbody>",
            esc(name)
        );
        for value in &values {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(value),
                average_of("insight", value),
                average_of("baseline", value)
            );
        }
        html.push_str("</tbody></table></div>");
    }
    html.push_str("</div>");
    html
}

pub async fn view(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (_, session) = match require(&console, &headers, true) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let fields = Fields::from_query(&uri);
    let id = fields.text("id").unwrap_or("");
    let origin = origin(&peer, &headers);
    let body = match render_view(&console, &session, &origin, id).await {
        Ok(body) => body,
        Err(e) => error_box(e.code, &e.message),
    };
    let body = format!("<p><a href=\"/console/insights\">← Insights events</a></p>{body}");
    page(
        "Insight",
        Section::Insights,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

async fn render_view(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
    id: &str,
) -> Result<String, ApiError> {
    let found = call(
        console,
        session,
        origin,
        Operation::LookupEvents,
        json!({
            "EventCategory": "insight",
            "LookupAttributes": [{ "AttributeKey": "EventId", "AttributeValue": id }],
            "MaxResults": 1,
        }),
    )
    .await?;
    let record = found["Events"]
        .as_array()
        .and_then(|events| events.first())
        .map(record_of)
        .ok_or_else(|| {
            ApiError::new(
                "ResourceNotFound",
                format!("no Insights event with the ID '{id}' in this account's event history"),
            )
        })?;
    let details = &record["insightDetails"];
    let context = &details["insightContext"];
    let stats = &context["statistics"];
    let shared = record["sharedEventID"].as_str().unwrap_or("");
    let others = if shared.is_empty() {
        Vec::new()
    } else {
        halves(console, session, origin, shared).await?
    };
    let window = Window::of(&record, &others).ok_or_else(|| {
        ApiError::new(
            "ResourceNotFound",
            format!("the Insights event '{id}' has no start time"),
        )
    })?;
    let span = window.chart_span();
    let period = period_for(span.1 - span.0);
    let mut html = String::from("<dl class=\"summary\" id=\"insight-summary\">");
    let mut item = |name: &str, value: String| {
        let _ = write!(html, "<dt>{name}</dt><dd>{}</dd>", esc(&value));
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    item("Event source", text(&details["eventSource"]));
    item("Event name", text(&details["eventName"]));
    item("Insight type", text(&details["insightType"]));
    if let Some(code) = details["errorCode"].as_str() {
        item("Error code", code.to_owned());
    }
    item("State of this event", text(&details["state"]));
    item("Started", opentrail_model::iso8601(window.start));
    item(
        "Ended",
        window
            .end
            .map_or_else(|| "(still open)".to_owned(), opentrail_model::iso8601),
    );
    item("Baseline average per minute", average(&stats["baseline"]));
    item("Insight average per minute", average(&stats["insight"]));
    if let Some(minutes) = stats["baselineDuration"].as_i64() {
        item("Baseline duration (minutes)", minutes.to_string());
    }
    html.push_str("</dl>");
    let points = metric_points(console, session, origin, details, span, period).await?;
    let baseline = stats["baseline"]["average"]
        .as_f64()
        .map(|per_minute| per_minute * period as f64 / 60.0);
    let title = format!(
        "{} {} calls per {period} s against the baseline",
        text(&details["eventSource"]),
        text(&details["eventName"]),
    );
    let _ = write!(
        html,
        "<h2>Rate against the baseline</h2><figure class=\"chart-figure\">{}\
         <figcaption><span class=\"key key-series\">Count per {period} s</span> \
         <span class=\"key key-baseline\">Baseline</span> <span class=\"key key-window\">Insight window</span></figcaption></figure>",
        chart_svg(&points, baseline, &window, span, period, &title)
    );
    html.push_str(
        "<details class=\"card\"><summary>Data points</summary><div class=\"table-wrap\"><table id=\"metric-points\">\
         <caption>Count per period</caption><thead><tr><th scope=\"col\">Period start</th><th scope=\"col\">Count</th></tr></thead><tbody>",
    );
    for (time, value) in &points {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&time_text(&json!(time))),
            number(*value)
        );
    }
    html.push_str("</tbody></table></div></details>");
    html.push_str(&attributions_html(context));
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 - 1_700_000_000 % 60 + minute * 60, 0).unwrap()
    }

    #[test]
    fn the_chart_has_the_series_baseline_and_window() {
        let window = Window {
            start: at(0),
            end: Some(at(2)),
        };
        let span = window.chart_span();
        let points: Vec<(f64, f64)> = (-60..32)
            .map(|m| {
                let value = if (0..2).contains(&m) { 40.0 } else { 0.0 };
                (at(m).timestamp() as f64, value)
            })
            .collect();
        let svg = chart_svg(&points, Some(0.0442), &window, span, 60, "a <chart>");
        assert!(svg.contains("<title id=\"chart-title\">a &lt;chart&gt;</title>"));
        assert!(svg.contains("data-value=\"0.0442\""));
        let values = svg
            .split("data-values=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert_eq!(values.split(',').count(), points.len());
        assert_eq!(values.split(',').filter(|v| *v == "40").count(), 2);
        assert!(svg.contains("class=\"insight-window\""));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn an_end_event_alone_gives_its_window_from_the_duration() {
        let end = json!({
            "eventTime": opentrail_model::iso8601(at(5)),
            "insightDetails": { "state": "End", "insightContext": { "statistics": { "insightDuration": 3 } } },
        });
        let window = Window::of(&end, &[]).unwrap();
        assert_eq!(window.start, at(2));
        assert_eq!(window.end, Some(at(5)));
        assert_eq!(period_for(Duration::hours(2)), 60);
        assert_eq!(period_for(Duration::days(2)), 300);
        assert_eq!(period_for(Duration::days(9)), 3600);
    }

    #[test]
    fn attributions_merge_insight_and_baseline_values() {
        let html = attributions_html(&json!({ "attributions": [{
            "attribute": "userAgent",
            "insight": [{ "value": "burst-agent", "average": 40.0 }],
            "baseline": [{ "value": "burst-agent", "average": 0.5 }, { "value": "cli", "average": 0.1 }],
        }]}));
        assert!(html.contains("<caption>userAgent</caption>"));
        assert!(html.contains("<td>burst-agent</td><td>40.0000</td><td>0.5000</td>"));
        assert!(html.contains("<td>cli</td><td></td><td>0.1000</td>"));
    }
}
