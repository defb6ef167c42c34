//! Event history: newest first, 50 a page (LookupEvents' NextToken for the next page),
//! one lookup attribute and a time range, the columns each user chooses, an event's
//! record, and downloads of the filtered or complete history as CSV or JSON, streamed a
//! page at a time. The CSV's columns and the JSON's `{"Records":[...]}` are those of
//! `opentrail events export`.

use crate::form::{encode, Fields};
use crate::html::{error_box, esc, notice_box, page, Section};
use crate::session::{require, require_post};
use crate::{Console, State};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode, Uri};
use opentrail_http::api::{call_operation, CallOrigin};
use opentrail_operations::Operation;
use opentrail_wire::ApiError;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

const PAGE_SIZE: u64 = 50;

/// The lookup attributes LookupEvents accepts.
const ATTRIBUTES: [&str; 8] = [
    "EventName",
    "EventSource",
    "Username",
    "ResourceType",
    "ResourceName",
    "AccessKeyId",
    "ReadOnly",
    "EventId",
];

/// One column of the event history table: its id (the form value), heading and cell.
struct Column {
    id: &'static str,
    heading: &'static str,
    cell: fn(&Value, &Value) -> String,
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_owned).unwrap_or_default()
}

/// Every column, in the order the table and the CSV download use. The CSV has them all.
const COLUMNS: [Column; 12] = [
    Column {
        id: "event_id",
        heading: "Event ID",
        cell: |e, _| text(&e["EventId"]),
    },
    Column {
        id: "event_time",
        heading: "Event time",
        cell: |e, _| event_time(e),
    },
    Column {
        id: "user_name",
        heading: "User name",
        cell: |e, _| text(&e["Username"]),
    },
    Column {
        id: "event_name",
        heading: "Event name",
        cell: |e, _| text(&e["EventName"]),
    },
    Column {
        id: "resource_type",
        heading: "Resource type",
        cell: |e, _| resource_column(e, "ResourceType"),
    },
    Column {
        id: "resource_name",
        heading: "Resource name",
        cell: |e, _| resource_column(e, "ResourceName"),
    },
    Column {
        id: "access_key",
        heading: "AWS access key",
        cell: |e, _| text(&e["AccessKeyId"]),
    },
    Column {
        id: "region",
        heading: "AWS region",
        cell: |_, r| text(&r["awsRegion"]),
    },
    Column {
        id: "error_code",
        heading: "Error code",
        cell: |_, r| text(&r["errorCode"]),
    },
    Column {
        id: "source_ip",
        heading: "Source IP address",
        cell: |_, r| text(&r["sourceIPAddress"]),
    },
    Column {
        id: "event_source",
        heading: "Event source",
        cell: |e, _| text(&e["EventSource"]),
    },
    Column {
        id: "read_only",
        heading: "Read-only",
        cell: |e, _| text(&e["ReadOnly"]),
    },
];

/// The columns AWS's console shows until a user chooses.
const DEFAULT_COLUMNS: [&str; 6] = [
    "event_name",
    "event_time",
    "user_name",
    "event_source",
    "resource_type",
    "resource_name",
];

/// Metadata-store collection of each user's chosen columns, keyed by principal ARN.
const COLUMNS_COLLECTION: &str = "console-event-columns";

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

fn record_of(event: &Value) -> Value {
    event["CloudTrailEvent"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

pub(crate) fn origin(peer: &SocketAddr, headers: &HeaderMap) -> CallOrigin {
    CallOrigin {
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// The filter of a history page or download, from its query string.
struct Filter {
    attribute: Option<(String, String)>,
    start: Option<String>,
    end: Option<String>,
}

impl Filter {
    fn from_fields(fields: &Fields) -> Self {
        let attribute = match (fields.text("attr"), fields.text("value")) {
            (Some(key), Some(value)) => Some((key.to_owned(), value.to_owned())),
            _ => None,
        };
        Self {
            attribute,
            start: fields.text("start").map(str::to_owned),
            end: fields.text("end").map(str::to_owned),
        }
    }

    /// The query string that repeats this filter.
    fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some((key, value)) = &self.attribute {
            parts.push(format!("attr={}&value={}", encode(key), encode(value)));
        }
        if let Some(start) = &self.start {
            parts.push(format!("start={}", encode(start)));
        }
        if let Some(end) = &self.end {
            parts.push(format!("end={}", encode(end)));
        }
        parts.join("&")
    }

    /// The LookupEvents input of this filter's first page.
    fn lookup_input(&self) -> Result<Value, ApiError> {
        let mut input = json!({ "MaxResults": PAGE_SIZE });
        if let Some((key, value)) = &self.attribute {
            input["LookupAttributes"] = json!([{ "AttributeKey": key, "AttributeValue": value }]);
        }
        if let Some(start) = &self.start {
            input["StartTime"] = json!(parse_time(start, "start time")?);
        }
        if let Some(end) = &self.end {
            input["EndTime"] = json!(parse_time(end, "end time")?);
        }
        Ok(input)
    }
}

/// A time of the form (a `datetime-local` value, taken as UTC) or RFC 3339, as epoch seconds.
fn parse_time(text: &str, what: &str) -> Result<i64, ApiError> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp());
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(time) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(time.and_utc().timestamp());
        }
    }
    Err(ApiError::validation(format!(
        "the {what} '{text}' is not a time (use YYYY-MM-DDTHH:MM, UTC)"
    )))
}

