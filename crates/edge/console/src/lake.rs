//! CloudTrail Lake: the event data stores (list and create), a SQL editor that starts
//! queries with the sample query library searchable beside it, each store's query
//! history, and a query's status, statistics and result rows (paged with
//! GetQueryResults' NextToken) with a CSV download of all rows streamed page by page.
//! Every API error is shown with its code and message.

use crate::events::{csv_line, origin};
use crate::form::{encode, Fields};
use crate::html::{error_box, esc, notice_box, page, refreshing_page, Section};
use crate::session::{require, require_post, Session};
use crate::trails::call;
use crate::State;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode, Uri};
use opentrail_http::api::{call_operation, CallOrigin};
use opentrail_operations::Operation;
use opentrail_wire::ApiError;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;

/// Result rows on one page of the query page.
const ROWS_PER_PAGE: u64 = 50;
/// Rows per GetQueryResults call of the CSV download (the API's largest page).
const DOWNLOAD_PAGE: u64 = 1000;
/// Queries per page of a store's history.
const HISTORY_PAGE: u64 = 50;
/// Seconds between reloads of the page of a query still QUEUED or RUNNING.
const REFRESH_SECONDS: u32 = 2;

/// An epoch-seconds timestamp of an API answer as ISO 8601 (UTC), or "".
pub(crate) fn time_text(value: &Value) -> String {
    value
        .as_f64()
        .and_then(|s| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64))
        .map(opentrail_model::iso8601)
        .unwrap_or_default()
}

/// The id (the SQL table name) of an event data store ARN.
pub(crate) fn store_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A result cell's value as text: the API renders every value as a string; a null is "".
fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A result row (a list of one-key objects) as its column names and values.
pub(crate) fn row_cells(row: &Value) -> Vec<(String, String)> {
    row.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|cell| cell.iter().next())
        .map(|(name, value)| (name.clone(), cell_text(value)))
        .collect()
}

fn editor_link(store: &str, sql: Option<&str>) -> String {
    let mut link = format!("/console/lake/editor?store={}", encode(store));
    if let Some(sql) = sql {
        link.push_str(&format!("&sql={}", encode(sql)));
    }
    link
}

fn query_link(id: &str, store: &str) -> String {
    format!(
        "/console/lake/query?id={}&store={}",
        encode(id),
        encode(store)
    )
}

fn history_link(store: &str) -> String {
    format!("/console/lake/history?store={}", encode(store))
}

