//! The dashboard over a period and the access report downloads (CSV and HTML), for auditors and
//! admins: both read the whole ledger, as `GET /api/v1/events` does.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;

use latch_core::Timestamp;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::page::{self, Nav, Shell};
use super::session::Viewer;
use super::{parse_when, url_encode};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiQuery;

/// The default period: the last 30 days.
const DEFAULT_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The dashboard's filters (the API's: unknown names are refused there); empty: all.
    #[serde(default)]
    team: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    approver: String,
}

impl PeriodQuery {
    /// The filters that are set, as the analytics API names them.
    fn filters(&self) -> Vec<(&'static str, &str)> {
        [
            ("team", self.team.trim()),
            ("resource", self.resource.trim()),
            ("principal", self.principal.trim()),
            ("approver", self.approver.trim()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect()
    }
}

/// A `<select>` of `names` with "all" first, `chosen` selected.
fn choice(id: &str, name: &str, label: &str, names: &[String], chosen: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            select #(id) name=(name) {
                option value="" selected[chosen.is_empty()] { "all" }
                @for option in names {
                    option value=(option) selected[option == chosen] { (option) }
                }
            }
        }
    }
}

/// A period `[from, to)` read from the page's fields, with its defaults.
struct Period {
    from: Timestamp,
    to: Timestamp,
}

impl Period {
    fn read(query: &PeriodQuery, now: Timestamp) -> Result<Self, ApiError> {
        // By default up to the end of today (UTC), so that today's requests count.
        let end_of_today = (now.as_millis().div_euclid(DAY_MS) + 1) * DAY_MS;
        let to = parse_when("until", Some(&query.to))
            .map_err(ApiError::BadRequest)?
            .unwrap_or(Timestamp::from_millis(end_of_today));
        let from = parse_when("from", Some(&query.from))
            .map_err(ApiError::BadRequest)?
            .unwrap_or(Timestamp::from_millis(
                to.as_millis().saturating_sub(DEFAULT_DAYS * DAY_MS),
            ));
        if from >= to {
            return Err(ApiError::BadRequest(format!(
                "the period is empty: `from` ({from}) must be before `until` ({to})"
            )));
        }
        Ok(Self { from, to })
    }

    fn query(&self) -> String {
        format!(
            "from={}&to={}",
            url_encode(&self.from.to_string()),
            url_encode(&self.to.to_string())
        )
    }