/// The user's chosen column ids, or the defaults.
async fn chosen_columns(console: &Console, principal: String) -> Vec<String> {
    let meta = Arc::clone(&console.meta);
    let stored =
        tokio::task::spawn_blocking(move || meta.get_document(COLUMNS_COLLECTION, &principal))
            .await;
    let chosen = match stored {
        Ok(Ok(Some(text))) => serde_json::from_str::<Vec<String>>(&text).ok(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "failed to read console column choice");
            None
        }
        _ => None,
    };
    chosen
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| DEFAULT_COLUMNS.iter().map(|c| (*c).to_owned()).collect())
}

pub async fn history(
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
    let filter = Filter::from_fields(&fields);
    let chosen = chosen_columns(&console, session.caller.principal_arn()).await;
    let columns: Vec<&Column> = COLUMNS
        .iter()
        .filter(|c| chosen.iter().any(|id| id == c.id))
        .collect();
    let answer = match filter.lookup_input() {
        Ok(mut input) => {
            if let Some(token) = fields.text("token") {
                input["NextToken"] = json!(token);
            }
            call_operation(
                &console.app,
                &session.caller,
                Operation::LookupEvents,
                &input,
                origin(&peer, &headers),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let mut body = filter_form(&filter);
    body.push_str(&downloads(&filter));
    match answer {
        Err(e) => body.push_str(&error_box(e.code, &e.message)),
        Ok(output) => {
            body.push_str(&events_table(&output, &columns));
            let next = output["NextToken"].as_str().filter(|t| !t.is_empty());
            body.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
            if fields.text("token").is_some() {
                body.push_str(&format!(
                    "<a href=\"/console/events?{}\">First page</a> ",
                    esc(&filter.query())
                ));
            }
            if let Some(token) = next {
                let mut query = filter.query();
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&format!("token={}", encode(token)));
                body.push_str(&format!(
                    "<a href=\"/console/events?{}\" rel=\"next\">Next page</a>",
                    esc(&query)
                ));
            }
            body.push_str("</nav>");
        }
    }
    body.push_str(&column_picker(&chosen, &session.csrf, &filter));
    page(
        "Event history",
        Section::Events,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

fn filter_form(filter: &Filter) -> String {
    let (key, value) = filter
        .attribute
        .as_ref()
        .map_or(("EventName", ""), |(k, v)| (k.as_str(), v.as_str()));
    let options: String = ATTRIBUTES
        .iter()
        .map(|a| {
            let selected = if *a == key { " selected" } else { "" };
            format!("<option value=\"{a}\"{selected}>{a}</option>")
        })
        .collect();
    format!(
        "<form method=\"get\" action=\"/console/events\" class=\"filters\" role=\"search\">\
         <div><label for=\"attr\">Lookup attribute</label><select id=\"attr\" name=\"attr\">{options}</select></div>\
         <div><label for=\"value\">Value</label><input id=\"value\" name=\"value\" value=\"{}\"></div>\
         <div><label for=\"start\">Start time (UTC)</label><input id=\"start\" name=\"start\" type=\"datetime-local\" value=\"{}\"></div>\
         <div><label for=\"end\">End time (UTC)</label><input id=\"end\" name=\"end\" type=\"datetime-local\" value=\"{}\"></div>\
         <div><button type=\"submit\" id=\"apply-filter\">Apply</button> <a href=\"/console/events\">Clear</a></div></form>",
        esc(value),
        esc(filter.start.as_deref().unwrap_or("")),
        esc(filter.end.as_deref().unwrap_or("")),
    )
}

fn downloads(filter: &Filter) -> String {
    let query = filter.query();
    let filtered = |format: &str| {
        let mut q = format!("format={format}");
        if !query.is_empty() {
            q.push('&');
            q.push_str(&query);
        }
        esc(&q)
    };
    format!(
        "<p class=\"downloads\">Download: \
         <a id=\"download-csv\" href=\"/console/events/download?{}\">filtered (CSV)</a> · \
         <a id=\"download-json\" href=\"/console/events/download?{}\">filtered (JSON)</a> · \
         <a id=\"download-all-csv\" href=\"/console/events/download?format=csv\">complete history (CSV)</a> · \
         <a id=\"download-all-json\" href=\"/console/events/download?format=json\">complete history (JSON)</a></p>",
        filtered("csv"),
        filtered("json"),
    )
}

fn events_table(output: &Value, columns: &[&Column]) -> String {
    let events = output["Events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        return notice_box("No events match.");
    }
    let mut html = String::from(
        "<div class=\"table-wrap\"><table id=\"events\"><caption>Events, newest first</caption><thead><tr>",
    );
    for column in columns {
        html.push_str(&format!("<th scope=\"col\">{}</th>", column.heading));
    }
    html.push_str("</tr></thead><tbody>");
    for event in &events {
        let record = record_of(event);
        html.push_str("<tr>");
        for (index, column) in columns.iter().enumerate() {
            let cell = esc(&(column.cell)(event, &record));
            if index == 0 {
                html.push_str(&format!(
                    "<td><a href=\"/console/events/detail?id={}\">{}</a></td>",
                    esc(&encode(&text(&event["EventId"]))),
                    if cell.is_empty() {
                        "(event)".to_owned()
                    } else {
                        cell
                    }
                ));
            } else {
                html.push_str(&format!("<td>{cell}</td>"));
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

fn column_picker(chosen: &[String], csrf: &str, filter: &Filter) -> String {
    let boxes: String = COLUMNS
        .iter()
        .map(|c| {
            let checked = if chosen.iter().any(|id| id == c.id) {
                " checked"
            } else {
                ""
            };
            format!(
                "<label class=\"check\"><input type=\"checkbox\" name=\"column\" value=\"{}\" id=\"col-{}\"{checked}> {}</label>",
                c.id, c.id, c.heading
            )
        })
        .collect();
    format!(
        "<details class=\"card\"><summary>Columns</summary>\
         <form method=\"post\" action=\"/console/events/columns\" id=\"columns-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"back\" value=\"{}\">\
         <fieldset><legend>Columns to show</legend>{boxes}</fieldset>\
         <button type=\"submit\" id=\"save-columns\">Save columns</button></form></details>",
        esc(csrf),
        esc(&filter.query()),
    )
}

pub async fn save_columns(
    axum::extract::State(console): State,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields = Fields::parse(&body);
    let (_, session) = match require_post(&console, &headers, &fields) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let chosen: Vec<&str> = fields
        .all("column")
        .filter(|id| COLUMNS.iter().any(|c| c.id == *id))
        .collect();
    if chosen.is_empty() {
        return page(
            "Event history",
            Section::Events,
            Some(&session),
            &error_box("ValidationException", "choose at least one column"),
            StatusCode::BAD_REQUEST,
        );
    }
    let meta = Arc::clone(&console.meta);
    let principal = session.caller.principal_arn();
    let value = json!(chosen).to_string();
    let saved = tokio::task::spawn_blocking(move || {
        meta.put_document(COLUMNS_COLLECTION, &principal, &value)
    })
    .await;
    if !matches!(saved, Ok(Ok(()))) {
        return page(
            "Event history",
            Section::Events,
            Some(&session),
            &error_box("InternalFailure", "the column choice could not be saved"),
            StatusCode::INTERNAL_SERVER_ERROR,
        );
    }
    // Only a filter query goes back: never a redirect elsewhere.
    let back = fields.get("back").unwrap_or("");
    let filter = Filter::from_fields(&Fields::parse(back));
    Redirect::to(&format!("/console/events?{}", filter.query())).into_response()
}

pub async fn detail(
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
    let input = json!({
        "LookupAttributes": [{ "AttributeKey": "EventId", "AttributeValue": id }],
        "MaxResults": 1,
    });
    let answer = call_operation(
        &console.app,
        &session.caller,
        Operation::LookupEvents,
        &input,
        origin(&peer, &headers),
    )
    .await;
    let body = match answer {
        Err(e) => error_box(e.code, &e.message),
        Ok(output) => match output["Events"].as_array().and_then(|e| e.first()) {
            None => error_box(
                "ResourceNotFound",
                &format!("no event with the ID '{id}' in this account's event history"),
            ),
            Some(event) => {
                let record = record_of(event);
                let mut html = String::from("<dl class=\"summary\">");
                for column in &COLUMNS {
                    html.push_str(&format!(
                        "<dt>{}</dt><dd>{}</dd>",
                        column.heading,
                        esc(&(column.cell)(event, &record))
                    ));
                }
                html.push_str("</dl><h2>Event record</h2>");
                let pretty = serde_json::to_string_pretty(&record).unwrap_or_default();
                html.push_str(&format!(
                    "<pre id=\"event-record\" tabindex=\"0\" aria-label=\"Event record JSON\">{}</pre>",
                    esc(&pretty)
                ));
                html
            }
        },
    };
    let body = format!("<p><a href=\"/console/events\">← Event history</a></p>{body}");
    page(
        "Event",
        Section::Events,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

/// Streams the filtered (or, without a filter, complete) history: one LookupEvents page
/// is read, written out and dropped before the next, so memory stays one page whatever
/// the history's size. Throttled pages are asked again after a second.
pub async fn download(
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
    let csv = match fields.get("format") {
        Some("csv") => true,
        Some("json") | None => false,
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("format must be csv or json, not '{other}'"),
            )
                .into_response()
        }
    };
    let filter = Filter::from_fields(&fields);
    let mut input = match filter.lookup_input() {
        Ok(input) => input,
        Err(e) => return (StatusCode::BAD_REQUEST, e.message).into_response(),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let origin = origin(&peer, &headers);
    tokio::spawn(async move {
        let first = if csv {
            csv_line(COLUMNS.iter().map(|c| c.heading.to_owned()))
        } else {
            Bytes::from_static(b"{\"Records\":[")
        };
        if sender.send(Ok(first)).await.is_err() {
            return;
        }
        let mut written = 0usize;
        loop {
            let page = call_operation(
                &console.app,
                &session.caller,
                Operation::LookupEvents,
                &input,
                CallOrigin {
                    source_ip: origin.source_ip.clone(),
                    user_agent: origin.user_agent.clone(),
                },
            )
            .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if e.code == "ThrottlingException" => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(code = e.code, error = %e.message, "console download stopped");
                    let _ = sender.send(Err(std::io::Error::other(e.message))).await;
                    return;
                }
            };
            let mut chunk = Vec::new();
            for event in page["Events"].as_array().into_iter().flatten() {
                if csv {
                    let record = record_of(event);
                    chunk.extend_from_slice(&csv_line(
                        COLUMNS.iter().map(|c| (c.cell)(event, &record)),
                    ));
                } else {
                    if written > 0 {
                        chunk.push(b',');
                    }
                    chunk.extend_from_slice(
                        event["CloudTrailEvent"]
                            .as_str()
                            .unwrap_or("null")
                            .as_bytes(),
                    );
                }
                written += 1;
            }
            if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            match page["NextToken"].as_str().filter(|t| !t.is_empty()) {
                Some(token) => input["NextToken"] = json!(token),
                None => break,
            }
        }
        if !csv {
            let _ = sender.send(Ok(Bytes::from_static(b"]}\n"))).await;
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let (content_type, name) = if csv {
        ("text/csv; charset=utf-8", "event_history.csv")
    } else {
        ("application/json", "event_history.json")
    };
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Ok(value) = format!("attachment; filename=\"{name}\"").parse() {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// One CSV record (RFC 4180 quoting, `\n` terminated, as `opentrail events export`).
pub(crate) fn csv_line(cells: impl IntoIterator<Item = String>) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let cells: Vec<String> = cells.into_iter().collect();
    if let Err(e) = writer.write_record(&cells) {
        tracing::error!(error = %e, "failed to write a CSV record");
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_match_the_cli_export() {
        let headings: Vec<&str> = COLUMNS.iter().map(|c| c.heading).collect();
        assert_eq!(
            headings,
            [
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
            ]
        );
        assert_eq!(
            &csv_line(["a,b".to_owned(), "c".to_owned()])[..],
            b"\"a,b\",c\n"
        );
    }

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(parse_time("1970-01-01T00:01", "start").unwrap(), 60);
        assert_eq!(parse_time("1970-01-01T00:00:30Z", "start").unwrap(), 30);
        assert!(parse_time("yesterday", "start").is_err());
    }

    #[test]
    fn filter_round_trips_through_its_query() {
        let filter = Filter::from_fields(&Fields::parse(
            "attr=EventName&value=Create+Trail&start=2026-01-01T00:00",
        ));
        let again = Filter::from_fields(&Fields::parse(&filter.query()));
        assert_eq!(
            again.attribute,
            Some(("EventName".into(), "Create Trail".into()))
        );
        assert_eq!(again.start.as_deref(), Some("2026-01-01T00:00"));
        assert_eq!(again.end, None);
    }
}
