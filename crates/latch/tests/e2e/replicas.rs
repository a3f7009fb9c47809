//! Two `latch serve` replicas on one PostgreSQL store: what one records, the other acts on.

use std::time::{Duration, Instant};

use super::*;

impl Server {
    /// A second server on this one's PostgreSQL database and data directory (so the same
    /// ledger key and gateway certificate), with ports of its own; it owns no database.
    fn replica(&self) -> Self {
        let url = self
            .database
            .as_ref()
            .map(|db| db.url.clone())
            .expect("replicas share a PostgreSQL store");
        let text =
            config_text(&self.dir.path().join("data"), Some(&url)) + "\n[audit]\nenabled = false\n";
        Self::spawn(tempfile::tempdir().unwrap(), text, None)
    }
}

/// A revocation made through one replica ends a session running through the other's gateway.
#[test]
fn a_revocation_on_one_replica_ends_sessions_on_another() {
    let first = Server::start_with(Some(PgDatabase::create()));
    let second = first.replica();
    let alice = first.token("alice");
    let bob = first.token("bob");
    let request = granted(&first, &alice, &bob, "read", "30m");
    let session = spawn_connect(&second, &alice, &["-c", "select pg_sleep(30)"]);
    wait_until(
        "the session is open on the second replica",
        Duration::from_secs(10),
        || {
            sessions_json(&second, &bob)
                .iter()
                .any(|s| s.ended_at.is_none())
        },
    );
    let grant = request.id.replacen("req_", "grt_", 1);
    let revoked = Instant::now();
    first
        .run_as(&bob, &["revoke", &grant, "--reason", "done early"])
        .success();
    let out = session.wait_with_output().unwrap();
    let took = revoked.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the session must be cut: {stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");
    assert!(
        took < Duration::from_secs(3),
        "cut {took:?} after the revocation"
    );
    wait_until(
        "the cut session is recorded",
        Duration::from_secs(10),
        || {
            sessions_json(&first, &bob)
                .iter()
                .any(|s| s.end_reason.as_deref() == Some("grant_revoked"))
        },
    );
}
