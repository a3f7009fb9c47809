//! Calls to `/api/v1`: one place that turns every way a call can go wrong (no server, a
//! timeout, an `ErrorBody`, an answer that is not latch's) into a message for the user.

use std::time::Duration;

use latch_api::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::target::Target;
use crate::exit::Failed;

/// How long one call may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one server with one token. No `Debug`: it holds a secret.
pub struct Api {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Api {
    pub fn new(target: &Target) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("latch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            server: target.server().to_owned(),
            token: target.token().to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{path}", self.server)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(path)).query(query)).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(path))).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        // `bearer_auth` marks the header sensitive, so it stays out of debug output.
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|err| {
                Failed(format!(
                    "unexpected answer from `{}`: {err}: is it a latch server of this version?",
                    self.server
                ))
                .into()
            });
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => Err(Failed(printable(&error.message)).into()),
            Err(_) => Err(Failed(format!(
                "`{}` answered {status} without a latch error: is it a latch server?",
                self.server
            ))
            .into()),
        }
    }

    fn transport_error(&self, err: &reqwest::Error) -> anyhow::Error {
        let server = &self.server;
        let message = if err.is_timeout() {
            format!(
                "the latch server at `{server}` did not answer within {}s",
                TIMEOUT.as_secs()
            )
        } else if err.is_connect() {
            let cause = if refused(err) {
                "connection refused".to_owned()
            } else {
                root_cause(err)
            };
            format!(
                "cannot connect to the latch server at `{server}` ({cause}): start one with `latch serve --config FILE`, or point `--server` or LATCH_SERVER at a running one"
            )
        } else {
            format!(
                "call to the latch server at `{server}` failed: {}",
                root_cause(err)
            )
        };
        Failed(message).into()
    }
}

fn refused(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = current.source();
    }
    false
}

fn root_cause(err: &reqwest::Error) -> String {
    let mut current: &dyn std::error::Error = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Ids latch hands out are `req_…`/`grt_…` and letters and digits. Anything else names nothing,
/// and must not reach the URL path (`..`, `/`, `?`).
pub fn check_id<'a>(id: &'a str, what: &str) -> Result<&'a str, Failed> {
    if !id.is_empty()
        && id.len() <= 100
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(id)
    } else {
        let prefix = match what {
            "grant" => "grt",
            "session" => "ses",
            "finding" => "fnd",
            _ => "req",
        };
        Err(Failed(format!(
            "no {what} `{}`: ids look like `{prefix}_01…`",
            printable(&id.chars().take(80).collect::<String>())
        )))
    }
}

/// Text from elsewhere, safe for a terminal: control characters become `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_cannot_exist_are_refused_before_any_call() {
        assert_eq!(
            check_id("req_01abc", "request").map_err(|e| e.0),
            Ok("req_01abc")
        );
        assert_eq!(
            check_id("../whoami", "request").map_err(|e| e.0),
            Err("no request `../whoami`: ids look like `req_01…`".to_owned())
        );
        assert_eq!(
            check_id("grt\u{1b}[2J", "grant").map_err(|e| e.0),
            Err("no grant `grt?[2J`: ids look like `grt_01…`".to_owned())
        );
    }
}
