//! The reviews page: the periods whose review is due and the outcomes recorded, as
//! `GET /api/v1/reviews` shows them to the viewer (auditors and admins all, owner teams' leads
//! their resources), and for each resource the viewer may review a form that records the
//! outcome through `POST /api/v1/reviews`'s own handler.

use axum::Json;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use latch_api::{RecordReviewBody, ReviewView};
use maud::html;
use serde::Deserialize;

use super::page::{self, Nav, Shell};
use super::session::Viewer;
use super::url_encode;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReviewsQuery {
    ok: Option<String>,
}

/// An outcome as the form offers it, with the words people read.
const OUTCOMES: [(&str, &str); 2] = [
    ("approved", "Approved"),
    ("changes_needed", "Changes needed"),
];

fn outcome_label(outcome: &str) -> &str {
    if outcome == "pending" {
        return "Pending";
    }
    OUTCOMES
        .iter()
        .find(|(value, _)| *value == outcome)
        .map_or(outcome, |(_, label)| label)
}

pub(crate) async fn reviews(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<ReviewsQuery>,
) -> Response {
    let shell = Shell::of(&viewer, &state);
    // The API's own query type (every period), so that its checks and visibility apply.
    let api_query: crate::review::ListReviewsQuery =
        match serde_json::from_value(serde_json::json!({})) {
            Ok(q) => q,
            Err(err) => return page::error(Some(&shell), ApiError::Internal(err.to_string())),
        };
    let list = match crate::review::list_reviews(
        State(state.clone()),
        viewer.caller.clone(),
        ApiQuery(api_query),
    )
    .await
    {
        Ok(Json(list)) => list,
        Err(err) => return page::error(Some(&shell), err),
    };
    // Which forms to offer: the API decides again when one is sent.
    let catalog = state.catalog.get();
    let admin = viewer.caller.is_admin(&catalog);
    let may_record = |review: &ReviewView| {
        review.due_at.is_some()
            && review
                .owner_team
                .as_deref()
                .is_some_and(|team| admin || catalog.leads_team(&viewer.caller.user, team))
    };
    let sees_everything = shell.sees_everything;
    let csrf = viewer.csrf.as_str();
    let body = html! {
        h1 { "Reviews" }
        (page::notice(query.ok.as_deref()))
        p.lead {
            "When a review period closes, latch writes its evidence pack and asks the leads of each "
            "resource's owner team to review the period's access. Each outcome is a ledger event, "
            "and a pack made after it (" code { "latch evidence --period" } ") carries it in "
            code { "reviews.csv" } "."
        }
        @if list.reviews.is_empty() {
            p.empty { "No review is due, and none was recorded." }
        }
        @for review in &list.reviews {
            @let key = format!("{}-{}", review.period, review.resource);
            @let heading = format!("review-{key}");
            article.card aria-labelledby=(heading) {
                h2 #(heading) {
                    (review.resource) ", " (review.period) " "
                    span class={ "state " (review.status) } { (outcome_label(&review.status)) }
                }
                dl.facts {
                    dt { "Owner team" } dd { (review.owner_team.as_deref().unwrap_or("–")) }
                    dt { "Due since" } dd {
                        @match &review.due_at {
                            Some(at) => { (at) }
                            None => { span.muted { "not scheduled (recorded directly)" } }
                        }
                    }
                    @if sees_everything {
                        dt { "Evidence pack" } dd {
                            a href={ "/ui/evidence.tar?period=" (url_encode(&review.period)) } {
                                "Download " (review.period) "'s pack"
                            }
                            " (made now, with the outcomes recorded so far)"
                        }
                    }
                }
                @if !review.outcomes.is_empty() {
                    h3 { "Outcomes" }
                    ol.outcomes {
                        @for outcome in &review.outcomes {
                            li {
                                strong { (outcome_label(&outcome.outcome)) }
                                " by " (outcome.reviewer) " at " (outcome.at) ": "
                                q { (outcome.comment) }
                            }
                        }
                    }
                }
                @if may_record(review) {
                    @let comment = format!("comment-{key}");
                    form.review method="post" action="/ui/reviews" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="period" value=(review.period);
                        input type="hidden" name="resource" value=(review.resource);
                        fieldset.outcome {
                            legend {
                                @if review.outcomes.is_empty() { "Your review of " } @else { "Record again: " }
                                (review.resource) " in " (review.period)
                            }
                            @for (value, label) in OUTCOMES {
                                @let id = format!("outcome-{key}-{value}");
                                span.choice {
                                    input #(id) type="radio" name="outcome" value=(value) required;
                                    label for=(id) { (label) }
                                }
                            }
                        }
                        label for=(comment) { "Comment" }
                        textarea #(comment) name="comment" rows="2" required maxlength="2000"
                            placeholder="what you checked, or what must change" {}
                        div.actions { button type="submit" { "Record review" } }
                    }
                }
            }
        }
    };
    page::layout(Some(&shell), Nav::Reviews, "Reviews", body).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    comment: String,
}

/// Records an outcome through the API's own handler: its permission check, refusal event and
/// ledger event.
pub(crate) async fn record(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<ReviewForm>,
) -> Response {
    if let Some(refused) = viewer.refuse_bad_csrf(&form.csrf) {
        return refused;
    }
    let body = ApiJson(RecordReviewBody {
        period: form.period,
        resource: form.resource,
        outcome: form.outcome,
        comment: form.comment,
    });
    match crate::review::record_review(State(state.clone()), viewer.caller.clone(), body).await {
        Ok(_) => Redirect::to("/ui/reviews?ok=reviewed").into_response(),
        Err(err) => page::error(Some(&Shell::of(&viewer, &state)), err),
    }
}
