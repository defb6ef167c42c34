//! Trails: the list with home region, multi-region and logging status; create and edit
//! with every UpdateTrail field; basic or advanced event selectors as JSON the API
//! validates; Insights; start and stop logging; tags; delete; and the trail's status.
//! Every API error is shown with its code and message.

use crate::events::origin;
use crate::form::{encode, Fields};
use crate::html::{error_box, esc, notice_box, page, Section};
use crate::session::{require, require_post, Session};
use crate::{Console, State};
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, Uri};
use opentrail_http::api::{call_operation, CallOrigin};
use opentrail_operations::Operation;
use opentrail_wire::ApiError;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;

pub(crate) async fn call(
    console: &Console,
    session: &Session,
    origin: &CallOrigin,
    operation: Operation,
    input: Value,
) -> Result<Value, ApiError> {
    call_operation(
        &console.app,
        &session.caller,
        operation,
        &input,
        CallOrigin {
            source_ip: origin.source_ip.clone(),
            user_agent: origin.user_agent.clone(),
        },
    )
    .await
}

fn yes_no(value: &Value) -> &'static str {
    if value.as_bool() == Some(true) {
        "Yes"
    } else {
        "No"
    }
}

fn view_link(arn: &str) -> String {
    format!("/console/trails/view?name={}", encode(arn))
}