/// Every event data store of the region (all pages of ListEventDataStores).
pub(crate) async fn all_stores(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
) -> Result<Vec<Value>, ApiError> {
    let mut stores = Vec::new();
    let mut input = json!({});
    loop {
        let output = call(
            console,
            session,
            origin,
            Operation::ListEventDataStores,
            input.clone(),
        )
        .await?;
        stores.extend(
            output["EventDataStores"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        match output["NextToken"].as_str().filter(|t| !t.is_empty()) {
            Some(token) => input["NextToken"] = json!(token),
            None => return Ok(stores),
        }
    }
}

pub async fn stores(
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
    if fields.get("done") == Some("created") {
        body.push_str(&notice_box("Event data store created."));
    }
    body.push_str(
        "<p><a class=\"button\" id=\"create-store\" href=\"/console/lake/new\">Create event data store</a> \
         <a class=\"button\" id=\"open-editor\" href=\"/console/lake/editor\">Query editor</a></p>",
    );
    match all_stores(&console, &session, &origin).await {
        Err(e) => body.push_str(&error_box(e.code, &e.message)),
        Ok(stores) if stores.is_empty() => {
            body.push_str(&notice_box("No event data stores in this region yet."));
        }
        Ok(stores) => {
            body.push_str(
                "<div class=\"table-wrap\"><table id=\"stores\"><caption>Event data stores</caption><thead><tr>\
                 <th scope=\"col\">Name</th><th scope=\"col\">Status</th><th scope=\"col\">ARN</th>\
                 <th scope=\"col\">Retention (days)</th><th scope=\"col\">Created</th>\
                 <th scope=\"col\">Queries</th></tr></thead><tbody>",
            );
            for store in &stores {
                let arn = store["EventDataStoreArn"].as_str().unwrap_or("");
                let id = store_id(arn);
                body.push_str(&format!(
                    "<tr><td><a href=\"{}\">{}</a></td><td class=\"nowrap\">{}</td><td class=\"meta\">{}</td><td>{}</td><td class=\"nowrap\">{}</td>\
                     <td class=\"nowrap\"><a href=\"{}\">Query history</a></td></tr>",
                    esc(&editor_link(id, None)),
                    esc(store["Name"].as_str().unwrap_or("")),
                    esc(store["Status"].as_str().unwrap_or("")),
                    esc(arn),
                    store["RetentionPeriod"]
                        .as_u64()
                        .map_or(String::new(), |d| d.to_string()),
                    esc(&time_text(&store["CreatedTimestamp"])),
                    esc(&history_link(id)),
                ));
            }
            body.push_str("</tbody></table></div>");
        }
    }
    page(
        "Event data stores",
        Section::Lake,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

fn create_page(session: &Session, fields: Option<&Fields>, error: Option<&ApiError>) -> Response {
    let value =
        |name: &str, default: &str| esc(fields.and_then(|f| f.get(name)).unwrap_or(default));
    let check = |name: &str| {
        if fields.is_none_or(|f| f.checked(name)) {
            " checked"
        } else {
            ""
        }
    };
    let body = format!(
        "{}<form method=\"post\" action=\"/console/lake/new\" class=\"card\" id=\"create-store-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"store-name\">Name</label><input id=\"store-name\" name=\"Name\" value=\"{}\" required>\
         <label for=\"retention\">Retention period (days, 7–3653)</label>\
         <input id=\"retention\" name=\"RetentionPeriod\" type=\"number\" min=\"7\" max=\"3653\" value=\"{}\" required>\
         <label class=\"check\"><input type=\"checkbox\" id=\"store-multi-region\" name=\"MultiRegionEnabled\"{}> Include all regions (multi-region)</label>\
         <label class=\"check\"><input type=\"checkbox\" id=\"termination-protection\" name=\"TerminationProtectionEnabled\"{}> Termination protection</label>\
         <label for=\"store-selectors\">Advanced event selectors as JSON (a list; empty: all management events)</label>\
         <textarea id=\"store-selectors\" name=\"selectors\" rows=\"10\" spellcheck=\"false\">{}</textarea>\
         <button type=\"submit\" id=\"create-store-submit\">Create event data store</button></form>",
        error.map_or(String::new(), |e| error_box(e.code, &e.message)),
        esc(&session.csrf),
        value("Name", ""),
        value("RetentionPeriod", "366"),
        check("MultiRegionEnabled"),
        check("TerminationProtectionEnabled"),
        value("selectors", ""),
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(
        "Create event data store",
        Section::Lake,
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

/// CreateEventDataStore input from the create form.
fn create_input(fields: &Fields) -> Result<Value, ApiError> {
    let mut input = Map::new();
    input.insert("Name".into(), json!(fields.text("Name").unwrap_or("")));
    if let Some(text) = fields.text("RetentionPeriod") {
        let days: i64 = text.parse().map_err(|_| {
            ApiError::new(
                "InvalidParameterException",
                format!("the retention period '{text}' is not a whole number of days"),
            )
        })?;
        input.insert("RetentionPeriod".into(), json!(days));
    }
    input.insert(
        "MultiRegionEnabled".into(),
        json!(fields.checked("MultiRegionEnabled")),
    );
    input.insert(
        "TerminationProtectionEnabled".into(),
        json!(fields.checked("TerminationProtectionEnabled")),
    );
    if let Some(text) = fields.text("selectors") {
        let selectors: Value = serde_json::from_str(text).map_err(|e| {
            ApiError::new(
                "InvalidEventSelectorsException",
                format!("the advanced event selectors are not JSON: {e}"),
            )
        })?;
        input.insert("AdvancedEventSelectors".into(), selectors);
    }
    Ok(Value::Object(input))
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
    let input = match create_input(&fields) {
        Ok(input) => input,
        Err(e) => return create_page(&session, Some(&fields), Some(&e)),
    };
    let origin = origin(&peer, &headers);
    match call(
        &console,
        &session,
        &origin,
        Operation::CreateEventDataStore,
        input,
    )
    .await
    {
        Ok(_) => Redirect::to("/console/lake?done=created").into_response(),
        Err(e) => create_page(&session, Some(&fields), Some(&e)),
    }
}

/// The SQL the editor starts with on a store.
fn default_sql(store: &str) -> String {
    format!(
        "SELECT eventTime, eventSource, eventName, userIdentity.arn\nFROM {store}\nORDER BY eventTime DESC\nLIMIT 50"
    )
}

/// The sample queries found for `phrase`, each a link that fills the editor with its SQL
/// for `store`.
async fn samples_panel(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
    store: &str,
    phrase: Option<&str>,
) -> String {
    let mut html = String::from(
        "<section class=\"card samples\" aria-labelledby=\"samples-heading\"><h2 id=\"samples-heading\">Sample queries</h2>",
    );
    let Some(phrase) = phrase else {
        html.push_str("<p>Search the sample query library with the form above.</p></section>");
        return html;
    };
    match call(
        console,
        session,
        origin,
        Operation::SearchSampleQueries,
        json!({ "SearchPhrase": phrase, "MaxResults": 20 }),
    )
    .await
    {
        Err(e) => html.push_str(&error_box(e.code, &e.message)),
        Ok(output) => {
            let results = output["SearchResults"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if results.is_empty() {
                html.push_str(&notice_box("No sample query matches."));
            } else {
                html.push_str("<ul id=\"samples\" class=\"samples-list\">");
                for sample in &results {
                    let sql = sample["SQL"]
                        .as_str()
                        .unwrap_or("")
                        .replace("$EDS_ID", store);
                    let mut link = editor_link(store, Some(&sql));
                    link.push_str(&format!("&search={}", encode(phrase)));
                    html.push_str(&format!(
                        "<li><a href=\"{}\" class=\"sample\">{}</a><br><span class=\"hint\">{}</span></li>",
                        esc(&link),
                        esc(sample["Name"].as_str().unwrap_or("")),
                        esc(sample["Description"].as_str().unwrap_or("")),
                    ));
                }
                html.push_str("</ul>");
            }
        }
    }
    html.push_str("</section>");
    html
}

/// The editor page: the store and sample search (a GET form), the SQL form, the samples.
async fn editor_page(
    console: &crate::Console,
    session: &Session,
    origin: &CallOrigin,
    fields: &Fields,
    error: Option<&ApiError>,
) -> Response {
    let stores = match all_stores(console, session, origin).await {
        Ok(stores) => stores,
        Err(e) => {
            return page(
                "Query editor",
                Section::Lake,
                Some(session),
                &error_box(e.code, &e.message),
                StatusCode::OK,
            )
        }
    };
    if stores.is_empty() {
        let body = format!(
            "{}<p><a href=\"/console/lake/new\">Create an event data store</a> to query.</p>",
            notice_box("No event data stores in this region yet.")
        );
        return page(
            "Query editor",
            Section::Lake,
            Some(session),
            &body,
            StatusCode::OK,
        );
    }
    let ids: Vec<&str> = stores
        .iter()
        .map(|s| store_id(s["EventDataStoreArn"].as_str().unwrap_or("")))
        .collect();
    let store = fields
        .text("store")
        .filter(|wanted| ids.contains(wanted))
        .unwrap_or(ids[0])
        .to_owned();
    let phrase = fields.text("search");
    let options: String = stores
        .iter()
        .zip(&ids)
        .map(|(s, id)| {
            let selected = if *id == store { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{selected}>{} ({})</option>",
                esc(id),
                esc(s["Name"].as_str().unwrap_or("")),
                esc(id)
            )
        })
        .collect();
    let sql = fields
        .get("sql")
        .filter(|s| !s.trim().is_empty())
        .map_or_else(|| default_sql(&store), str::to_owned);
    let mut body = format!(
        "<form method=\"get\" action=\"/console/lake/editor\" class=\"filters\" role=\"search\">\
         <div><label for=\"store\">Event data store</label><select id=\"store\" name=\"store\">{options}</select></div>\
         <div><label for=\"search\">Search sample queries</label><input id=\"search\" name=\"search\" value=\"{}\"></div>\
         <div><button type=\"submit\" id=\"search-samples\">Choose store and search</button></div></form>\
         <p class=\"meta\">Table name of the chosen store: <code id=\"table-name\">{}</code> · \
         <a id=\"store-history\" href=\"{}\">Query history</a></p>",
        esc(phrase.unwrap_or("")),
        esc(&store),
        esc(&history_link(&store)),
    );
    body.push_str("<div class=\"editor-layout\">");
    body.push_str(&format!(
        "<form method=\"post\" action=\"/console/lake/query\" class=\"card editor\" id=\"query-form\">{}\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"store\" value=\"{}\">\
         <label for=\"sql\">SQL</label><textarea id=\"sql\" name=\"sql\" rows=\"14\" spellcheck=\"false\">{}</textarea>\
         <button type=\"submit\" id=\"run-query\">Run query</button></form>",
        error.map_or(String::new(), |e| error_box(e.code, &e.message)),
        esc(&session.csrf),
        esc(&store),
        esc(&sql),
    ));
    body.push_str(&samples_panel(console, session, origin, &store, phrase).await);
    body.push_str("</div>");
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page("Query editor", Section::Lake, Some(session), &body, status)
}

pub async fn editor(
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
    editor_page(&console, &session, &origin(&peer, &headers), &fields, None).await
}

pub async fn start_query(
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
    let sql = fields.get("sql").unwrap_or("");
    let store = fields.text("store").unwrap_or("");
    match call(
        &console,
        &session,
        &origin,
        Operation::StartQuery,
        json!({ "QueryStatement": sql }),
    )
    .await
    {
        Ok(output) => {
            let id = output["QueryId"].as_str().unwrap_or("");
            Redirect::to(&query_link(id, store)).into_response()
        }
        Err(e) => editor_page(&console, &session, &origin, &fields, Some(&e)).await,
    }
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
    let store = fields.text("store").unwrap_or("");
    let mut input = json!({ "EventDataStore": store, "MaxResults": HISTORY_PAGE });
    if let Some(token) = fields.text("token") {
        input["NextToken"] = json!(token);
    }
    let mut body = format!(
        "<p><a href=\"/console/lake\">← Event data stores</a> · <a href=\"{}\">Query editor</a></p>\
         <p class=\"meta\">Event data store <code>{}</code>; queries of the last 7 days, newest first.</p>",
        esc(&editor_link(store, None)),
        esc(store)
    );
    match call(
        &console,
        &session,
        &origin(&peer, &headers),
        Operation::ListQueries,
        input,
    )
    .await
    {
        Err(e) => body.push_str(&error_box(e.code, &e.message)),
        Ok(output) => {
            let queries = output["Queries"].as_array().cloned().unwrap_or_default();
            if queries.is_empty() {
                body.push_str(&notice_box("No queries of this event data store yet."));
            } else {
                body.push_str(
                    "<div class=\"table-wrap\"><table id=\"queries\"><caption>Queries</caption><thead><tr>\
                     <th scope=\"col\">Query ID</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th>\
                     </tr></thead><tbody>",
                );
                for query in &queries {
                    let id = query["QueryId"].as_str().unwrap_or("");
                    body.push_str(&format!(
                        "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                        esc(&query_link(id, store)),
                        esc(id),
                        esc(query["QueryStatus"].as_str().unwrap_or("")),
                        esc(&time_text(&query["CreationTime"])),
                    ));
                }
                body.push_str("</tbody></table></div>");
            }
            if let Some(token) = output["NextToken"].as_str().filter(|t| !t.is_empty()) {
                body.push_str(&format!(
                    "<nav class=\"pager\" aria-label=\"Pages\"><a href=\"{}&token={}\" rel=\"next\">Next page</a></nav>",
                    esc(&history_link(store)),
                    esc(&encode(token))
                ));
            }
        }
    }
    page(
        "Query history",
        Section::Lake,
        Some(&session),
        &body,
        StatusCode::OK,
    )
}

/// The statistics DescribeQuery answers, as a definition list.
fn statistics(described: &Value) -> String {
    let stats = &described["QueryStatistics"];
    let number = |member: &str| {
        stats[member]
            .as_u64()
            .map_or_else(|| "—".to_owned(), |n| n.to_string())
    };
    let mut html = String::from("<dl class=\"summary\" id=\"query-status\">");
    let mut item = |name: &str, member: &str, value: String| {
        html.push_str(&format!(
            "<dt>{name}</dt><dd data-member=\"{member}\">{}</dd>",
            esc(&value)
        ));
    };
    item(
        "Status",
        "QueryStatus",
        described["QueryStatus"].as_str().unwrap_or("").to_owned(),
    );
    item("Created", "CreationTime", time_text(&stats["CreationTime"]));
    item("Events matched", "EventsMatched", number("EventsMatched"));
    item("Events scanned", "EventsScanned", number("EventsScanned"));
    item("Bytes scanned", "BytesScanned", number("BytesScanned"));
    item(
        "Run time (ms)",
        "ExecutionTimeInMillis",
        number("ExecutionTimeInMillis"),
    );
    if let Some(uri) = described["DeliveryS3Uri"].as_str() {
        item("Delivered to", "DeliveryS3Uri", uri.to_owned());
        item(
            "Delivery status",
            "DeliveryStatus",
            described["DeliveryStatus"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    html.push_str("</dl>");
    html
}

/// One page of result rows as a table, with the pager.
fn results_table(output: &Value, id: &str, store: &str, paged: bool) -> String {
    let rows = output["QueryResultRows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = output["QueryStatistics"]["TotalResultsCount"].as_u64();
    let mut html = format!(
        "<h2>Results</h2><p class=\"downloads\"><span id=\"results-count\">{} rows</span> · \
         <a id=\"download-results\" href=\"/console/lake/query/download?id={}\">Download all rows (CSV)</a></p>",
        total.map_or_else(|| rows.len().to_string(), |n| n.to_string()),
        esc(&encode(id)),
    );
    if rows.is_empty() {
        html.push_str(&notice_box("The query returned no rows."));
    } else {
        let columns: Vec<String> = row_cells(&rows[0]).into_iter().map(|(n, _)| n).collect();
        html.push_str(
            "<div class=\"table-wrap\"><table id=\"results\"><caption>Result rows</caption><thead><tr>",
        );
        for column in &columns {
            html.push_str(&format!("<th scope=\"col\">{}</th>", esc(column)));
        }
        html.push_str("</tr></thead><tbody>");
        for row in &rows {
            html.push_str("<tr>");
            for (_, value) in row_cells(row) {
                html.push_str(&format!("<td>{}</td>", esc(&value)));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></div>");
    }
    html.push_str("<nav class=\"pager\" aria-label=\"Result pages\">");
    if paged {
        html.push_str(&format!(
            "<a href=\"{}\">First page</a>",
            esc(&query_link(id, store))
        ));
    }
    if let Some(token) = output["NextToken"].as_str().filter(|t| !t.is_empty()) {
        html.push_str(&format!(
            "<a href=\"{}&token={}\" rel=\"next\">Next page</a>",
            esc(&query_link(id, store)),
            esc(&encode(token))
        ));
    }
    html.push_str("</nav>");
    html
}

pub async fn query(
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
    let store = fields.text("store").unwrap_or("");
    let origin = origin(&peer, &headers);
    let mut body = String::from("<p><a href=\"/console/lake\">← Event data stores</a>");
    if !store.is_empty() {
        body.push_str(&format!(
            " · <a href=\"{}\">Query history</a>",
            esc(&history_link(store))
        ));
    }
    body.push_str("</p>");
    let described = call(
        &console,
        &session,
        &origin,
        Operation::DescribeQuery,
        json!({ "QueryId": id }),
    )
    .await;
    let described = match described {
        Ok(described) => described,
        Err(e) => {
            body.push_str(&error_box(e.code, &e.message));
            return page(
                "Query",
                Section::Lake,
                Some(&session),
                &body,
                StatusCode::OK,
            );
        }
    };
    let status = described["QueryStatus"].as_str().unwrap_or("");
    let active = matches!(status, "QUEUED" | "RUNNING");
    body.push_str(&format!(
        "<p class=\"meta\">Query <code id=\"query-id\">{}</code></p>",
        esc(id)
    ));
    body.push_str(&statistics(&described));
    if active {
        body.push_str(&format!(
            "<p role=\"status\">The query is {}; this page reloads every {REFRESH_SECONDS} seconds. \
             <a id=\"refresh\" href=\"{}\">Refresh now</a></p>",
            status.to_lowercase(),
            esc(&query_link(id, store)),
        ));
    }
    if let Some(message) = described["ErrorMessage"].as_str() {
        body.push_str(&error_box(status, message));
    }
    if let Some(sql) = described["QueryString"].as_str() {
        body.push_str(&format!(
            "<h2>SQL</h2><pre id=\"query-sql\" tabindex=\"0\" aria-label=\"Query SQL\">{}</pre>\
             <p><a id=\"edit-query\" href=\"{}\">Open in the editor</a></p>",
            esc(sql),
            esc(&editor_link(store, Some(sql)))
        ));
    }
    if matches!(status, "FINISHED" | "TIMED_OUT") {
        let mut input = json!({ "QueryId": id, "MaxQueryResults": ROWS_PER_PAGE });
        let token = fields.text("token");
        if let Some(token) = token {
            input["NextToken"] = json!(token);
        }
        match call(
            &console,
            &session,
            &origin,
            Operation::GetQueryResults,
            input,
        )
        .await
        {
            Ok(output) => body.push_str(&results_table(&output, id, store, token.is_some())),
            Err(e) => body.push_str(&error_box(e.code, &e.message)),
        }
    }
    refreshing_page(
        "Query",
        Section::Lake,
        Some(&session),
        &body,
        StatusCode::OK,
        active.then_some(REFRESH_SECONDS),
    )
}

/// Streams all result rows as CSV: a header of the column names, then each row's values.
/// One GetQueryResults page is read, written out and dropped before the next, so memory
/// stays one page whatever the result's size. A query with no rows gives an empty file.
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
    let id = fields.text("id").unwrap_or("").to_owned();
    let origin = origin(&peer, &headers);
    let mut input = json!({ "QueryId": id, "MaxQueryResults": DOWNLOAD_PAGE });
    let call_page = {
        let console = std::sync::Arc::clone(&console);
        let session = session.clone();
        move |input: Value| {
            let console = std::sync::Arc::clone(&console);
            let session = session.clone();
            let origin = CallOrigin {
                source_ip: origin.source_ip.clone(),
                user_agent: origin.user_agent.clone(),
            };
            async move {
                call_operation(
                    &console.app,
                    &session.caller,
                    Operation::GetQueryResults,
                    &input,
                    origin,
                )
                .await
            }
        }
    };
    // The first page answers errors (an unknown or unfinished query) before streaming.
    let first = match call_page(input.clone()).await {
        Ok(first) => first,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{}: {}", e.code, e.message),
            )
                .into_response()
        }
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut page = first;
        let mut header_written = false;
        loop {
            let mut chunk = Vec::new();
            for row in page["QueryResultRows"].as_array().into_iter().flatten() {
                let cells = row_cells(row);
                if !header_written {
                    chunk.extend_from_slice(&csv_line(cells.iter().map(|(n, _)| n.clone())));
                    header_written = true;
                }
                chunk.extend_from_slice(&csv_line(cells.into_iter().map(|(_, v)| v)));
            }
            if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            match page["NextToken"].as_str().filter(|t| !t.is_empty()) {
                Some(token) => input["NextToken"] = json!(token),
                None => return,
            }
            page = loop {
                match call_page(input.clone()).await {
                    Ok(page) => break page,
                    Err(e) if e.code == "ThrottlingException" => {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(e) => {
                        tracing::warn!(code = e.code, error = %e.message, "console query download stopped");
                        let _ = sender.send(Err(std::io::Error::other(e.message))).await;
                        return;
                    }
                }
            };
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let name: String = fields
        .text("id")
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if let Ok(value) = format!("attachment; filename=\"query_{name}.csv\"").parse() {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_column_order_and_render_nulls_empty() {
        let row = json!([{ "eventName": "ListTrails" }, { "arn": null }, { "_col2": "3" }]);
        assert_eq!(
            row_cells(&row),
            [
                ("eventName".to_owned(), "ListTrails".to_owned()),
                ("arn".to_owned(), String::new()),
                ("_col2".to_owned(), "3".to_owned()),
            ]
        );
    }

    #[test]
    fn create_input_checks_retention_and_selectors() {
        let input = create_input(&Fields::parse(
            "Name=lake&RetentionPeriod=30&MultiRegionEnabled=on&selectors=%5B%5D",
        ))
        .unwrap();
        assert_eq!(input["RetentionPeriod"], json!(30));
        assert_eq!(input["MultiRegionEnabled"], json!(true));
        assert_eq!(input["TerminationProtectionEnabled"], json!(false));
        assert_eq!(input["AdvancedEventSelectors"], json!([]));
        let bad = create_input(&Fields::parse("Name=lake&RetentionPeriod=week")).unwrap_err();
        assert_eq!(bad.code, "InvalidParameterException");
        let bad = create_input(&Fields::parse("Name=lake&selectors=%5B")).unwrap_err();
        assert_eq!(bad.code, "InvalidEventSelectorsException");
        assert!(create_input(&Fields::parse("Name=lake"))
            .unwrap()
            .get("AdvancedEventSelectors")
            .is_none());
    }

    #[test]
    fn store_ids_and_links() {
        assert_eq!(
            store_id("arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc-1"),
            "abc-1"
        );
        assert_eq!(
            editor_link("abc", Some("SELECT 1")),
            "/console/lake/editor?store=abc&sql=SELECT%201"
        );
    }
}