    fn date(at: Timestamp) -> String {
        let text = at.to_string();
        text.get(..10).unwrap_or(&text).to_owned()
    }
}

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PeriodQuery>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    let period = match Period::read(&query, state.clock.now()) {
        Ok(period) => period,
        Err(err) => return page::error(Some(&shell), err),
    };
    // The API's own analytics endpoint: the same role check, the same figures.
    let mut api_query = serde_json::json!({
        "from": period.from.to_string(),
        "to": period.to.to_string(),
    });
    for (name, value) in query.filters() {
        api_query[name] = serde_json::Value::from(value);
    }
    let last_quarter = latch_evidence::Schedule::Quarterly
        .last_closed(state.clock.now())
        .map(|period| period.label)
        .unwrap_or_default();
    let catalog = state.catalog.get();
    let teams: Vec<String> = catalog.teams.keys().cloned().collect();
    let resources: Vec<String> = catalog.resources.keys().cloned().collect();
    let users: Vec<String> = catalog.users.keys().cloned().collect();
    let analytics = match serde_json::from_value(api_query) {
        Ok(api_query) => {
            crate::analytics::get_analytics(
                State(state.clone()),
                viewer.caller.clone(),
                ApiQuery(api_query),
            )
            .await
        }
        Err(err) => Err(ApiError::Internal(err.to_string())),
    };
    let analytics = match analytics {
        Ok(Json(analytics)) => analytics,
        Err(err) => return page::error(Some(&shell), err),
    };
    // The report follows the dashboard's team and resource (it has no requester or approver
    // filter).
    let mut links = period.query();
    for (name, value) in query.filters() {
        if matches!(name, "team" | "resource") {
            links.push_str(&format!("&{name}={}", url_encode(value)));
        }
    }
    let body = html! {
        h1 { "Dashboard" }
        form.filters method="get" action="/ui/dashboard" {
            div.field {
                label for="p-from" { "From" }
                input #p-from name="from" value=(Period::date(period.from)) size="12" aria-describedby="period-help";
            }
            div.field {
                label for="p-to" { "Until (excluded)" }
                input #p-to name="to" value=(Period::date(period.to)) size="12" aria-describedby="period-help";
            }
            (choice("p-team", "team", "Team", &teams, query.team.trim()))
            (choice("p-resource", "resource", "Resource", &resources, query.resource.trim()))
            (choice("p-principal", "principal", "Requester", &users, query.principal.trim()))
            (choice("p-approver", "approver", "Approver", &users, query.approver.trim()))
            div.actions { button type="submit" { "Show" } }
            p #period-help .help { "Dates as YYYY-MM-DD (UTC), or exact times in RFC 3339. Requests created in the period count." }
        }
        p.downloads {
            "Access report for this period: "
            a href={ "/ui/reports/access.csv?" (links) } download { "CSV" }
            " · "
            a href={ "/ui/reports/access.html?" (links) } download { "HTML (printable)" }
            " · "
            a href={ "/ui/reports/access.pdf?" (links) } download { "PDF" }
        }
        form.filters method="get" action="/ui/evidence.tar" {
            div.field {
                label for="e-period" { "Evidence pack for" }
                input #e-period name="period" value=(last_quarter) size="10" aria-describedby="evidence-help";
            }
            div.actions { button type="submit" { "Download evidence pack" } }
            p #evidence-help .help {
                "A quarter (2026-Q3), a month (2026-07) or a year (2026). Unpack it and check it with "
                code { "latch ledger verify --bundle DIR --key KEY" } "."
            }
        }
        (dashboard_body(&analytics))
    };
    page::layout(Some(&shell), Nav::Dashboard, "Dashboard", body).into_response()
}

/// The dashboard's figures and SVG charts, rendered by `latch-analytics` (every text in it is
/// escaped there; it has no script and no style attribute, so the page's CSP holds).
fn dashboard_body(analytics: &latch_analytics::Analytics) -> Markup {
    PreEscaped(latch_analytics::dashboard_html(analytics))
}

/// The access report of a period as CSV, as `latch report --format csv` writes it.
pub(crate) async fn report_csv(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PeriodQuery>,
) -> Response {
    report(state, viewer, query, ReportKind::Csv).await
}

/// The access report of a period as a printable HTML page.
pub(crate) async fn report_html(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PeriodQuery>,
) -> Response {
    report(state, viewer, query, ReportKind::Html).await
}

/// The access report of a period as a printable PDF.
pub(crate) async fn report_pdf(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PeriodQuery>,
) -> Response {
    report(state, viewer, query, ReportKind::Pdf).await
}

#[derive(Clone, Copy)]
enum ReportKind {
    Csv,
    Html,
    Pdf,
}

