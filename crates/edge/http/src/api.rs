//! The one request pipeline: authenticate (on the headers, before the body is read) →
//! parse → dispatch → respond, producing the request's audit record and metrics on the
//! way out.

use crate::app::App;
use crate::audit::{AuditRecord, Call};
use crate::auth::Caller;
use crate::dispatch::dispatch;
use crate::exchange::Exchange;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use opentrail_operations::RateClass;
use opentrail_wire::{parse_target, ApiError, JSON_11_CONTENT_TYPE};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The SigV4 service name of the CloudTrail API.
const CLOUDTRAIL_SERVICE: &str = "cloudtrail";

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", post(cloudtrail_api))
        .route("/events", post(ingest_api))
        .route("/PutAuditEvents", post(audit_events_api))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// `{"status":"ok"|"degraded","components":{...}}`; 503 while any component is degraded.
async fn health(State(app): State<Arc<App>>) -> impl IntoResponse {
    app.event_log_failure();
    app.history_store_state();
    let (healthy, report) = app.health.report();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        report.to_string(),
    )
}

/// One unlabelled Prometheus sample with its HELP and TYPE lines.
fn push_sample(text: &mut String, kind: &str, name: &str, help: &str, value: u64) {
    text.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    ));
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let mut text = app.metrics.render();
    app.event_log_failure();
    let history = app.history_store_state();
    let log_health = app.log.health();
    text.push_str(&app.health.render_metrics());
    text.push_str(&crate::logging::render_metrics());
    let counters = [
        (
            "opentrail_history_quarantined_segments_total",
            "Event history segments found damaged and quarantined (then indexed again from the event log).",
            history.quarantined_segments,
        ),
        (
            "opentrail_history_partition_write_failures_total",
            "Day partitions of event history that could not be written at a flush (kept in memory, written again).",
            history.partition_write_failures,
        ),
        (
            "opentrail_history_merge_failures_total",
            "Merges of event history segments that failed.",
            history.merge_failures,
        ),
        (
            "opentrail_history_event_id_conflicts_total",
            "Records kept although event history held another record with their eventID and different content.",
            history.event_id_conflicts,
        ),
        (
            "opentrail_event_log_failures_total",
            "Event log write, fsync and roll failures since the server started.",
            log_health.failures,
        ),
        (
            "opentrail_event_log_cursors_rewritten_total",
            "Unreadable consumer cursor files rewritten since the server started.",
            log_health.cursors_rewritten,
        ),
    ];
    // How far event history trails the durable log: equal offsets mean every
    // acknowledged event is searchable.
    let gauges = [
        (
            "opentrail_event_log_durable_end_offset",
            "Offset after the last durable event log record.",
            app.log.durable_end(),
        ),
        (
            "opentrail_history_applied_offset",
            "Event log offset up to which event history has indexed events.",
            app.history.applied_offset(),
        ),
        (
            "opentrail_event_log_tail_bytes",
            "Memory held by the event log's in-memory tail of recent records (with their parses) for its consumers.",
            app.log.tail_held_bytes() as u64,
        ),
        (
            "opentrail_history_open_files",
            "Event history segment files open now.",
            history.open_files as u64,
        ),
    ];
    for (name, help, value) in counters {
        push_sample(&mut text, "counter", name, help, value);
    }
    for (name, help, value) in gauges {
        push_sample(&mut text, "gauge", name, help, value);
    }
    // The last retention pass's figures, with each consumer's cursor as committed now (the
    // pass's is up to a pass old).
    let mut stats = app.log_retention.latest();
    for consumer in stats.iter_mut().flat_map(|stats| &mut stats.consumers) {
        if let Ok(Some(cursor)) = app.log.cursor(&consumer.consumer).await {
            consumer.cursor = Some(cursor);
        }
    }
    render_log_retention(&mut text, &app.log_retention, stats, app.log.durable_end());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}