pub async fn list(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (_, session) = match require(&console, &headers, true) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let origin = origin(&peer, &headers);
    let mut body = String::from(
        "<p><a class=\"button\" id=\"create-trail\" href=\"/console/trails/new\">Create trail</a></p>",
    );
    match call(
        &console,
        &session,
        &origin,
        Operation::DescribeTrails,
        json!({}),
    )
    .await
    {
        Err(e) => body.push_str(&error_box(e.code, &e.message)),
        Ok(output) => {
            let trails = output["trailList"].as_array().cloned().unwrap_or_default();
            if trails.is_empty() {
                body.push_str(&notice_box("No trails in this region yet."));
            } else {
                body.push_str(
                    "<div class=\"table-wrap\"><table id=\"trails\"><caption>Trails</caption><thead><tr>\
                     <th scope=\"col\">Name</th><th scope=\"col\">Home region</th><th scope=\"col\">Multi-region</th>\
                     <th scope=\"col\">S3 bucket</th><th scope=\"col\">Logging</th></tr></thead><tbody>",
                );
                for trail in &trails {
                    let arn = trail["TrailARN"].as_str().unwrap_or("");
                    let status = call(
                        &console,
                        &session,
                        &origin,
                        Operation::GetTrailStatus,
                        json!({ "Name": arn }),
                    )
                    .await;
                    let logging = match status {
                        Ok(status) if status["IsLogging"].as_bool() == Some(true) => "Logging",
                        Ok(_) => "Off",
                        Err(_) => "Unknown",
                    };
                    body.push_str(&format!(
                        "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{logging}</td></tr>",
                        esc(&view_link(arn)),
                        esc(trail["Name"].as_str().unwrap_or("")),
                        esc(trail["HomeRegion"].as_str().unwrap_or("")),
                        yes_no(&trail["IsMultiRegionTrail"]),
                        esc(trail["S3BucketName"].as_str().unwrap_or("")),
                    ));
                }
                body.push_str("</tbody></table></div>");
            }
        }
    }
    page(
        "Trails",
        Section::Trails,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

/// The trail settings fields (create and edit), filled from `trail`.
fn settings_fields(trail: &Value, with_name: bool) -> String {
    let value = |member: &str| esc(trail[member].as_str().unwrap_or(""));
    let check = |member: &str, default: bool| {
        if trail[member].as_bool().unwrap_or(default) {
            " checked"
        } else {
            ""
        }
    };
    let input = |id: &str, label: &str, member: &str, required: bool| {
        format!(
            "<label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"{member}\" value=\"{}\"{}>",
            value(member),
            if required { " required" } else { "" }
        )
    };
    let mut html = String::new();
    if with_name {
        html.push_str(&input("trail-name", "Trail name", "Name", true));
    }
    html.push_str(&input("bucket", "S3 bucket", "S3BucketName", true));
    html.push_str(&input("prefix", "S3 key prefix", "S3KeyPrefix", false));
    html.push_str(&input("sns", "SNS topic", "SnsTopicName", false));
    html.push_str(&input("kms", "KMS key ID", "KmsKeyId", false));
    html.push_str(&input(
        "cwl-group",
        "CloudWatch Logs log group ARN",
        "CloudWatchLogsLogGroupArn",
        false,
    ));
    html.push_str(&input(
        "cwl-role",
        "CloudWatch Logs role ARN",
        "CloudWatchLogsRoleArn",
        false,
    ));
    html.push_str(&format!(
        "<label class=\"check\"><input type=\"checkbox\" id=\"validation\" name=\"LogFileValidationEnabled\"{}> Log file validation</label>\
         <label class=\"check\"><input type=\"checkbox\" id=\"global\" name=\"IncludeGlobalServiceEvents\"{}> Include global service events</label>\
         <label class=\"check\"><input type=\"checkbox\" id=\"multi-region\" name=\"IsMultiRegionTrail\"{}> Multi-region trail</label>",
        check("LogFileValidationEnabled", true),
        check("IncludeGlobalServiceEvents", true),
        check("IsMultiRegionTrail", true),
    ));
    html
}

/// The optional text members of the settings form.
const OPTIONAL_MEMBERS: [&str; 5] = [
    "S3KeyPrefix",
    "SnsTopicName",
    "KmsKeyId",
    "CloudWatchLogsLogGroupArn",
    "CloudWatchLogsRoleArn",
];

/// CreateTrail/UpdateTrail input from the settings form. An emptied optional member is
/// sent as "" (which removes it, as in AWS) only when `current` has it.
fn settings_input(fields: &Fields, name: &str, current: Option<&Value>) -> Value {
    let mut input = Map::new();
    input.insert("Name".into(), json!(name));
    input.insert(
        "S3BucketName".into(),
        json!(fields.text("S3BucketName").unwrap_or("")),
    );
    for member in OPTIONAL_MEMBERS {
        match fields.text(member) {
            Some(value) => {
                input.insert(member.into(), json!(value));
            }
            None if current.is_some_and(|t| t[member].as_str().is_some_and(|v| !v.is_empty())) => {
                input.insert(member.into(), json!(""));
            }
            None => {}
        }
    }
    input.insert(
        "EnableLogFileValidation".into(),
        json!(fields.checked("LogFileValidationEnabled")),
    );
    input.insert(
        "IncludeGlobalServiceEvents".into(),
        json!(fields.checked("IncludeGlobalServiceEvents")),
    );
    input.insert(
        "IsMultiRegionTrail".into(),
        json!(fields.checked("IsMultiRegionTrail")),
    );
    Value::Object(input)
}

fn selectors_fields(kind: &str, json_text: &str) -> String {
    let checked = |k: &str| if k == kind { " checked" } else { "" };
    format!(
        "<fieldset><legend>Event selectors</legend>\
         <label class=\"check\"><input type=\"radio\" name=\"selector_kind\" value=\"basic\" id=\"kind-basic\"{}> Basic (EventSelectors)</label>\
         <label class=\"check\"><input type=\"radio\" name=\"selector_kind\" value=\"advanced\" id=\"kind-advanced\"{}> Advanced (AdvancedEventSelectors)</label>\
         <label for=\"selectors\">Selectors as JSON (a list)</label>\
         <textarea id=\"selectors\" name=\"selectors\" rows=\"10\" spellcheck=\"false\">{}</textarea></fieldset>",
        checked("basic"),
        checked("advanced"),
        esc(json_text),
    )
}

fn insights_fields(call_rate: bool, error_rate: bool) -> String {
    let check = |on: bool| if on { " checked" } else { "" };
    format!(
        "<fieldset><legend>Insights</legend>\
         <label class=\"check\"><input type=\"checkbox\" id=\"insight-call-rate\" name=\"ApiCallRateInsight\"{}> API call rate</label>\
         <label class=\"check\"><input type=\"checkbox\" id=\"insight-error-rate\" name=\"ApiErrorRateInsight\"{}> API error rate</label></fieldset>",
        check(call_rate),
        check(error_rate),
    )
}

/// PutEventSelectors input from the selector fields; `None` when the JSON is empty.
fn selectors_input(fields: &Fields, trail: &str) -> Result<Option<Value>, ApiError> {
    let Some(text) = fields.text("selectors") else {
        return Ok(None);
    };
    let selectors: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            "InvalidEventSelectorsException",
            format!("the selectors are not JSON: {e}"),
        )
    })?;
    let member = match fields.get("selector_kind") {
        Some("basic") => "EventSelectors",
        _ => "AdvancedEventSelectors",
    };
    Ok(Some(json!({ "TrailName": trail, member: selectors })))
}

