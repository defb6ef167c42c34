//! The web console, served by `opentrail serve` under `/console`: sign-in with an access
//! key (recorded as CloudTrail `ConsoleLogin` events), event history, trails, CloudTrail
//! Lake (event data stores, the query editor, query results, dashboards) and Insights.
//! Pages are rendered on the server and use no script; every operation runs through
//! [`opentrail_http::api::call_operation`] as the signed-in principal, so the console can
//! do nothing the API would not allow, and each call is audited as the API's are.

mod charts;
mod dashboards;
mod events;
mod form;
mod html;
mod insights;
mod lake;
mod session;
mod signin;
mod trails;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use axum::routing::{get, post};
use axum::Router;
use opentrail_http::App;
use opentrail_meta::MetaStore;
use std::sync::Arc;
use std::time::Duration;

pub use session::Sessions;

/// How the console is run.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Served over TLS: cookies get `Secure`.
    pub tls: bool,
}

/// What every console handler shares.
pub struct Console {
    pub(crate) app: Arc<App>,
    /// Access keys (sign-in) and the users' column choices.
    pub(crate) meta: Arc<dyn MetaStore>,
    pub(crate) sessions: Sessions,
    pub(crate) config: ConsoleConfig,
    /// Sign-in attempts per source address: 1 a second, bursts of 10.
    pub(crate) sign_in_limit: opentrail_http::rate_limit::RateLimiter,
}

type State = axum::extract::State<Arc<Console>>;

/// The console's routes, all under `/console`.
pub fn router(app: Arc<App>, meta: Arc<dyn MetaStore>, config: ConsoleConfig) -> Router {
    let console = Arc::new(Console {
        app,
        meta,
        sessions: Sessions::new(config.session_ttl),
        config,
        sign_in_limit: opentrail_http::rate_limit::RateLimiter::new(1.0, 10.0),
    });
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/assets/console.css", get(stylesheet))
        .route(
            "/console/signin",
            get(signin::form_page).post(signin::sign_in),
        )
        .route("/console/signout", post(signin::sign_out))
        .route("/console/events", get(events::history))
        .route("/console/events/detail", get(events::detail))
        .route("/console/events/columns", post(events::save_columns))
        .route("/console/events/download", get(events::download))
        .route("/console/trails", get(trails::list))
        .route(
            "/console/trails/new",
            get(trails::new_form).post(trails::create),
        )
        .route("/console/trails/view", get(trails::view))
        .route("/console/trails/update", post(trails::update))
        .route("/console/trails/selectors", post(trails::put_selectors))
        .route("/console/trails/insights", post(trails::put_insights))
        .route("/console/trails/logging", post(trails::logging))
        .route("/console/trails/delete", post(trails::delete))
        .route("/console/trails/tags", post(trails::tags))
        .route("/console/lake", get(lake::stores))
        .route("/console/lake/new", get(lake::new_form).post(lake::create))
        .route("/console/lake/editor", get(lake::editor))
        .route(
            "/console/lake/query",
            get(lake::query).post(lake::start_query),
        )
        .route("/console/lake/query/download", get(lake::download))
        .route("/console/lake/history", get(lake::history))
        .route("/console/dashboards", get(dashboards::list))
        .route(
            "/console/dashboards/new",
            get(dashboards::new_form).post(dashboards::create),
        )
        .route("/console/dashboards/view", get(dashboards::view))
        .route("/console/dashboards/refresh", post(dashboards::refresh))
        .route("/console/dashboards/delete", post(dashboards::delete))
        .route("/console/insights", get(insights::list))
        .route("/console/insights/view", get(insights::view))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// Every console answer: no framing, no inline or foreign script, style or form target,
/// nothing cached (pages hold account data).
async fn security_headers(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn home() -> axum::response::Redirect {
    axum::response::Redirect::to("/console/events")
}

async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../assets/console.css"),
    )
}