/// The event log's deletions since the start, and its disk use, oldest offset and
/// consumers' lag from `stats` (the last retention pass's; nothing before the first).
/// Consumer labels are cursor names, at most [`opentrail_log::MAX_REPORTED_CONSUMERS`] of
/// them.
fn render_log_retention(
    text: &mut String,
    status: &opentrail_log::RetentionStatus,
    stats: Option<opentrail_log::LogStats>,
    durable_end: u64,
) {
    let (deleted_segments, deleted_bytes) = status.deleted_totals();
    push_sample(
        text,
        "counter",
        "opentrail_event_log_segments_deleted_total",
        "Event log segments deleted by retention since the server started.",
        deleted_segments,
    );
    push_sample(
        text,
        "counter",
        "opentrail_event_log_deleted_bytes_total",
        "Bytes of event log segments deleted by retention since the server started.",
        deleted_bytes,
    );
    let Some(stats) = stats else {
        return;
    };
    let gauges = [
        (
            "opentrail_event_log_disk_bytes",
            "Bytes of event log segment files on disk (as of the last retention pass).",
            stats.bytes_on_disk,
        ),
        (
            "opentrail_event_log_segments",
            "Event log segment files on disk, the active one included.",
            stats.segments as u64,
        ),
        (
            "opentrail_event_log_start_offset",
            "Oldest event log offset still stored.",
            stats.start_offset,
        ),
        (
            "opentrail_event_log_retention_held_bytes",
            "Bytes of event log segments older than the retention kept because a consumer has not processed them.",
            stats.held_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        push_sample(text, "gauge", name, help, value);
    }
    let end = durable_end.max(stats.durable_end);
    text.push_str("# HELP opentrail_event_log_consumer_lag_records Records of the event log a consumer has not processed yet (durable end minus its committed cursor).\n# TYPE opentrail_event_log_consumer_lag_records gauge\n");
    for consumer in &stats.consumers {
        text.push_str(&format!(
            "opentrail_event_log_consumer_lag_records{{consumer=\"{}\"}} {}\n",
            consumer.consumer,
            consumer.lag_records(stats.start_offset, end)
        ));
    }
    text.push_str("# HELP opentrail_event_log_consumer_holding_retention 1 while a consumer keeps event log segments older than the retention.\n# TYPE opentrail_event_log_consumer_holding_retention gauge\n");
    for consumer in &stats.consumers {
        text.push_str(&format!(
            "opentrail_event_log_consumer_holding_retention{{consumer=\"{}\"}} {}\n",
            consumer.consumer,
            u8::from(consumer.holding_back)
        ));
    }
}

/// A handler's answer: a JSON value, or JSON text it wrote itself (an answer of a line per
/// record, written without building a tree of values first).
pub(crate) enum Output {
    Value(Value),
    Text(String),
}

impl Output {
    fn value(&self) -> Option<&Value> {
        match self {
            Output::Value(value) => Some(value),
            Output::Text(_) => None,
        }
    }

    /// The response body; written text is taken (the audit event uses the handler's
    /// summary of it), a value stays for the audit event.
    fn take_body(&mut self) -> String {
        match self {
            Output::Value(value) => value.to_string(),
            Output::Text(text) => std::mem::take(text),
        }
    }
}

/// `responseElements` of a request's audit event: none for read-only calls and failures,
/// else the summary the handler left, or the whole answer when it is a value. `answer` is
/// `Err` for a failure, `Ok(None)` for an answer the handler wrote as text.
fn audited_response(
    answer: Result<Option<&Value>, ()>,
    read_only: bool,
    summary: Option<Value>,
) -> Option<Value> {
    match answer {
        Ok(output) if !read_only => summary.or_else(|| output.cloned()),
        _ => None,
    }
}

/// Refuses a caller whose credential scope names a region this server does not serve, as
/// AWS answers a request signed for another region than the endpoint's.
pub fn check_region(app: &App, caller: &Caller) -> Result<(), ApiError> {
    if app.regions.contains(caller.region.as_str()) {
        return Ok(());
    }
    Err(ApiError::new(
        "InvalidSignatureException",
        format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            caller.region
        ),
    ))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The APIs served by the one pipeline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// The CloudTrail control plane: JSON 1.1 on `POST /`.
    CloudTrail,
    /// OpenTrail's event ingest: `POST /events`.
    Ingest,
    /// CloudTrail Data's PutAuditEvents: rest-json on `POST /PutAuditEvents`.
    CloudTrailData,
}