fn insights_input(fields: &Fields, trail: &str) -> Value {
    let selectors: Vec<Value> = ["ApiCallRateInsight", "ApiErrorRateInsight"]
        .iter()
        .filter(|kind| fields.checked(kind))
        .map(|kind| json!({ "InsightType": kind }))
        .collect();
    json!({ "TrailName": trail, "InsightSelectors": selectors })
}

fn create_page(session: &Session, fields: Option<&Fields>, error: Option<&ApiError>) -> Response {
    let trail = fields.map_or(json!({}), |f| {
        let mut t = Map::new();
        for member in ["Name", "S3BucketName"]
            .iter()
            .chain(OPTIONAL_MEMBERS.iter())
        {
            t.insert((*member).into(), json!(f.get(member).unwrap_or("")));
        }
        for member in [
            "LogFileValidationEnabled",
            "IncludeGlobalServiceEvents",
            "IsMultiRegionTrail",
        ] {
            t.insert(member.into(), json!(f.checked(member)));
        }
        Value::Object(t)
    });
    let kind = fields
        .and_then(|f| f.get("selector_kind"))
        .unwrap_or("advanced");
    let selectors = fields.and_then(|f| f.get("selectors")).unwrap_or("");
    let checked = |name: &str| fields.is_some_and(|f| f.checked(name));
    let body = format!(
        "{}<form method=\"post\" action=\"/console/trails/new\" class=\"card\" id=\"create-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">{}{}{}\
         <label class=\"check\"><input type=\"checkbox\" id=\"start-logging\" name=\"start_logging\"{}> Start logging after creating</label>\
         <button type=\"submit\" id=\"create-submit\">Create trail</button></form>",
        error.map_or(String::new(), |e| error_box(e.code, &e.message)),
        esc(&session.csrf),
        settings_fields(&trail, true),
        selectors_fields(kind, selectors),
        insights_fields(checked("ApiCallRateInsight"), checked("ApiErrorRateInsight")),
        if fields.is_none() || checked("start_logging") { " checked" } else { "" },
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        "Create trail",
        Section::Trails,
        Some(session),
        &body,
        status,
    )
}

pub async fn new_form(axum::extract::State(console): State, headers: HeaderMap) -> Response {
    match require(&console, &headers, true) {
        Ok((_, session)) => create_page(&session, None, None),
        Err(answer) => *answer,
    }
}

pub async fn create(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields = Fields::parse(&body);
    let (_, session) = match require_post(&console, &headers, &fields) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let origin = origin(&peer, &headers);
    let name = fields.text("Name").unwrap_or("").to_owned();
    // Selectors are checked for JSON before anything is created.
    let selectors = match selectors_input(&fields, &name) {
        Ok(selectors) => selectors,
        Err(e) => return create_page(&session, Some(&fields), Some(&e)),
    };
    let created = call(
        &console,
        &session,
        &origin,
        Operation::CreateTrail,
        settings_input(&fields, &name, None),
    )
    .await;
    let arn = match created {
        Ok(output) => output["TrailARN"].as_str().unwrap_or(&name).to_owned(),
        Err(e) => return create_page(&session, Some(&fields), Some(&e)),
    };
    // The trail exists from here on: later failures are shown on its page.
    let mut steps: Vec<(Operation, Value)> = Vec::new();
    if let Some(mut input) = selectors {
        input["TrailName"] = json!(arn);
        steps.push((Operation::PutEventSelectors, input));
    }
    if fields.checked("ApiCallRateInsight") || fields.checked("ApiErrorRateInsight") {
        steps.push((
            Operation::PutInsightSelectors,
            insights_input(&fields, &arn),
        ));
    }
    if fields.checked("start_logging") {
        steps.push((Operation::StartLogging, json!({ "Name": arn })));
    }
    for (operation, input) in steps {
        if let Err(e) = call(&console, &session, &origin, operation, input).await {
            let message = format!(
                "The trail was created, but {operation} failed: {}",
                e.message
            );
            let failure = ApiError::new(e.code, message);
            return render_view(&console, &session, &origin, &arn, Some(Err(failure))).await;
        }
    }
    Redirect::to(&format!("{}&done=created", view_link(&arn))).into_response()
}

