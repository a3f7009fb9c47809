//! Access reports: ledger events for a period folded into one row per access request, and the
//! renderings a reviewer reads (CSV, JSON, a printable HTML page) or a SIEM ingests (OCSF).
//!
//! Pure: no IO, no clock. The caller reads the events (in `seq` order) and passes them in.

mod csv;
mod html;
mod ocsf;
mod pdf;
mod rows;
mod summary;

pub use csv::{csv_header, csv_line, csv_row, to_csv};
pub use html::{escape as html_escape, to_html};
pub use ocsf::{OCSF_VERSION, ocsf, ocsf_all};
pub use pdf::to_pdf;
pub use rows::{AccessRow, ReportFilter, access_rows, to_json};
pub use summary::{AccessFold, AccessSummary, Decision, Lookup, lookup, row_key, summarize};

#[cfg(test)]
mod tests;
