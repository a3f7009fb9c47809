//! Slack interactivity: a click on Approve or Deny arrives as a form POST whose `payload` field
//! holds the JSON of a `block_actions` interaction. Verify the request first
//! ([`crate::verify_slack_request`]), then parse it here.

use serde::Deserialize;

use crate::render::slack::{APPROVE_ACTION, DENY_ACTION};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// A verified click, for the server to turn into a command. `slack_user` is Slack's user id
/// (`U…`): the server maps it to a latch user (never trusts the display name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackAction {
    pub slack_user: String,
    pub action: Decision,
    pub request_id: String,
    /// Where to post the replacement message ([`crate::render::slack::update`]); valid for 30
    /// minutes and five posts.
    pub response_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InteractionError {
    #[error("no `payload` field in the form body (expected a Slack interactivity request)")]
    NoPayload,
    #[error("the `payload` field is not the JSON of a Slack interaction: {0}")]
    Malformed(String),
    #[error("interaction type `{0}` is not handled (expected `block_actions`)")]
    UnexpectedType(String),
    #[error("the interaction carries no action")]
    NoAction,
    #[error("unknown action `{0}` (expected `{APPROVE_ACTION}req_…` or `{DENY_ACTION}req_…`)")]
    UnknownAction(String),
    #[error("action `{action_id}` carries value `{value}`, which names another request")]
    ValueMismatch { action_id: String, value: String },
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: User,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

/// Parses the raw `application/x-www-form-urlencoded` body of an interactivity request.
pub fn parse_slack_action(body: &[u8]) -> Result<SlackAction, InteractionError> {
    let payload = form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value.into_owned())
        .ok_or(InteractionError::NoPayload)?;
    let payload: Payload = serde_json::from_str(&payload)
        .map_err(|err| InteractionError::Malformed(err.to_string()))?;
    if payload.kind != "block_actions" {
        return Err(InteractionError::UnexpectedType(payload.kind));
    }
    let action = payload.actions.first().ok_or(InteractionError::NoAction)?;
    let (decision, request_id) = if let Some(id) = action.action_id.strip_prefix(APPROVE_ACTION) {
        (Decision::Approve, id)
    } else if let Some(id) = action.action_id.strip_prefix(DENY_ACTION) {
        (Decision::Deny, id)
    } else {
        return Err(InteractionError::UnknownAction(action.action_id.clone()));
    };
    if request_id.is_empty() {
        return Err(InteractionError::UnknownAction(action.action_id.clone()));
    }
    if let Some(value) = &action.value
        && value != request_id
    {
        return Err(InteractionError::ValueMismatch {
            action_id: action.action_id.clone(),
            value: value.clone(),
        });
    }
    let response_url = payload
        .response_url
        .ok_or_else(|| InteractionError::Malformed("missing field `response_url`".to_owned()))?;
    Ok(SlackAction {
        slack_user: payload.user.id,
        action: decision,
        request_id: request_id.to_owned(),
        response_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(payload: &str) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", payload)
            .finish()
            .into_bytes()
    }

    const CLICK: &str = r#"{"type":"block_actions","user":{"id":"U2CERLKJA","username":"bob","team_id":"T1DC2JH3J"},"team":{"id":"T1DC2JH3J"},"response_url":"https://hooks.slack.com/actions/T1DC2JH3J/1/abc","actions":[{"type":"button","block_id":"latch_decision","action_id":"latch_approve:req_01","value":"req_01","action_ts":"1531420618.000"}]}"#;

    #[test]
    fn parses_an_approve_click() {
        assert_eq!(
            parse_slack_action(&form(CLICK)),
            Ok(SlackAction {
                slack_user: "U2CERLKJA".into(),
                action: Decision::Approve,
                request_id: "req_01".into(),
                response_url: "https://hooks.slack.com/actions/T1DC2JH3J/1/abc".into(),
            })
        );
        let deny = CLICK.replace("latch_approve:", "latch_deny:");
        assert_eq!(
            parse_slack_action(&form(&deny)).map(|a| a.action),
            Ok(Decision::Deny)
        );
    }

    #[test]
    fn refuses_what_is_not_a_latch_click() {
        let cases = [
            parse_slack_action(b"token=x&user_id=U1"),
            parse_slack_action(&form("{not json")),
            parse_slack_action(&form(&CLICK.replace("block_actions", "view_submission"))),
            parse_slack_action(&form(&CLICK.replace("latch_approve:req_01", "other"))),
            parse_slack_action(&form(&CLICK.replace("latch_approve:req_01", "latch_approve:"))),
            parse_slack_action(&form(&CLICK.replace("\"value\":\"req_01\"", "\"value\":\"req_02\""))),
            parse_slack_action(&form(&CLICK.replace(
                r#""actions":[{"type":"button","block_id":"latch_decision","action_id":"latch_approve:req_01","value":"req_01","action_ts":"1531420618.000"}]"#,
                r#""actions":[]"#,
            ))),
        ];
        let text: Vec<String> = cases
            .into_iter()
            .map(|result| match result {
                Ok(action) => format!("ok {action:?}"),
                Err(err) => err.to_string(),
            })
            .collect();
        expect_test::expect![[r#"
            no `payload` field in the form body (expected a Slack interactivity request)
            the `payload` field is not the JSON of a Slack interaction: key must be a string at line 1 column 2
            interaction type `view_submission` is not handled (expected `block_actions`)
            unknown action `other` (expected `latch_approve:req_…` or `latch_deny:req_…`)
            unknown action `latch_approve:` (expected `latch_approve:req_…` or `latch_deny:req_…`)
            action `latch_approve:req_01` carries value `req_02`, which names another request
            the interaction carries no action"#]].assert_eq(&text.join("\n"));
    }
}
