//! CloudTrail Lake dashboards: the list (managed and custom, with type, status and last
//! refresh), a create form (widgets as JSON, or filled from a managed dashboard's widgets
//! for one event data store), and a dashboard's page: a refresh form (time range, period
//! and, for managed dashboards, the event data store) that starts StartDashboardRefresh,
//! each widget's query status while the refresh runs (the page reloads itself), then each
//! widget drawn per its ViewProperties from its query's rows ([`crate::charts`]).

use crate::charts::{self, Row};
use crate::events::origin;
use crate::form::{encode, Fields};
use crate::html::{error_box, esc, notice_box, page, refreshing_page, Section};
use crate::lake::{all_stores, row_cells, store_id, time_text};
use crate::session::{require, require_post, Session};
use crate::trails::call;
use crate::State;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, Uri};
use opentrail_http::api::CallOrigin;
use opentrail_operations::Operation;
use opentrail_wire::ApiError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Rows a widget is drawn from (one GetQueryResults page, the API's largest).
const WIDGET_ROWS: u64 = 1000;
/// Seconds between reloads of a dashboard whose widgets' queries still run.
const REFRESH_SECONDS: u32 = 2;
/// `$Period$` values the refresh form offers (`date_trunc` units).
const PERIODS: [&str; 5] = ["minute", "hour", "day", "week", "month"];
/// The managed dashboards' store parameter.
const STORE_PARAMETER: &str = "$EventDataStoreId$";

/// A dashboard's name: the last part of its ARN.
fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn view_link(name: &str) -> String {
    format!("/console/dashboards/view?name={}", encode(name))
}

/// A refresh id (epoch milliseconds) as the time it was started, or the id itself.
fn refresh_time(id: &str) -> String {
    id.parse::<i64>()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| id.to_owned(), opentrail_model::iso8601)
}

fn text<'a>(value: &'a Value, member: &str) -> &'a str {
    value[member].as_str().unwrap_or("")
}