async fn report(state: AppState, viewer: Viewer, query: PeriodQuery, kind: ReportKind) -> Response {
    let shell = Shell::of(&viewer, &state);
    let period = match Period::read(&query, state.clock.now()) {
        Ok(period) => period,
        Err(err) => return page::error(Some(&shell), err),
    };
    if let Err(err) = crate::routes::require_auditor(
        &state,
        &viewer.caller,
        "download report",
        "download reports",
        "/ui/reports",
    )
    .await
    {
        return page::error(Some(&shell), err);
    }
    let catalog = state.catalog.get();
    let team = match query.team.trim() {
        "" => None,
        name if catalog.teams.contains_key(name) => Some((
            name.to_owned(),
            catalog
                .users
                .values()
                .filter(|user| user.teams.iter().any(|team| team == name))
                .map(|user| user.name.clone())
                .collect(),
        )),
        name => {
            return page::error(
                Some(&shell),
                ApiError::BadRequest(format!("unknown team `{name}`")),
            );
        }
    };
    let resource = match query.resource.trim() {
        "" => None,
        name if catalog.resources.contains_key(name) => Some(name.to_owned()),
        name => {
            return page::error(
                Some(&shell),
                ApiError::BadRequest(format!("unknown resource `{name}`")),
            );
        }
    };
    let range = latch_accesses::range(
        period.from,
        period.to,
        resource.as_deref(),
        team.as_ref()
            .map(|(_, members): &(String, BTreeSet<String>)| members),
        None,
    );
    let rows: Vec<latch_report::AccessRow> =
        match latch_accesses::read_all(&*state.store, &range).await {
            Ok(accesses) => accesses.into_iter().map(|summary| summary.row).collect(),
            Err(err) => return page::error(Some(&shell), err.into()),
        };
    let name = format!(
        "latch-access-{}-{}",
        Period::date(period.from),
        Period::date(period.to)
    );
    let title = format!("latch access report, {} to {}", period.from, period.to);
    let (body, content_type, extension) = match kind {
        ReportKind::Html => (
            latch_report::to_html(&rows, &title).into_bytes(),
            "text/html; charset=utf-8",
            "html",
        ),
        ReportKind::Csv => (
            latch_report::to_csv(&rows).into_bytes(),
            "text/csv; charset=utf-8",
            "csv",
        ),
        ReportKind::Pdf => (
            latch_report::to_pdf(&rows, &title),
            "application/pdf",
            "pdf",
        ),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    // The report is a standalone page with its own inline stylesheet and nothing else.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    response
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EvidenceQuery {
    #[serde(default)]
    period: String,
}

/// The evidence pack of a period as one tar archive (`latch-evidence-<period>/…`), made as
/// `latch evidence` makes it, after signing a checkpoint that covers the latest events. The
/// auditor unpacks it and runs `latch ledger verify --bundle DIR --key KEY`.
pub(crate) async fn evidence(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<EvidenceQuery>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    match evidence_tar(&state, &viewer, &query).await {
        Ok((label, tar)) => {
            let mut response = tar.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            );
            if let Ok(disposition) = HeaderValue::from_str(&format!(
                "attachment; filename=\"latch-evidence-{label}.tar\""
            )) {
                headers.insert(header::CONTENT_DISPOSITION, disposition);
            }
            response
        }
        Err(err) => page::error(Some(&shell), err),
    }
}

async fn evidence_tar(
    state: &AppState,
    viewer: &Viewer,
    query: &EvidenceQuery,
) -> Result<(String, Vec<u8>), ApiError> {
    crate::routes::require_auditor(
        state,
        &viewer.caller,
        "download evidence",
        "download evidence packs",
        "/ui/evidence",
    )
    .await?;
    let period = latch_evidence::Period::parse(query.period.trim())
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    state
        .ledger
        .checkpoint()
        .await
        .map_err(|err| ApiError::Unavailable(format!("cannot sign a checkpoint: {err}")))?;
    let policy = crate::review::read_policy_files(&state.policy_files)
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    let pack = crate::review::make_pack(
        &*state.store,
        &state.ledger,
        &period,
        &policy,
        state.clock.now(),
    )
    .await
    .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    let root = format!("latch-evidence-{}", period.label);
    let tar = tar_of(&root, &pack.files)
        .map_err(|err| ApiError::Internal(format!("cannot archive the pack: {err}")))?;
    Ok((period.label, tar))
}

/// The pack's files under `root/`, in a tar archive with fixed times and modes, so the same
/// pack is the same archive.
fn tar_of(
    root: &str,
    files: &std::collections::BTreeMap<String, Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        builder.append_data(&mut header, format!("{root}/{path}"), bytes.as_slice())?;
    }
    builder.into_inner()
}