/// What a successful form post did, as `done=` names it.
fn done_message(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "Trail created.",
        "updated" => "Trail settings saved.",
        "selectors" => "Event selectors saved.",
        "insights" => "Insights selectors saved.",
        "started" => "Logging started.",
        "stopped" => "Logging stopped.",
        "tags" => "Tags saved.",
        _ => return None,
    })
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
    let name = fields.text("name").unwrap_or("");
    let outcome = fields
        .get("done")
        .and_then(done_message)
        .map(|m| Ok(m.to_owned()));
    render_view(&console, &session, &origin(&peer, &headers), name, outcome).await
}

fn status_rows(status: &Value) -> String {
    let rows = [
        ("Logging", "IsLogging"),
        ("Latest delivery", "LatestDeliveryTime"),
        ("Latest delivery error", "LatestDeliveryError"),
        ("Latest digest delivery", "LatestDigestDeliveryTime"),
        ("Latest digest delivery error", "LatestDigestDeliveryError"),
        ("Latest notification", "LatestNotificationTime"),
        ("Latest notification error", "LatestNotificationError"),
        (
            "Latest CloudWatch Logs delivery",
            "LatestCloudWatchLogsDeliveryTime",
        ),
        (
            "Latest CloudWatch Logs delivery error",
            "LatestCloudWatchLogsDeliveryError",
        ),
        ("Logging started", "StartLoggingTime"),
        ("Logging stopped", "StopLoggingTime"),
    ];
    let mut html = String::from("<dl class=\"summary\" id=\"trail-status\">");
    for (label, member) in rows {
        let value = &status[member];
        let shown = match value {
            Value::Bool(on) => (if *on { "Yes" } else { "No" }).to_owned(),
            Value::Number(n) => n
                .as_f64()
                .and_then(|s| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64))
                .map(opentrail_model::iso8601)
                .unwrap_or_default(),
            Value::String(s) => s.clone(),
            _ => continue,
        };
        html.push_str(&format!(
            "<dt>{label}</dt><dd data-member=\"{member}\">{}</dd>",
            esc(&shown)
        ));
    }
    html.push_str("</dl>");
    html
}

