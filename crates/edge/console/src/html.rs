//! HTML building: escaping and the page frame every console page shares.

use crate::session::Session;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Which part of the console a page belongs to (the navigation marks it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    SignIn,
    Events,
    Trails,
    Lake,
    Dashboards,
    Insights,
}

/// A whole page: navigation (when signed in), the body, an error message if any.
pub fn page(
    title: &str,
    section: Section,
    session: Option<&Session>,
    body: &str,
    status: StatusCode,
) -> Response {
    refreshing_page(title, section, session, body, status, None)
}

/// A page that, when `refresh` is given, reloads itself after that many seconds (a meta
/// refresh: the console has no script).
pub fn refreshing_page(
    title: &str,
    section: Section,
    session: Option<&Session>,
    body: &str,
    status: StatusCode,
    refresh: Option<u32>,
) -> Response {
    let nav = match session {
        None => String::new(),
        Some(session) => {
            let link = |href: &str, label: &str, this: Section| {
                let current = if this == section {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!("<li><a href=\"{href}\"{current}>{label}</a></li>")
            };
            format!(
                "<nav aria-label=\"Console\"><ul>{}{}{}{}{}</ul>\
                 <form method=\"post\" action=\"/console/signout\" class=\"signout\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <span>{} · {} · {}</span> <button type=\"submit\">Sign out</button></form></nav>",
                link("/console/events", "Event history", Section::Events),
                link("/console/trails", "Trails", Section::Trails),
                link("/console/lake", "Lake", Section::Lake),
                link("/console/dashboards", "Dashboards", Section::Dashboards),
                link("/console/insights", "Insights", Section::Insights),
                esc(&session.csrf),
                esc(&session.display_name()),
                esc(session.caller.account.as_str()),
                esc(session.caller.region.as_str()),
            )
        }
    };
    let refresh = refresh.map_or(String::new(), |seconds| {
        format!("<meta http-equiv=\"refresh\" content=\"{seconds}\">")
    });
    let document = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · OpenTrail</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><span class=\"brand\">OpenTrail</span>{nav}</header>\
         <main id=\"main\" tabindex=\"-1\"><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    );
    (status, Html(document)).into_response()
}

/// An API error as the console shows it: its code and message, announced to screen readers.
pub fn error_box(code: &str, message: &str) -> String {
    format!(
        "<div class=\"error\" role=\"alert\"><strong>{}</strong>: {}</div>",
        esc(code),
        esc(message)
    )
}

pub fn notice_box(message: &str) -> String {
    format!(
        "<div class=\"notice\" role=\"status\">{}</div>",
        esc(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
