//! API tests: every endpoint's success, refusal and bad input, through the real router with a
//! real store (SQLite by default; the lifecycle walk also on PostgreSQL) and a fake clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod analytics;
mod api;
mod ledger;
mod reviews;
mod sink;
mod slack;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use latch_core::Actor;
use latch_server::AppState;
use latch_store::{Store, TokenRecord};

use latch_testkit::{Backend, FakeClock, T0, TestStore, sample_catalog};
use serde_json::Value;
use tower::ServiceExt;

/// A router over a throwaway store, with a token per sample user.
pub struct TestApi {
    pub store: Arc<TestStore>,
    pub clock: Arc<FakeClock>,
    pub state: AppState,
    tokens: BTreeMap<String, String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApi {
    pub async fn new(backend: Backend) -> Self {
        let store = Arc::new(TestStore::new(backend).await);
        let clock = FakeClock::new(T0);
        let catalog = Arc::new(sample_catalog());
        let mut tokens = BTreeMap::new();
        for user in catalog.users.keys() {
            let token = latch_server::auth::new_token();
            let record = TokenRecord {
                id: token.id.clone(),
                user: user.clone(),
                label: None,
                created_at: T0,
                revoked_at: None,
            };
            store
                .create_token(&record, &token.secret_hash, Actor::System, &*clock)
                .await
                .unwrap();
            tokens.insert(user.clone(), token.secret);
        }
        let key = latch_ledger::SigningKey::from_seed("latch.test/audit", [7; 32]).unwrap();
        let state = AppState::new(store.store.clone(), catalog, clock.clone(), key);
        Self {
            store,
            clock,
            state,
            tokens,
        }
    }

    pub fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    /// Calls the API as `user` (`None`: without a token).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            request = request.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token(user)),
            );
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = latch_server::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// alice asks for `read` for `duration`; returns the request id.
    pub async fn request_read(&self, duration: &str) -> String {
        let reply = self
            .call("POST", "/api/v1/requests", Some("alice"), Some(serde_json::json!({
                "resource": "payments-db", "role": "read", "duration": duration, "reason": "INC-1: stuck job", "ticket": "INC-1"
            })))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// bob approves request `id`; returns the request as the API answers it.
    pub async fn approve(&self, id: &str) -> serde_json::Value {
        let reply = self
            .call(
                "POST",
                &format!("/api/v1/requests/{id}/approve"),
                Some("bob"),
                Some(serde_json::json!({})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }

    /// alice asks for `read` for `duration` and bob approves; returns the grant id.
    pub async fn granted_read(&self, duration: &str) -> String {
        let id = self.request_read(duration).await;
        let request = self.approve(&id).await;
        request["grant"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn event_types(&self) -> Vec<String> {
        self.store
            .events(0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|entry| entry.event.event.kind.type_name().to_owned())
            .collect()
    }
}