/// A trail's page: status, logging, settings, selectors, Insights, tags and delete;
/// `outcome` is the message of the form just posted (an error keeps the page's status 400).
async fn render_view(
    console: &Console,
    session: &Session,
    origin: &CallOrigin,
    name: &str,
    outcome: Option<Result<String, ApiError>>,
) -> Response {
    let mut status_code = StatusCode::OK;
    let mut body = String::from("<p><a href=\"/console/trails\">← Trails</a></p>");
    match &outcome {
        Some(Ok(message)) => body.push_str(&notice_box(message)),
        Some(Err(e)) => {
            status_code = StatusCode::BAD_REQUEST;
            body.push_str(&error_box(e.code, &e.message));
        }
        None => {}
    }
    let trail = match call(
        console,
        session,
        origin,
        Operation::GetTrail,
        json!({ "Name": name }),
    )
    .await
    {
        Ok(output) => output["Trail"].clone(),
        Err(e) => {
            body.push_str(&error_box(e.code, &e.message));
            return page(
                "Trail",
                Section::Trails,
                Some(session),
                &body,
                StatusCode::NOT_FOUND,
            );
        }
    };
    let arn = trail["TrailARN"].as_str().unwrap_or(name).to_owned();
    let title = format!("Trail {}", trail["Name"].as_str().unwrap_or(name));
    let csrf = esc(&session.csrf);
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"name\" value=\"{}\">",
        esc(&arn)
    );
    body.push_str(&format!(
        "<p class=\"meta\">{} · home region {} · multi-region {}</p>",
        esc(&arn),
        esc(trail["HomeRegion"].as_str().unwrap_or("")),
        yes_no(&trail["IsMultiRegionTrail"]),
    ));

    body.push_str("<section aria-labelledby=\"status-h\"><h2 id=\"status-h\">Status</h2>");
    let status = call(
        console,
        session,
        origin,
        Operation::GetTrailStatus,
        json!({ "Name": arn }),
    )
    .await;
    match &status {
        Ok(status) => {
            body.push_str(&status_rows(status));
            let (action, label, id) = if status["IsLogging"].as_bool() == Some(true) {
                ("stop", "Stop logging", "stop-logging")
            } else {
                ("start", "Start logging", "start-logging")
            };
            body.push_str(&format!(
                "<form method=\"post\" action=\"/console/trails/logging\">{hidden}\
                 <input type=\"hidden\" name=\"action\" value=\"{action}\"><button type=\"submit\" id=\"{id}\">{label}</button></form>"
            ));
        }
        Err(e) => body.push_str(&error_box(e.code, &e.message)),
    }
    body.push_str("</section>");

    body.push_str(&format!(
        "<section aria-labelledby=\"settings-h\"><h2 id=\"settings-h\">Settings</h2>\
         <form method=\"post\" action=\"/console/trails/update\" class=\"card\" id=\"update-form\">{hidden}{}\
         <button type=\"submit\" id=\"update-submit\">Save settings</button></form></section>",
        settings_fields(&trail, false)
    ));

    let selectors = call(
        console,
        session,
        origin,
        Operation::GetEventSelectors,
        json!({ "TrailName": arn }),
    )
    .await;
    let (kind, selectors_json) = match &selectors {
        Ok(out)
            if out
                .get("AdvancedEventSelectors")
                .is_some_and(|v| !v.is_null()) =>
        {
            (
                "advanced",
                serde_json::to_string_pretty(&out["AdvancedEventSelectors"]).unwrap_or_default(),
            )
        }
        Ok(out) => (
            "basic",
            serde_json::to_string_pretty(&out["EventSelectors"]).unwrap_or_default(),
        ),
        Err(_) => ("advanced", String::new()),
    };
    body.push_str(&format!(
        "<section aria-labelledby=\"selectors-h\"><h2 id=\"selectors-h\">Event selectors</h2>{}\
         <form method=\"post\" action=\"/console/trails/selectors\" class=\"card\" id=\"selectors-form\">{hidden}{}\
         <button type=\"submit\" id=\"selectors-submit\">Save selectors</button></form></section>",
        selectors.as_ref().err().map_or(String::new(), |e| error_box(e.code, &e.message)),
        selectors_fields(kind, &selectors_json)
    ));

    let insights = call(
        console,
        session,
        origin,
        Operation::GetInsightSelectors,
        json!({ "TrailName": arn }),
    )
    .await;
    let has = |kind: &str| {
        insights.as_ref().is_ok_and(|out| {
            out["InsightSelectors"]
                .as_array()
                .is_some_and(|list| list.iter().any(|s| s["InsightType"] == kind))
        })
    };
    body.push_str(&format!(
        "<section aria-labelledby=\"insights-h\"><h2 id=\"insights-h\">Insights</h2>\
         <form method=\"post\" action=\"/console/trails/insights\" class=\"card\" id=\"insights-form\">{hidden}{}\
         <button type=\"submit\" id=\"insights-submit\">Save Insights</button></form></section>",
        insights_fields(has("ApiCallRateInsight"), has("ApiErrorRateInsight"))
    ));

    body.push_str("<section aria-labelledby=\"tags-h\"><h2 id=\"tags-h\">Tags</h2>");
    match call(
        console,
        session,
        origin,
        Operation::ListTags,
        json!({ "ResourceIdList": [arn] }),
    )
    .await
    {
        Ok(out) => {
            let tags = out["ResourceTagList"][0]["TagsList"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if tags.is_empty() {
                body.push_str("<p>No tags.</p>");
            } else {
                body.push_str("<ul class=\"tags\" id=\"tags\">");
                for tag in &tags {
                    let key = tag["Key"].as_str().unwrap_or("");
                    body.push_str(&format!(
                        "<li><form method=\"post\" action=\"/console/trails/tags\">{hidden}\
                         <input type=\"hidden\" name=\"action\" value=\"remove\"><input type=\"hidden\" name=\"key\" value=\"{}\">\
                         <span>{} = {}</span> <button type=\"submit\" aria-label=\"Remove tag {}\">Remove</button></form></li>",
                        esc(key),
                        esc(key),
                        esc(tag["Value"].as_str().unwrap_or("")),
                        esc(key),
                    ));
                }
                body.push_str("</ul>");
            }
        }
        Err(e) => body.push_str(&error_box(e.code, &e.message)),
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/console/trails/tags\" class=\"card inline\" id=\"tag-form\">{hidden}\
         <input type=\"hidden\" name=\"action\" value=\"add\">\
         <label for=\"tag-key\">Key</label><input id=\"tag-key\" name=\"key\" required>\
         <label for=\"tag-value\">Value</label><input id=\"tag-value\" name=\"value\">\
         <button type=\"submit\" id=\"tag-submit\">Add tag</button></form></section>"
    ));

    body.push_str(&format!(
        "<section aria-labelledby=\"delete-h\"><h2 id=\"delete-h\">Delete</h2>\
         <form method=\"post\" action=\"/console/trails/delete\" class=\"card\">{hidden}\
         <label class=\"check\"><input type=\"checkbox\" name=\"confirm\" id=\"delete-confirm\" required> I want to delete this trail</label>\
         <button type=\"submit\" id=\"delete-submit\" class=\"danger\">Delete trail</button></form></section>"
    ));
    page(&title, Section::Trails, Some(session), &body, status_code)
}

