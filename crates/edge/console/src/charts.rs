//! A dashboard widget drawn from its query's rows per its `ViewProperties`: `LineChart`,
//! `BarChart` (`Orientation` `Horizontal` or vertical), `PieChart` as server-rendered
//! inline SVG (colours come from the stylesheet: the CSP allows no inline style), and
//! `Table`. Every chart is followed by its data as a table, so the figures are there for
//! screen readers and keyboard users too.

use crate::html::{esc, notice_box};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One result row: column names and values, in the query's column order.
pub type Row = Vec<(String, String)>;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 56.0;
/// Slice and bar colours cycle through this many stylesheet classes.
const PALETTE: usize = 10;

/// How a widget is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Line,
    Bar,
    Pie,
    Table,
}

impl View {
    /// The `View` property (AWS: `Table`, `LineChart`, `BarChart`, `PieChart`); anything
    /// else, or none, is shown as a table.
    pub fn of(properties: &BTreeMap<String, String>) -> Self {
        match properties.get("View").map(String::as_str) {
            Some("LineChart") => Self::Line,
            Some("BarChart") => Self::Bar,
            Some("PieChart") => Self::Pie,
            _ => Self::Table,
        }
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Shortens a label for an axis (the full text is in the element's title and the table).
fn short(label: &str, at_most: usize) -> String {
    if label.chars().count() <= at_most {
        label.to_owned()
    } else {
        let kept: String = label.chars().take(at_most.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// The (label, value) series of a chart: the label column (`XAxisColumn` for line and
/// bar charts, `LabelColumn` for pies), else the first column; the value column
/// (`YAxisColumn` / `ValueColumn`), else the last column. Rows whose value is not a
/// number are left out.
fn series(
    rows: &[Row],
    label_column: Option<&str>,
    value_column: Option<&str>,
) -> Vec<(String, f64)> {
    let pick = |row: &Row, wanted: Option<&str>, fallback_last: bool| -> Option<String> {
        let found = wanted.and_then(|name| row.iter().find(|(n, _)| n == name));
        let cell = match found {
            Some(cell) => Some(cell),
            None if fallback_last => row.last(),
            None => row.first(),
        };
        cell.map(|(_, v)| v.clone())
    };
    rows.iter()
        .filter_map(|row| {
            let label = pick(row, label_column, false)?;
            let value = pick(row, value_column, true)?.trim().parse::<f64>().ok()?;
            value.is_finite().then_some((label, value))
        })
        .collect()
}

/// The widget's drawing (nothing for a table) and its data table. `id` is unique on the
/// page (the widget's query alias).
pub fn widget(
    properties: &BTreeMap<String, String>,
    rows: &[Row],
    id: &str,
    title: &str,
) -> String {
    if rows.is_empty() {
        return notice_box("The widget's query returned no rows.");
    }
    let view = View::of(properties);
    let prop = |name: &str| properties.get(name).map(String::as_str);
    let chart = match view {
        View::Table => String::new(),
        View::Line => line(
            &series(rows, prop("XAxisColumn"), prop("YAxisColumn")),
            id,
            title,
        ),
        View::Bar => bar(
            &series(rows, prop("XAxisColumn"), prop("YAxisColumn")),
            id,
            title,
            prop("Orientation").is_some_and(|o| o.eq_ignore_ascii_case("horizontal")),
        ),
        View::Pie => pie(
            &series(rows, prop("LabelColumn"), prop("ValueColumn")),
            id,
            title,
        ),
    };
    let table = data_table(rows, id, title);
    if view == View::Table {
        table
    } else {
        format!(
            "<figure class=\"chart-figure\">{chart}</figure>\
             <details class=\"data\"><summary>Data table</summary>{table}</details>"
        )
    }
}

fn data_table(rows: &[Row], id: &str, title: &str) -> String {
    let mut html = format!(
        "<div class=\"table-wrap\"><table class=\"widget-table\" id=\"{}-table\"><caption>{}</caption><thead><tr>",
        esc(id),
        esc(title)
    );
    for (name, _) in &rows[0] {
        let _ = write!(html, "<th scope=\"col\">{}</th>", esc(name));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for (_, value) in row {
            let _ = write!(html, "<td>{}</td>", esc(value));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

fn open_svg(id: &str, title: &str, kind: &str, description: &str) -> String {
    let id = esc(id);
    format!(
        "<svg class=\"chart {kind}\" id=\"{id}-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        esc(title),
        esc(description)
    )
}

/// The top of the value axis: a round number (1, 2, 2.5 or 5 times a power of ten) at or
/// above the largest value.
fn largest(points: &[(String, f64)]) -> f64 {
    let top = points.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    if top <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(top.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * step)
        .find(|candidate| *candidate >= top)
        .unwrap_or(10.0 * step)
}

fn peak(points: &[(String, f64)]) -> f64 {
    points.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max)
}

fn axes(svg: &mut String, top: f64) {
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{0}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/>\
         <text class=\"tick\" x=\"{2}\" y=\"{3}\" text-anchor=\"end\">{4}</text>\
         <text class=\"tick\" x=\"{2}\" y=\"{0}\" text-anchor=\"end\">0</text>",
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        LEFT - 6.0,
        TOP + 4.0,
        number(top),
    );
}

fn line(points: &[(String, f64)], id: &str, title: &str) -> String {
    let mut svg = open_svg(
        id,
        title,
        "line-chart",
        &format!(
            "Line chart of {} points; largest {}.",
            points.len(),
            number(peak(points))
        ),
    );
    let top = largest(points);
    axes(&mut svg, top);
    let span = (WIDTH - LEFT - RIGHT) / (points.len().max(2) - 1) as f64;
    let x = |i: usize| {
        if points.len() == 1 {
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0
        } else {
            LEFT + i as f64 * span
        }
    };
    let y = |v: f64| TOP + (1.0 - v / top) * (HEIGHT - TOP - BOTTOM);
    let coordinates: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"series\" points=\"{}\"/>",
        coordinates.join(" ")
    );
    for (i, (label, value)) in points.iter().enumerate() {
        let _ = write!(
            svg,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" data-label=\"{}\" data-value=\"{}\"><title>{}: {}</title></circle>",
            x(i),
            y(*value),
            esc(label),
            number(*value),
            esc(label),
            number(*value)
        );
    }
    // The first and last labels under the axis.
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{LEFT}\" y=\"{0}\">{1}</text>",
            HEIGHT - BOTTOM + 18.0,
            esc(&short(&first.0, 24))
        );
        if points.len() > 1 {
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{0}\" y=\"{1}\" text-anchor=\"end\">{2}</text>",
                WIDTH - RIGHT,
                HEIGHT - BOTTOM + 18.0,
                esc(&short(&last.0, 24))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn bar(points: &[(String, f64)], id: &str, title: &str, horizontal: bool) -> String {
    let top = largest(points);
    let mut svg = open_svg(
        id,
        title,
        "bar-chart",
        &format!(
            "{} bar chart of {} bars; largest {}.",
            if horizontal { "Horizontal" } else { "Vertical" },
            points.len(),
            number(peak(points))
        ),
    );
    let count = points.len().max(1) as f64;
    if horizontal {
        // Labels on the left, bars growing right.
        let left = 180.0;
        let band = (HEIGHT - TOP - 24.0) / count;
        let length = |v: f64| (v / top) * (WIDTH - left - RIGHT);
        let _ = write!(
            svg,
            "<line class=\"axis\" x1=\"{left}\" y1=\"{TOP}\" x2=\"{left}\" y2=\"{0}\"/>",
            HEIGHT - 24.0
        );
        for (i, (label, value)) in points.iter().enumerate() {
            let y = TOP + i as f64 * band;
            let _ = write!(
                svg,
                "<rect class=\"bar c{}\" x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" data-label=\"{}\" data-value=\"{}\"><title>{}: {}</title></rect>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                i % PALETTE,
                y + band * 0.1,
                length(*value).max(1.0),
                band * 0.8,
                esc(label),
                number(*value),
                esc(label),
                number(*value),
                left - 6.0,
                y + band * 0.5 + 4.0,
                esc(&short(label, 26)),
            );
        }
    } else {
        axes(&mut svg, top);
        let band = (WIDTH - LEFT - RIGHT) / count;
        let height = |v: f64| (v / top) * (HEIGHT - TOP - BOTTOM);
        for (i, (label, value)) in points.iter().enumerate() {
            let x = LEFT + i as f64 * band;
            let h = height(*value);
            let _ = write!(
                svg,
                "<rect class=\"bar c{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" data-label=\"{}\" data-value=\"{}\"><title>{}: {}</title></rect>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                i % PALETTE,
                x + band * 0.1,
                HEIGHT - BOTTOM - h,
                band * 0.8,
                h,
                esc(label),
                number(*value),
                esc(label),
                number(*value),
                x + band * 0.5,
                HEIGHT - BOTTOM + 16.0,
                esc(&short(label, (band / 7.0).max(3.0) as usize)),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn pie(points: &[(String, f64)], id: &str, title: &str) -> String {
    let slices: Vec<&(String, f64)> = points.iter().filter(|(_, v)| *v > 0.0).collect();
    let total: f64 = slices.iter().map(|(_, v)| v).sum();
    let mut svg = open_svg(
        id,
        title,
        "pie-chart",
        &format!(
            "Pie chart of {} slices; total {}.",
            slices.len(),
            number(total)
        ),
    );
    let (cx, cy, r) = (HEIGHT / 2.0, HEIGHT / 2.0, HEIGHT / 2.0 - TOP);
    let mut angle = -std::f64::consts::FRAC_PI_2;
    for (i, (label, value)) in slices.iter().enumerate() {
        let share = value / total;
        let percent = format!("{:.1}%", share * 100.0);
        let tooltip = format!("{}: {} ({percent})", esc(label), number(*value));
        let data = format!(
            "data-label=\"{}\" data-value=\"{}\"",
            esc(label),
            number(*value)
        );
        if slices.len() == 1 {
            let _ = write!(
                svg,
                "<circle class=\"slice c0\" cx=\"{cx}\" cy=\"{cy}\" r=\"{r}\" {data}><title>{tooltip}</title></circle>"
            );
        } else {
            let end = angle + share * std::f64::consts::TAU;
            let large = if share > 0.5 { 1 } else { 0 };
            let _ = write!(
                svg,
                "<path class=\"slice c{}\" d=\"M{cx},{cy} L{:.2},{:.2} A{r},{r} 0 {large} 1 {:.2},{:.2} Z\" {data}><title>{tooltip}</title></path>",
                i % PALETTE,
                cx + r * angle.cos(),
                cy + r * angle.sin(),
                cx + r * end.cos(),
                cy + r * end.sin(),
            );
            angle = end;
        }
        // The legend beside the pie.
        let ly = TOP + 8.0 + i as f64 * 22.0;
        if ly < HEIGHT - 8.0 {
            let _ = write!(
                svg,
                "<rect class=\"swatch c{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\"/>\
                 <text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\">{} ({percent})</text>",
                i % PALETTE,
                HEIGHT + 10.0,
                ly,
                HEIGHT + 28.0,
                ly + 11.0,
                esc(&short(label, 40)),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<Row> {
        pairs
            .iter()
            .map(|(label, value)| {
                vec![
                    ("eventName".to_owned(), (*label).to_owned()),
                    ("eventCount".to_owned(), (*value).to_owned()),
                ]
            })
            .collect()
    }

    fn properties(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn one_mark_per_row_and_the_data_as_a_table() {
        let data = rows(&[("ListTrails", "6"), ("<b>", "3"), ("Other", "x")]);
        let bar = widget(
            &properties(&[
                ("View", "BarChart"),
                ("XAxisColumn", "eventName"),
                ("YAxisColumn", "eventCount"),
            ]),
            &data,
            "widget-1",
            "Calls",
        );
        assert_eq!(
            bar.matches("<rect class=\"bar").count(),
            2,
            "the row that is not a number is left out"
        );
        assert!(bar.contains("data-label=\"&lt;b&gt;\"") && !bar.contains("<b>"));
        assert_eq!(bar.matches("<tr>").count(), 4, "header and the three rows");
        assert!(!bar.contains("style="));
        let line = widget(
            &properties(&[("View", "LineChart")]),
            &data,
            "widget-2",
            "Calls",
        );
        assert_eq!(line.matches("<circle class=\"point\"").count(), 2);
        let pie = widget(
            &properties(&[
                ("View", "PieChart"),
                ("LabelColumn", "eventName"),
                ("ValueColumn", "eventCount"),
            ]),
            &data,
            "widget-3",
            "Calls",
        );
        assert_eq!(pie.matches("<path class=\"slice").count(), 2);
        assert!(pie.contains("(66.7%)"));
        let table = widget(
            &properties(&[("View", "Table")]),
            &data,
            "widget-4",
            "Calls",
        );
        assert!(!table.contains("<svg") && table.contains("id=\"widget-4-table\""));
    }

    #[test]
    fn the_value_axis_ends_on_a_round_number() {
        let top = |v: f64| largest(&[("a".to_owned(), v)]);
        assert_eq!(top(6.0), 10.0);
        assert_eq!(top(1.0), 1.0);
        assert_eq!(top(0.0), 1.0);
        assert_eq!(top(180.0), 200.0);
        assert_eq!(top(2100.0), 2500.0);
        assert!((top(0.3) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_single_slice_is_a_circle_and_zero_slices_are_left_out() {
        let data = rows(&[("a", "5"), ("b", "0")]);
        let pie = widget(&properties(&[("View", "PieChart")]), &data, "w", "t");
        assert_eq!(pie.matches("class=\"slice").count(), 1);
        assert!(pie.contains("<circle class=\"slice c0\""));
    }

    #[test]
    fn named_columns_are_used_and_missing_ones_fall_back() {
        let data = vec![vec![
            ("period".to_owned(), "2026-01-01 00:00:00.000".to_owned()),
            ("other".to_owned(), "9".to_owned()),
            ("eventCount".to_owned(), "4".to_owned()),
        ]];
        assert_eq!(
            series(&data, Some("period"), Some("eventCount")),
            [("2026-01-01 00:00:00.000".to_owned(), 4.0)]
        );
        assert_eq!(
            series(&data, Some("nope"), Some("other")),
            [("2026-01-01 00:00:00.000".to_owned(), 9.0)]
        );
        let bar = widget(
            &properties(&[("View", "BarChart"), ("Orientation", "Horizontal")]),
            &data,
            "w",
            "t",
        );
        assert!(bar.contains("Horizontal bar chart of 1 bars"));
        assert!(widget(&properties(&[]), &[], "w", "t").contains("no rows"));
    }
}