async fn cloudtrail_api(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    run_pipeline(app, peer, request, Endpoint::CloudTrail).await
}

async fn ingest_api(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    run_pipeline(app, peer, request, Endpoint::Ingest).await
}

async fn audit_events_api(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    run_pipeline(app, peer, request, Endpoint::CloudTrailData).await
}

async fn run_pipeline(
    app: Arc<App>,
    peer: SocketAddr,
    request: Request,
    endpoint: Endpoint,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let event_time = app.clock.now();
    let (parts, body) = request.into_parts();
    let user_agent = header_str(&parts.headers, "user-agent").map(str::to_owned);
    let mut exchange = Exchange {
        operation: None,
        caller: None,
        request_parameters: None,
        response_summary: None,
        body_read: false,
        source_ip: peer.ip().to_string(),
        audit_resources: None,
    };
    match endpoint {
        Endpoint::Ingest => exchange.operation = Some(Call::PutEvents),
        Endpoint::CloudTrailData => {
            exchange.operation = Some(Call::Api(opentrail_operations::Operation::PutAuditEvents))
        }
        Endpoint::CloudTrail => {}
    }
    let mut result = authenticate_and_handle(&app, &parts, body, endpoint, &mut exchange).await;

    // A bounded label set: the known calls and `unknown`, never request text.
    let operation = exchange.operation.map_or("unknown", Call::name);
    let answer = result.as_mut().ok().map(Output::take_body);
    let (status, body, error) = match &result {
        Ok(_) => (StatusCode::OK, answer.unwrap_or_default(), None),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            if status.is_server_error() {
                tracing::error!(operation, request_id, error = %e.cause_chain(), "request failed");
            }
            (status, e.body(), Some(e))
        }
    };
    app.metrics.observe(
        operation,
        error.map_or("success", |e| e.code),
        started.elapsed(),
    );
    let read_only = exchange.operation.is_some_and(Call::read_only);
    let body_read = exchange.body_read;
    // A call that changed state is acknowledged only once its audit event is durable.
    let changed_state = endpoint == Endpoint::CloudTrail && !read_only && result.is_ok();
    let error_type = error.map(|e| e.code);
    // PutAuditEvents is a data-plane call: AWS records it only as a data event a trail
    // selects, so it is not self-audited (its events are durable before it answers).
    let audited = endpoint != Endpoint::CloudTrailData;
    let record = AuditRecord {
        request_id: request_id.clone(),
        event_time,
        read_only,
        source_ip: peer.ip().to_string(),
        user_agent,
        region: exchange.caller.as_ref().map(|c| c.region.to_string()),
        access_key_id: exchange.caller.as_ref().map(|c| c.access_key_id.clone()),
        caller: exchange.caller,
        operation: exchange.operation,
        request_parameters: exchange.request_parameters,
        response_elements: audited_response(
            result.as_ref().map(Output::value).map_err(drop),
            read_only,
            exchange.response_summary,
        ),
        management_event: endpoint == Endpoint::CloudTrail,
        error_code: error.map(|e| e.code.to_owned()),
        error_message: error.map(|e| e.message.clone()),
        resources: exchange.audit_resources,
    };
    let durable = if audited {
        app.audit.record(record)
    } else {
        Box::pin(async { Ok(()) })
    };
    let (status, body) = if changed_state {
        match durable.await {
            Ok(()) => (status, body),
            Err(why) => {
                tracing::error!(operation, request_id, error = %why, "a call took effect but its audit event could not be made durable");
                let e = audit_unavailable(&why);
                (StatusCode::SERVICE_UNAVAILABLE, e.body())
            }
        }
    } else {
        tokio::spawn(durable);
        (status, body)
    };

    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let content_type = match endpoint {
        // rest-json: errors name their type in a header too, where Smithy clients look.
        Endpoint::CloudTrailData => {
            if let Some(value) = error_type.and_then(|code| HeaderValue::from_str(code).ok()) {
                headers.insert("x-amzn-errortype", value);
            }
            "application/json"
        }
        _ => JSON_11_CONTENT_TYPE,
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    if !body_read {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The answer to a call that changes state while its audit event cannot be made durable.
fn audit_unavailable(why: &str) -> ApiError {
    ApiError::new(
        "ServiceUnavailable",
        format!("The audit trail cannot record this call right now ({why}); nothing that changes state is accepted until it can."),
    )
    .with_status(503)
}

/// Authenticates on the headers, only then reads the body (bounded in size and time),
/// checks the body against the signature and hands the request to its endpoint.
/// The largest body of a refused request that is read (and dropped) rather than left in
/// the connection, and how long that may take.
const DISCARD_LIMIT: usize = 64 * 1024;
const DISCARD_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and drops the body of a request refused on its headers, never holding more than
/// one chunk; false when it is (or announces to be) larger than [`DISCARD_LIMIT`] or slower
/// than [`DISCARD_WITHIN`].
async fn discard_small_body(parts: &http::request::Parts, body: Body) -> bool {
    use http_body_util::BodyExt;
    let announced =
        header_str(&parts.headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if announced.is_none_or(|length| length > DISCARD_LIMIT as u64) {
        return false;
    }
    let mut body = body;
    let drain = async {
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            seen += frame.data_ref().map_or(0, |data| data.len());
            if seen > DISCARD_LIMIT {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DISCARD_WITHIN, drain)
        .await
        .unwrap_or(false)
}

async fn authenticate_and_handle(
    app: &App,
    parts: &http::request::Parts,
    body: Body,
    endpoint: Endpoint,
    exchange: &mut Exchange,
) -> Result<Output, ApiError> {
    let service = match endpoint {
        Endpoint::CloudTrail => CLOUDTRAIL_SERVICE,
        Endpoint::Ingest => crate::ingest::INGEST_SERVICE,
        Endpoint::CloudTrailData => crate::audit_events::CLOUDTRAIL_DATA_SERVICE,
    };
    let pending = match app.auth.begin(parts, service, app.clock.now()) {
        Ok(pending) => pending,
        Err(refused) => {
            // A small body is read and dropped so that the answer arrives whole and the
            // connection lives on; closing over unread bytes makes the kernel reset the
            // connection, which can destroy the answer before the client reads it.
            exchange.body_read = discard_small_body(parts, body).await;
            return Err(refused);
        }
    };
    let read = tokio::time::timeout(
        app.body_read_timeout,
        axum::body::to_bytes(body, app.max_request_bytes),
    );
    let body = match read.await {
        Err(_) => {
            return Err(ApiError::new(
                "RequestTimeoutException",
                format!(
                    "the request body did not arrive within {} seconds",
                    app.body_read_timeout.as_secs()
                ),
            )
            .with_status(408))
        }
        Ok(Err(_)) => {
            return Err(ApiError::new(
                "RequestEntityTooLargeException",
                format!(
                    "request body is larger than the limit of {} bytes",
                    app.max_request_bytes
                ),
            )
            .with_status(413))
        }
        Ok(Ok(body)) => {
            exchange.body_read = true;
            body
        }
    };
    let caller = app.auth.finish(pending, parts, &body)?;
    check_region(app, &caller)?;
    exchange.caller = Some(caller);
    match endpoint {
        Endpoint::CloudTrail => handle(app, parts, &body, exchange).await.map(Output::Value),
        Endpoint::Ingest => crate::ingest::handle(app, parts, &body, exchange).await,
        Endpoint::CloudTrailData => crate::audit_events::handle(app, parts, &body, exchange)
            .await
            .map(Output::Value),
    }
}

async fn handle(
    app: &App,
    parts: &http::request::Parts,
    body: &[u8],
    exchange: &mut Exchange,
) -> Result<Value, ApiError> {
    let caller = crate::exchange::authenticated_caller(exchange)?;

    let operation = parse_target(header_str(&parts.headers, "x-amz-target"))?;
    exchange.operation = Some(Call::Api(operation));
    if operation.rate_class() == RateClass::EventHistory {
        let over_limit = app
            .lookup_rate_limit
            .as_ref()
            .is_some_and(|limit| !limit.try_acquire(caller.account.as_str(), Instant::now()));
        if over_limit {
            return Err(ApiError::new("ThrottlingException", "Rate exceeded"));
        }
    }
    if !operation.read_only() {
        // No effect without its audit record: refuse while the event log is known to fail
        // (the audit event of this refusal is the probe that sees it recover).
        if let Some(why) = app.event_log_failure() {
            return Err(audit_unavailable(&why));
        }
    }
    let input = app.model.parse_input(operation, body)?;
    exchange.request_parameters = Some(input.clone());
    let ctx = caller.request_context();
    let result = dispatch(app, &ctx, operation, input).await;
    exchange.audit_resources =
        crate::query_audit::query_resources(app, &ctx, operation, exchange, &result);
    result
}

/// Where an in-process call (the console) comes from, for its audit event.
pub struct CallOrigin {
    pub source_ip: String,
    pub user_agent: Option<String>,
}

/// Runs one CloudTrail operation for an already authenticated caller from inside the
/// server (the web console): the same checks as the HTTP pipeline after authentication
/// (region, LookupEvents rate limit, the event log's health for calls that change state,
/// the model's input validation), the same dispatch and the same audit event, made durable
/// before a call that changed state is answered. `input` is the request's JSON body.
pub async fn call_operation(
    app: &App,
    caller: &Caller,
    operation: opentrail_operations::Operation,
    input: &Value,
    origin: CallOrigin,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let event_time = app.clock.now();
    let read_only = operation.read_only();
    let mut request_parameters = None;
    let result = async {
        check_region(app, caller)?;
        if operation.rate_class() == RateClass::EventHistory {
            let over_limit = app
                .lookup_rate_limit
                .as_ref()
                .is_some_and(|limit| !limit.try_acquire(caller.account.as_str(), Instant::now()));
            if over_limit {
                return Err(ApiError::new("ThrottlingException", "Rate exceeded"));
            }
        }
        if !read_only {
            if let Some(why) = app.event_log_failure() {
                return Err(audit_unavailable(&why));
            }
        }
        let parsed = app
            .model
            .parse_input(operation, input.to_string().as_bytes())?;
        request_parameters = Some(parsed.clone());
        dispatch(app, &caller.request_context(), operation, parsed).await
    }
    .await;
    let error = result.as_ref().err();
    app.metrics.observe(
        operation.name(),
        error.map_or("success", |e| e.code),
        started.elapsed(),
    );
    let record = AuditRecord {
        request_id: uuid::Uuid::new_v4().to_string(),
        event_time,
        operation: Some(Call::Api(operation)),
        read_only,
        source_ip: origin.source_ip,
        user_agent: origin.user_agent,
        region: Some(caller.region.to_string()),
        access_key_id: Some(caller.access_key_id.clone()),
        caller: Some(caller.clone()),
        request_parameters,
        response_elements: audited_response(
            result.as_ref().map(Some).map_err(drop),
            read_only,
            None,
        ),
        management_event: true,
        error_code: error.map(|e| e.code.to_owned()),
        error_message: error.map(|e| e.message.clone()),
        // The console's calls name no Lake query: the resource comes from the request.
        resources: None,
    };
    let durable = app.audit.record(record);
    if read_only || result.is_err() {
        tokio::spawn(durable);
        return result;
    }
    match durable.await {
        Ok(()) => result,
        Err(why) => {
            tracing::error!(operation = operation.name(), error = %why, "a console call took effect but its audit event could not be made durable");
            Err(audit_unavailable(&why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_events_get_the_summary_not_the_whole_answer() {
        let whole = json!({ "successful": [{ "id": "0" }], "failed": [] });
        let summary = json!({ "successfulCount": 1, "failedCount": 0 });
        let text = Output::Text(whole.to_string());
        let value = Output::Value(whole.clone());
        for answer in [&value, &text] {
            assert_eq!(
                audited_response(Ok(answer.value()), false, Some(summary.clone())),
                Some(summary.clone())
            );
            assert_eq!(audited_response(Ok(answer.value()), true, None), None);
        }
        assert_eq!(
            audited_response(Ok(value.value()), false, None),
            Some(whole)
        );
        assert_eq!(audited_response(Ok(text.value()), false, None), None);
        assert_eq!(audited_response(Err(()), false, Some(summary)), None);
    }
}
