//! Charts as inline SVG, rendered on the server: no script, readable by a screen reader
//! (`role="img"`, a `<title>` and a `<desc>` saying what the chart shows), every label and value
//! written as text, colours at more than 4.5:1 against white, and all text escaped (names come
//! from users and the config).

use std::fmt::Write;

/// Bars, axis and labels: dark blue and near-black on white (6.9:1 and 17:1).
const BAR: &str = "#1f5f99";
const TEXT: &str = "#1a1a1a";
/// Axes and secondary text (7:1 on white).
const MUTED: &str = "#595959";

/// Longest label shown in full; longer ones are cut with `…` (the whole name stays in the
/// bar's tooltip).
const LABEL_CHARS: usize = 24;

/// Escapes text for HTML and SVG, in element content and in attribute values alike: the
/// access report's escape, one implementation for every page latch renders.
pub use latch_report::html_escape as escape;

/// One bar: its label, its value and how the value reads (`12`, `1h30m`, `40%`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub shown: String,
}

impl Bar {
    /// A count, shown as the number.
    pub fn count(label: impl Into<String>, value: u64) -> Self {
        Self {
            label: label.into(),
            value,
            shown: value.to_string(),
        }
    }

    /// A duration in seconds, shown as `1h30m`.
    pub fn secs(label: impl Into<String>, value: u64) -> Self {
        Self {
            label: label.into(),
            value,
            shown: crate::model::human_secs(value),
        }
    }
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_owned()
    } else {
        let mut cut: String = label.chars().take(LABEL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// Opens the `<svg>` with its accessible name and description; `id` must be unique in the
/// page (it names the title and description).
fn open(out: &mut String, id: &str, title: &str, desc: &str, width: u32, height: u32) {
    let id = escape(id);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(title),
        escape(desc)
    );
}

/// A horizontal bar chart: one row per bar with its label on the left and its value after
/// the bar. Bars are scaled to the largest value; a value of 0 draws no bar but keeps its row.
pub fn bar_chart(id: &str, title: &str, desc: &str, bars: &[Bar]) -> String {
    const LABEL_W: u32 = 170;
    const BAR_W: u32 = 300;
    const ROW_H: u32 = 24;
    const VALUE_W: u32 = 70;
    let width = LABEL_W + BAR_W + VALUE_W;
    let height = u32::try_from(bars.len().max(1))
        .unwrap_or(u32::MAX / ROW_H)
        .saturating_mul(ROW_H)
        + 8;
    let max = bars.iter().map(|bar| bar.value).max().unwrap_or(0).max(1);
    let mut out = String::new();
    open(&mut out, id, title, desc, width, height);
    if bars.is_empty() {
        let _ = write!(
            out,
            "<text x=\"4\" y=\"18\" fill=\"{MUTED}\">no data in this period</text>"
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = u32::try_from(i).unwrap_or(0).saturating_mul(ROW_H) + 4;
        let length = (u128::from(bar.value) * u128::from(BAR_W) / u128::from(max)) as u32;
        let label = escape(&bar.label);
        let shown = escape(&bar.shown);
        let _ = write!(
            out,
            "<g class=\"bar\" data-label=\"{label}\" data-value=\"{}\">\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{TEXT}\">{}</text>\
             <rect x=\"{LABEL_W}\" y=\"{}\" width=\"{length}\" height=\"16\" fill=\"{BAR}\">\
             <title>{label}: {shown}</title></rect>\
             <text x=\"{}\" y=\"{}\" fill=\"{TEXT}\">{shown}</text></g>",
            bar.value,
            LABEL_W - 6,
            y + 13,
            escape(&shorten(&bar.label)),
            y + 1,
            LABEL_W + length + 4,
            y + 13,
        );
    }
    out.push_str("</svg>");
    out
}

/// A time series as columns, one per point (a day, say), with the first and last labels under
/// the axis and the largest value beside it; each column's tooltip gives its label and value.
pub fn time_series(id: &str, title: &str, desc: &str, points: &[(String, u64)]) -> String {
    const LEFT: u32 = 40;
    const PLOT_W: u32 = 600;
    const PLOT_H: u32 = 160;
    const TOP: u32 = 10;
    let width = LEFT + PLOT_W + 10;
    let height = TOP + PLOT_H + 30;
    let max = points.iter().map(|(_, value)| *value).max().unwrap_or(0);
    let scale = max.max(1);
    let mut out = String::new();
    open(&mut out, id, title, desc, width, height);
    let base = TOP + PLOT_H;
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"{MUTED}\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"{MUTED}\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{TEXT}\">{max}</text>\
         <text x=\"{}\" y=\"{base}\" text-anchor=\"end\" fill=\"{TEXT}\">0</text>",
        LEFT + PLOT_W,
        LEFT - 4,
        TOP + 10,
        LEFT - 4,
    );
    if points.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"{MUTED}\">no data in this period</text>",
            LEFT + 8,
            TOP + PLOT_H / 2
        );
    }
    let n = u32::try_from(points.len().max(1)).unwrap_or(u32::MAX);
    let column = (PLOT_W / n).max(1);
    let gap = u32::from(column > 3);
    for (i, (label, value)) in points.iter().enumerate() {
        let x = LEFT + u32::try_from(i).unwrap_or(0).saturating_mul(PLOT_W) / n;
        let h = (u128::from(*value) * u128::from(PLOT_H) / u128::from(scale)) as u32;
        let label = escape(label);
        let _ = write!(
            out,
            "<rect class=\"point\" data-label=\"{label}\" data-value=\"{value}\" x=\"{x}\" \
             y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"{BAR}\"><title>{label}: {value}</title>\
             </rect>",
            base - h,
            column - gap,
        );
    }
    if let (Some((first, _)), Some((last, _))) = (points.first(), points.last()) {
        let _ = write!(
            out,
            "<text x=\"{LEFT}\" y=\"{}\" fill=\"{TEXT}\">{}</text>",
            base + 18,
            escape(first)
        );
        if points.len() > 1 {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{TEXT}\">{}</text>",
                LEFT + PLOT_W,
                base + 18,
                escape(last)
            );
        }
    }
    out.push_str("</svg>");
    out
}