/// A trail form post: the session, the form and the trail's name, or the refusal.
fn trail_post(
    console: &Console,
    headers: &HeaderMap,
    body: &str,
) -> Result<(Session, Fields, String), Box<Response>> {
    let fields = Fields::parse(body);
    let (_, session) = require_post(console, headers, &fields)?;
    let name = fields.text("name").unwrap_or("").to_owned();
    Ok((session, fields, name))
}

/// Answers a trail form: back to the trail's page with `done`, or its page with the error.
async fn finish(
    console: &Console,
    session: &Session,
    origin: &CallOrigin,
    name: &str,
    result: Result<Value, ApiError>,
    done: &str,
) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("{}&done={done}", view_link(name))).into_response(),
        Err(e) => render_view(console, session, origin, name, Some(Err(e))).await,
    }
}

pub async fn update(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (session, fields, name) = match trail_post(&console, &headers, &body) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let origin = origin(&peer, &headers);
    let current = call(
        &console,
        &session,
        &origin,
        Operation::GetTrail,
        json!({ "Name": name }),
    )
    .await
    .map(|out| out["Trail"].clone());
    let result = match current {
        Ok(current) => {
            let input = settings_input(&fields, &name, Some(&current));
            call(&console, &session, &origin, Operation::UpdateTrail, input).await
        }
        Err(e) => Err(e),
    };
    finish(&console, &session, &origin, &name, result, "updated").await
}

pub async fn put_selectors(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (session, fields, name) = match trail_post(&console, &headers, &body) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let origin = origin(&peer, &headers);
    let result = match selectors_input(&fields, &name) {
        Ok(Some(input)) => {
            call(
                &console,
                &session,
                &origin,
                Operation::PutEventSelectors,
                input,
            )
            .await
        }
        Ok(None) => Err(ApiError::new(
            "InvalidEventSelectorsException",
            "enter the selectors as a JSON list",
        )),
        Err(e) => Err(e),
    };
    finish(&console, &session, &origin, &name, result, "selectors").await
}

pub async fn put_insights(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (session, fields, name) = match trail_post(&console, &headers, &body) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let origin = origin(&peer, &headers);
    let input = insights_input(&fields, &name);
    let result = call(
        &console,
        &session,
        &origin,
        Operation::PutInsightSelectors,
        input,
    )
    .await;
    finish(&console, &session, &origin, &name, result, "insights").await
}

pub async fn logging(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (session, fields, name) = match trail_post(&console, &headers, &body) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let origin = origin(&peer, &headers);
    let (operation, done) = match fields.get("action") {
        Some("stop") => (Operation::StopLogging, "stopped"),
        _ => (Operation::StartLogging, "started"),
    };
    let result = call(
        &console,
        &session,
        &origin,
        operation,
        json!({ "Name": name }),
    )
    .await;
    finish(&console, &session, &origin, &name, result, done).await
}

pub async fn tags(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (session, fields, name) = match trail_post(&console, &headers, &body) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let origin = origin(&peer, &headers);
    let key = fields.get("key").unwrap_or("");
    let (operation, tag) = match fields.get("action") {
        Some("remove") => (Operation::RemoveTags, json!({ "Key": key })),
        _ => (
            Operation::AddTags,
            json!({ "Key": key, "Value": fields.get("value").unwrap_or("") }),
        ),
    };
    let input = json!({ "ResourceId": name, "TagsList": [tag] });
    let result = call(&console, &session, &origin, operation, input).await;
    finish(&console, &session, &origin, &name, result, "tags").await
}

pub async fn delete(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (session, fields, name) = match trail_post(&console, &headers, &body) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let origin = origin(&peer, &headers);
    if !fields.checked("confirm") {
        let refusal = ApiError::validation("tick the box to confirm the deletion");
        return render_view(&console, &session, &origin, &name, Some(Err(refusal))).await;
    }
    match call(
        &console,
        &session,
        &origin,
        Operation::DeleteTrail,
        json!({ "Name": name }),
    )
    .await
    {
        Ok(_) => Redirect::to("/console/trails").into_response(),
        Err(e) => render_view(&console, &session, &origin, &name, Some(Err(e))).await,
    }
}