/// Every dashboard of the region (all pages of ListDashboards).
async fn all_dashboards(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
) -> Result<Vec<Value>, ApiError> {
    let mut dashboards = Vec::new();
    let mut input = json!({});
    loop {
        let output = call(
            console,
            session,
            origin,
            Operation::ListDashboards,
            input.clone(),
        )
        .await?;
        dashboards.extend(output["Dashboards"].as_array().cloned().unwrap_or_default());
        match output["NextToken"].as_str().filter(|t| !t.is_empty()) {
            Some(token) => input["NextToken"] = json!(token),
            None => return Ok(dashboards),
        }
    }
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
    let origin = origin(&peer, &headers);
    let mut body = String::new();
    match fields.get("done") {
        Some("created") => body.push_str(&notice_box("Dashboard created.")),
        Some("deleted") => body.push_str(&notice_box("Dashboard deleted.")),
        _ => {}
    }
    body.push_str(
        "<p><a class=\"button\" id=\"create-dashboard\" href=\"/console/dashboards/new\">Create dashboard</a></p>",
    );
    let dashboards = match all_dashboards(&console, &session, &origin).await {
        Ok(dashboards) => dashboards,
        Err(e) => {
            body.push_str(&error_box(e.code, &e.message));
            return page(
                "Dashboards",
                Section::Dashboards,
                Some(&session),
                &body,
                StatusCode::OK,
            );
        }
    };
    body.push_str(
        "<div class=\"table-wrap\"><table id=\"dashboards\"><caption>Dashboards (managed ones are built in)</caption><thead><tr>\
         <th scope=\"col\">Name</th><th scope=\"col\">Type</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Widgets</th><th scope=\"col\">Last refresh</th><th scope=\"col\">Refresh schedule</th>\
         </tr></thead><tbody>",
    );
    for dashboard in &dashboards {
        let arn = text(dashboard, "DashboardArn");
        let name = name_of(arn);
        // ListDashboards names and types; the rest is GetDashboard's.
        let detail = call(
            &console,
            &session,
            &origin,
            Operation::GetDashboard,
            json!({ "DashboardId": arn }),
        )
        .await;
        let (status, widgets, last, schedule) = match &detail {
            Ok(d) => {
                let last = match (
                    d["LastRefreshId"].as_str(),
                    d["LastRefreshFailureReason"].as_str(),
                ) {
                    (Some(id), Some(reason)) => format!("{} (failed: {reason})", refresh_time(id)),
                    (Some(id), None) => refresh_time(id),
                    _ => "Never".to_owned(),
                };
                let schedule = &d["RefreshSchedule"];
                let schedule = match (
                    schedule["Status"].as_str(),
                    schedule["Frequency"]["Value"].as_u64(),
                ) {
                    (Some("ENABLED"), Some(value)) => format!(
                        "Every {value} {} at {} UTC",
                        schedule["Frequency"]["Unit"]
                            .as_str()
                            .unwrap_or("")
                            .to_lowercase(),
                        schedule["TimeOfDay"].as_str().unwrap_or("00:00")
                    ),
                    _ => "Off".to_owned(),
                };
                (
                    text(d, "Status").to_owned(),
                    d["Widgets"].as_array().map_or(0, Vec::len).to_string(),
                    last,
                    schedule,
                )
            }
            Err(e) => (
                e.code.to_owned(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        body.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&view_link(name)),
            esc(name),
            esc(text(dashboard, "Type")),
            esc(&status),
            esc(&widgets),
            esc(&last),
            esc(&schedule),
        ));
    }
    body.push_str("</tbody></table></div>");
    page(
        "Dashboards",
        Section::Dashboards,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

/// A managed dashboard's widgets as CreateDashboard's `Widgets` JSON for one store: its
/// `$EventDataStoreId$` parameter becomes the store's id (a custom dashboard's widgets
/// name their store; the other parameters stay refresh parameters).
fn template_widgets(dashboard: &Value, store: &str) -> Value {
    let widgets: Vec<Value> = dashboard["Widgets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|widget| {
            let mut request = Map::new();
            request.insert("QueryStatement".into(), widget["QueryStatement"].clone());
            if let Some(parameters) = widget["QueryParameters"].as_array() {
                let parameters: Vec<Value> = parameters
                    .iter()
                    .map(|p| match p.as_str() {
                        Some(STORE_PARAMETER) => json!(store),
                        _ => p.clone(),
                    })
                    .collect();
                request.insert("QueryParameters".into(), Value::Array(parameters));
            }
            request.insert("ViewProperties".into(), widget["ViewProperties"].clone());
            Value::Object(request)
        })
        .collect();
    Value::Array(widgets)
}

fn create_page(
    session: &Session,
    fields: &Fields,
    managed: &[String],
    stores: &[Value],
    error: Option<&ApiError>,
) -> Response {
    let template = fields.text("template").unwrap_or("");
    let store = fields.text("store").unwrap_or("");
    let template_options: String = std::iter::once(String::new())
        .chain(managed.iter().cloned())
        .map(|name| {
            let selected = if name == template { " selected" } else { "" };
            let label = if name.is_empty() {
                "(choose)"
            } else {
                name.as_str()
            };
            format!(
                "<option value=\"{}\"{selected}>{}</option>",
                esc(&name),
                esc(label)
            )
        })
        .collect();
    let store_options = store_options(stores, store);
    let protection =
        if fields.get("Name").is_none() || fields.checked("TerminationProtectionEnabled") {
            " checked"
        } else {
            ""
        };
    let body = format!(
        "{}<form method=\"get\" action=\"/console/dashboards/new\" class=\"card filters\" id=\"template-form\">\
         <div><label for=\"template\">Start from a managed dashboard</label><select id=\"template\" name=\"template\">{template_options}</select></div>\
         <div><label for=\"template-store\">Event data store its widgets query</label><select id=\"template-store\" name=\"store\">{store_options}</select></div>\
         <div><input type=\"hidden\" name=\"Name\" value=\"{}\"><button type=\"submit\" id=\"use-template\">Fill the widgets</button></div></form>\
         <form method=\"post\" action=\"/console/dashboards/new\" class=\"card\" id=\"create-dashboard-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"dashboard-name\">Name (3–128 letters, digits, _ and -)</label>\
         <input id=\"dashboard-name\" name=\"Name\" value=\"{}\" required>\
         <label for=\"widgets\">Widgets as JSON: a list of {{QueryStatement, QueryParameters, ViewProperties}} \
         (View LineChart, BarChart, PieChart or Table; XAxisColumn/YAxisColumn, LabelColumn/ValueColumn, Title)</label>\
         <textarea id=\"widgets\" name=\"widgets\" rows=\"14\" spellcheck=\"false\">{}</textarea>\
         <label class=\"check\"><input type=\"checkbox\" id=\"dashboard-protection\" name=\"TerminationProtectionEnabled\"{protection}> Termination protection</label>\
         <button type=\"submit\" id=\"create-dashboard-submit\">Create dashboard</button></form>",
        error.map_or(String::new(), |e| error_box(e.code, &e.message)),
        esc(fields.get("Name").unwrap_or("")),
        esc(&session.csrf),
        esc(fields.get("Name").unwrap_or("")),
        esc(fields.get("widgets").unwrap_or("")),
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        "Create dashboard",
        Section::Dashboards,
        Some(session),
        &body,
        status,
    )
}

/// The managed dashboards' names and the region's stores, for the create form.
async fn create_choices(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
) -> Result<(Vec<String>, Vec<Value>), ApiError> {
    let managed = call(
        console,
        session,
        origin,
        Operation::ListDashboards,
        json!({ "Type": "MANAGED" }),
    )
    .await?;
    let names = managed["Dashboards"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| name_of(text(d, "DashboardArn")).to_owned())
        .collect();
    Ok((names, all_stores(console, session, origin).await?))
}

pub async fn new_form(
    axum::extract::State(console): State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (_, session) = match require(&console, &headers, true) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    let origin = origin(&peer, &headers);
    let fields = Fields::from_query(&uri);
    let (managed, stores) = match create_choices(&console, &session, &origin).await {
        Ok(found) => found,
        Err(e) => return create_page(&session, &fields, &[], &[], Some(&e)),
    };
    // A template chosen: fill the widgets with its widgets for the chosen store.
    if let (Some(template), Some(store)) = (fields.text("template"), fields.text("store")) {
        let filled = call(
            &console,
            &session,
            &origin,
            Operation::GetDashboard,
            json!({ "DashboardId": template }),
        )
        .await;
        match filled {
            Ok(dashboard) => {
                let widgets = serde_json::to_string_pretty(&template_widgets(&dashboard, store))
                    .unwrap_or_default();
                let mut query = format!("widgets={}", encode(&widgets));
                for name in ["Name", "template", "store"] {
                    if let Some(value) = fields.get(name) {
                        query.push_str(&format!("&{name}={}", encode(value)));
                    }
                }
                return create_page(&session, &Fields::parse(&query), &managed, &stores, None);
            }
            Err(e) => return create_page(&session, &fields, &managed, &stores, Some(&e)),
        }
    }
    create_page(&session, &fields, &managed, &stores, None)
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
    let mut input = json!({
        "Name": fields.text("Name").unwrap_or(""),
        "TerminationProtectionEnabled": fields.checked("TerminationProtectionEnabled"),
    });
    let result = match fields.text("widgets").map(serde_json::from_str::<Value>) {
        Some(Err(e)) => Err(ApiError::new(
            "InvalidParameterException",
            format!("the widgets are not JSON: {e}"),
        )),
        Some(Ok(widgets)) => {
            input["Widgets"] = widgets;
            call(
                &console,
                &session,
                &origin,
                Operation::CreateDashboard,
                input,
            )
            .await
        }
        None => {
            call(
                &console,
                &session,
                &origin,
                Operation::CreateDashboard,
                input,
            )
            .await
        }
    };
    match result {
        Ok(_) => Redirect::to("/console/dashboards?done=created").into_response(),
        Err(e) => {
            let (managed, stores) = create_choices(&console, &session, &origin)
                .await
                .unwrap_or_default();
            create_page(&session, &fields, &managed, &stores, Some(&e))
        }
    }
}

pub async fn delete(
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
    let name = fields.text("name").unwrap_or("");
    match call(
        &console,
        &session,
        &origin(&peer, &headers),
        Operation::DeleteDashboard,
        json!({ "DashboardId": name }),
    )
    .await
    {
        Ok(_) => Redirect::to("/console/dashboards?done=deleted").into_response(),
        Err(e) => page(
            "Dashboard",
            Section::Dashboards,
            Some(&session),
            &format!(
                "{}<p><a href=\"{}\">Back to the dashboard</a></p>",
                error_box(e.code, &e.message),
                esc(&view_link(name))
            ),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// A form's `datetime-local` value (`2026-01-02T03:04`) as a refresh time parameter.
fn time_parameter(value: &str) -> String {
    if value.len() == 16 {
        format!("{value}:00")
    } else {
        value.to_owned()
    }
}

/// StartDashboardRefresh's `QueryParameterValues` from the refresh form.
fn refresh_values(fields: &Fields, managed: bool) -> Map<String, Value> {
    let mut values = Map::new();
    if let Some(start) = fields.text("start") {
        values.insert("$StartTime$".into(), json!(time_parameter(start)));
    }
    if let Some(end) = fields.text("end") {
        values.insert("$EndTime$".into(), json!(time_parameter(end)));
    }
    if let Some(period) = fields.text("period") {
        values.insert("$Period$".into(), json!(period));
    }
    if managed {
        if let Some(store) = fields.text("store") {
            values.insert(STORE_PARAMETER.into(), json!(store));
        }
    }
    values
}

/// The dashboard page's address keeping the refresh form's values.
fn form_query(fields: &Fields) -> String {
    let mut query = String::new();
    for name in ["start", "end", "period", "store"] {
        if let Some(value) = fields.text(name) {
            query.push_str(&format!("&{name}={}", encode(value)));
        }
    }
    query
}

pub async fn refresh(
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
    let name = fields.text("name").unwrap_or("");
    let input = json!({
        "DashboardId": name,
        "QueryParameterValues": refresh_values(&fields, fields.checked("managed")),
    });
    let link = format!("{}{}", view_link(name), form_query(&fields));
    match call(
        &console,
        &session,
        &origin(&peer, &headers),
        Operation::StartDashboardRefresh,
        input,
    )
    .await
    {
        Ok(output) => Redirect::to(&format!(
            "{link}&refresh={}",
            encode(text(&output, "RefreshId"))
        ))
        .into_response(),
        Err(e) => Redirect::to(&format!(
            "{link}&error={}&message={}",
            encode(e.code),
            encode(&e.message)
        ))
        .into_response(),
    }
}

fn refresh_form(
    session: &Session,
    name: &str,
    managed: bool,
    stores: &[Value],
    fields: &Fields,
) -> String {
    let period = fields.text("period").unwrap_or("");
    let periods: String = std::iter::once("")
        .chain(PERIODS)
        .map(|p| {
            let selected = if p == period { " selected" } else { "" };
            let label = if p.is_empty() { "automatic" } else { p };
            format!("<option value=\"{p}\"{selected}>{label}</option>")
        })
        .collect();
    let store = if managed {
        let chosen = fields.text("store").unwrap_or("");
        let options = store_options(stores, chosen);
        format!(
            "<div><label for=\"refresh-store\">Event data store</label><select id=\"refresh-store\" name=\"store\" required>{options}</select>\
             <input type=\"hidden\" name=\"managed\" value=\"on\"></div>"
        )
    } else {
        String::new()
    };
    format!(
        "<form method=\"post\" action=\"/console/dashboards/refresh\" class=\"card filters refresh-form\" id=\"refresh-form\" aria-label=\"Refresh the dashboard\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"name\" value=\"{}\">\
         <div><label for=\"refresh-start\">Start time (UTC; empty: a day before the end)</label><input id=\"refresh-start\" name=\"start\" type=\"datetime-local\" value=\"{}\"></div>\
         <div><label for=\"refresh-end\">End time (UTC; empty: now)</label><input id=\"refresh-end\" name=\"end\" type=\"datetime-local\" value=\"{}\"></div>\
         <div><label for=\"refresh-period\">Period</label><select id=\"refresh-period\" name=\"period\">{periods}</select></div>\
         {store}<div><button type=\"submit\" id=\"refresh-dashboard\">Refresh</button></div></form>",
        esc(&session.csrf),
        esc(name),
        esc(fields.text("start").unwrap_or("")),
        esc(fields.text("end").unwrap_or("")),
    )
}

/// A widget's query in one refresh: its status, and its rows once it has them.
struct WidgetState {
    status: String,
    error: Option<String>,
    rows: Option<Vec<Row>>,
    truncated: bool,
}

async fn widget_state(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
    alias: &str,
    refresh: &str,
) -> WidgetState {
    let described = call(
        console,
        session,
        origin,
        Operation::DescribeQuery,
        json!({ "QueryAlias": alias, "RefreshId": refresh }),
    )
    .await;
    let described = match described {
        Ok(described) => described,
        Err(e) => {
            return WidgetState {
                status: e.code.to_owned(),
                error: Some(e.message),
                rows: None,
                truncated: false,
            }
        }
    };
    let status = text(&described, "QueryStatus").to_owned();
    let mut state = WidgetState {
        error: described["ErrorMessage"].as_str().map(str::to_owned),
        status,
        rows: None,
        truncated: false,
    };
    if matches!(state.status.as_str(), "FINISHED" | "TIMED_OUT") {
        let results = call(
            console,
            session,
            origin,
            Operation::GetQueryResults,
            json!({ "QueryId": text(&described, "QueryId"), "MaxQueryResults": WIDGET_ROWS }),
        )
        .await;
        match results {
            Ok(output) => {
                state.truncated = output["NextToken"].as_str().is_some_and(|t| !t.is_empty());
                state.rows = Some(
                    output["QueryResultRows"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(row_cells)
                        .collect(),
                );
            }
            Err(e) => state.error = Some(format!("{}: {}", e.code, e.message)),
        }
    }
    state
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
    let origin = origin(&peer, &headers);
    let mut body = String::from("<p><a href=\"/console/dashboards\">← Dashboards</a></p>");
    let dashboard = match call(
        &console,
        &session,
        &origin,
        Operation::GetDashboard,
        json!({ "DashboardId": name }),
    )
    .await
    {
        Ok(dashboard) => dashboard,
        Err(e) => {
            body.push_str(&error_box(e.code, &e.message));
            return page(
                "Dashboard",
                Section::Dashboards,
                Some(&session),
                &body,
                StatusCode::OK,
            );
        }
    };
    let managed = text(&dashboard, "Type") == "MANAGED";
    let stores = if managed {
        all_stores(&console, &session, &origin)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    body.push_str(&format!(
        "<dl class=\"summary\" id=\"dashboard-summary\"><dt>Type</dt><dd>{}</dd><dt>Status</dt><dd>{}</dd>\
         <dt>ARN</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>Last refresh</dt><dd id=\"last-refresh\">{}</dd></dl>",
        esc(text(&dashboard, "Type")),
        esc(text(&dashboard, "Status")),
        esc(text(&dashboard, "DashboardArn")),
        esc(&time_text(&dashboard["CreatedTimestamp"])),
        esc(&dashboard["LastRefreshId"]
            .as_str()
            .map_or_else(|| "Never".to_owned(), refresh_time)),
    ));
    if let (Some(code), Some(message)) = (fields.text("error"), fields.text("message")) {
        body.push_str(&error_box(code, message));
    }
    if let Some(reason) = dashboard["LastRefreshFailureReason"].as_str() {
        body.push_str(&error_box("Last refresh failed", reason));
    }
    if managed && stores.is_empty() {
        body.push_str(&notice_box(
            "Managed dashboards query an event data store: create one under Lake to refresh this dashboard.",
        ));
    }
    body.push_str(&refresh_form(&session, name, managed, &stores, &fields));
    let refresh = fields
        .text("refresh")
        .or_else(|| dashboard["LastRefreshId"].as_str());
    let widgets = dashboard["Widgets"].as_array().cloned().unwrap_or_default();
    let mut active = false;
    let mut states = Vec::new();
    if let Some(refresh) = refresh {
        for widget in &widgets {
            let state = widget_state(
                &console,
                &session,
                &origin,
                text(widget, "QueryAlias"),
                refresh,
            )
            .await;
            active |= matches!(state.status.as_str(), "QUEUED" | "RUNNING");
            states.push(Some(state));
        }
        let finished = states
            .iter()
            .flatten()
            .filter(|s| !matches!(s.status.as_str(), "QUEUED" | "RUNNING"))
            .count();
        body.push_str(&format!(
            "<p role=\"status\" id=\"refresh-status\" data-finished=\"{finished}\" data-widgets=\"{}\">Refresh {} ({}): {finished} of {} widget queries done.{}</p>",
            widgets.len(),
            esc(refresh),
            esc(&refresh_time(refresh)),
            widgets.len(),
            if active {
                format!(
                    " This page reloads every {REFRESH_SECONDS} seconds until they are. <a id=\"reload\" href=\"{}{}&refresh={}\">Reload now</a>",
                    esc(&view_link(name)),
                    esc(&form_query(&fields)),
                    esc(&encode(refresh))
                )
            } else {
                String::new()
            }
        ));
    } else {
        body.push_str(&notice_box(
            "Not refreshed yet: refresh the dashboard to run its widgets' queries.",
        ));
        states.resize_with(widgets.len(), || None);
    }
    body.push_str("<div class=\"widgets\">");
    for (widget, state) in widgets.iter().zip(&states) {
        let alias = text(widget, "QueryAlias");
        let properties: BTreeMap<String, String> = widget["ViewProperties"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        let title = properties
            .get("Title")
            .cloned()
            .unwrap_or_else(|| alias.to_owned());
        body.push_str(&format!(
            "<section class=\"card widget\" id=\"{}\" aria-labelledby=\"{}-heading\" data-view=\"{}\"><h2 id=\"{}-heading\">{}</h2>",
            esc(alias),
            esc(alias),
            esc(properties.get("View").map_or("Table", String::as_str)),
            esc(alias),
            esc(&title)
        ));
        match state {
            None => {}
            Some(state) => {
                body.push_str(&format!(
                    "<p class=\"meta\">Query status: <span class=\"widget-status\">{}</span></p>",
                    esc(&state.status)
                ));
                if let Some(error) = &state.error {
                    body.push_str(&error_box(&state.status, error));
                }
                if let Some(rows) = &state.rows {
                    body.push_str(&charts::widget(&properties, rows, alias, &title));
                    if state.truncated {
                        body.push_str(&notice_box(&format!(
                            "Drawn from the first {WIDGET_ROWS} rows."
                        )));
                    }
                }
            }
        }
        body.push_str(&format!(
            "<details><summary>SQL</summary><pre tabindex=\"0\">{}</pre></details></section>",
            esc(text(widget, "QueryStatement"))
        ));
    }
    body.push_str("</div>");
    if !managed {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/console/dashboards/delete\" class=\"card\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"name\" value=\"{}\">\
             <button type=\"submit\" class=\"danger\" id=\"delete-dashboard\">Delete dashboard</button></form>",
            esc(&session.csrf),
            esc(name)
        ));
    }
    refreshing_page(
        &format!("Dashboard {name}"),
        Section::Dashboards,
        Some(&session),
        &body,
        StatusCode::OK,
        active.then_some(REFRESH_SECONDS),
    )
}

/// `<option>`s of the event data stores `stores` (ListEventDataStores entries), `chosen`
/// (a store id) selected.
fn store_options(stores: &[Value], chosen: &str) -> String {
    stores
        .iter()
        .map(|s| {
            let id = store_id(text(s, "EventDataStoreArn"));
            let selected = if id == chosen { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{selected}>{} ({})</option>",
                esc(id),
                esc(text(s, "Name")),
                esc(id)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_the_store_and_keep_the_refresh_parameters() {
        let managed = json!({ "Widgets": [{
            "QueryAlias": "widget-1",
            "QueryStatement": "SELECT 1 FROM ? WHERE eventTime >= '?'",
            "QueryParameters": ["$EventDataStoreId$", "$StartTime$"],
            "ViewProperties": { "View": "Table" }
        }]});
        assert_eq!(
            template_widgets(&managed, "eds-1"),
            json!([{
                "QueryStatement": "SELECT 1 FROM ? WHERE eventTime >= '?'",
                "QueryParameters": ["eds-1", "$StartTime$"],
                "ViewProperties": { "View": "Table" }
            }])
        );
    }

    #[test]
    fn refresh_values_from_the_form() {
        let fields = Fields::parse(
            "start=2026-01-02T03%3A04&end=2026-01-03T00%3A00%3A00Z&period=hour&store=eds",
        );
        let custom = refresh_values(&fields, false);
        assert_eq!(custom["$StartTime$"], json!("2026-01-02T03:04:00"));
        assert_eq!(custom["$EndTime$"], json!("2026-01-03T00:00:00Z"));
        assert_eq!(custom["$Period$"], json!("hour"));
        assert!(!custom.contains_key(STORE_PARAMETER));
        assert_eq!(refresh_values(&fields, true)[STORE_PARAMETER], json!("eds"));
        assert!(refresh_values(&Fields::parse("period="), false).is_empty());
        assert_eq!(
            name_of("arn:aws:cloudtrail:us-east-1:1:dashboard/ops"),
            "ops"
        );
        assert_eq!(refresh_time("0"), "1970-01-01T00:00:00Z");
    }
}
