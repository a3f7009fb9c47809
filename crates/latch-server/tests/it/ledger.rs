//! The ledger endpoints: checkpoints signed over the events, proofs a third party can check
//! with only the public key.

use axum::http::StatusCode;
use latch_ledger::{Hash, VerifierKey};
use latch_store::Store;
use latch_testkit::Backend;

use crate::TestApi;

fn hash(hex: &serde_json::Value) -> Hash {
    let hex = hex.as_str().unwrap();
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    Hash::from_slice(&bytes).unwrap()
}

fn hashes(list: &serde_json::Value) -> Vec<Hash> {
    list.as_array().unwrap().iter().map(hash).collect()
}

#[tokio::test]
async fn checkpoints_and_proofs_verify_with_only_the_public_key() {
    let api = TestApi::new(Backend::Sqlite).await;
    let key = api
        .call("GET", "/api/v1/ledger/public-key", None, None)
        .await;
    assert_eq!(key.status, StatusCode::OK);
    let verifier = VerifierKey::parse(key.body["verifier_key"].as_str().unwrap()).unwrap();
    assert_eq!(key.body["origin"], "latch.test/audit");

    api.request_read("1h").await;
    let first = api
        .call("POST", "/api/v1/ledger/checkpoint", Some("dave"), None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let opened = latch_ledger::open(first.body["note"].as_str().unwrap(), &verifier).unwrap();
    assert_eq!(opened.size, first.body["size"].as_u64().unwrap());
    assert_eq!(opened.root, hash(&first.body["root"]));
    let size1 = opened.size;

    api.request_read("2h").await;
    api.request_read("3h").await;
    let second = api
        .call("POST", "/api/v1/ledger/checkpoint", Some("erin"), None)
        .await;
    let size2 = second.body["size"].as_u64().unwrap();
    assert_eq!(size2, size1 + 2);
    let again = api
        .call("POST", "/api/v1/ledger/checkpoint", Some("erin"), None)
        .await;
    assert_eq!(
        again.body["size"].as_u64(),
        Some(size2),
        "nothing new, no new checkpoint"
    );

    // Every event is provably in the latest checkpoint.
    for seq in 1..=size2 {
        let proof = api
            .call(
                "GET",
                &format!("/api/v1/ledger/inclusion?seq={seq}"),
                Some("dave"),
                None,
            )
            .await;
        assert_eq!(proof.status, StatusCode::OK, "{:?}", proof.body);
        let body = proof.body["body"].as_str().unwrap();
        let leaf = latch_ledger::leaf_hash(body.as_bytes());
        let checkpoint = latch_ledger::open(
            proof.body["checkpoint"]["note"].as_str().unwrap(),
            &verifier,
        )
        .unwrap();
        latch_ledger::verify_inclusion(
            seq - 1,
            checkpoint.size,
            &leaf,
            &hashes(&proof.body["proof"]),
            &checkpoint.root,
        )
        .unwrap();
    }
    // And the second checkpoint extends the first.
    let consistency = api
        .call(
            "GET",
            &format!("/api/v1/ledger/consistency?from={size1}"),
            Some("dave"),
            None,
        )
        .await;
    assert_eq!(consistency.status, StatusCode::OK, "{:?}", consistency.body);
    let from = latch_ledger::open(
        consistency.body["from"]["note"].as_str().unwrap(),
        &verifier,
    )
    .unwrap();
    let to =
        latch_ledger::open(consistency.body["to"]["note"].as_str().unwrap(), &verifier).unwrap();
    latch_ledger::verify_consistency(
        from.size,
        to.size,
        &hashes(&consistency.body["proof"]),
        &from.root,
        &to.root,
    )
    .unwrap();

    let beyond = api
        .call(
            "GET",
            &format!("/api/v1/ledger/inclusion?seq={}", size2 + 5),
            Some("dave"),
            None,
        )
        .await;
    assert_eq!(beyond.status, StatusCode::BAD_REQUEST);
    let unknown = api
        .call(
            "GET",
            "/api/v1/ledger/checkpoint?size=999",
            Some("dave"),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let backwards = api
        .call(
            "GET",
            &format!("/api/v1/ledger/consistency?from={size2}&to={size1}"),
            Some("dave"),
            None,
        )
        .await;
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
    let requester = api
        .call("GET", "/api/v1/ledger/checkpoint", Some("alice"), None)
        .await;
    assert_eq!(requester.status, StatusCode::FORBIDDEN);
}

/// A restarted server resumes the tree from its stored nodes and keeps it consistent.
#[tokio::test]
async fn a_restart_resumes_the_tree_from_stored_nodes() {
    let api = TestApi::new(Backend::Sqlite).await;
    api.request_read("1h").await;
    let first = api.state.ledger.checkpoint().await.unwrap().unwrap();
    let key = latch_ledger::SigningKey::from_seed("latch.test/audit", [7; 32]).unwrap();
    let restarted =
        latch_server::ledger::Ledger::new(api.store.store.clone(), key.clone(), api.clock.clone());
    api.request_read("2h").await;
    api.request_read("3h").await;
    let second = restarted.checkpoint().await.unwrap().unwrap();
    assert_eq!(second.size, first.size + 2);
    let proof = restarted
        .consistency_proof(first.size, second.size)
        .await
        .unwrap();
    latch_ledger::verify_consistency(first.size, second.size, &proof, &first.root, &second.root)
        .unwrap();
    let leaves = api.store.leaf_hashes(0, second.size).await.unwrap();
    assert_eq!(second.root, latch_ledger::root(&leaves));
    for index in 0..second.size {
        let (leaf, path) = restarted.inclusion_proof(index, second.size).await.unwrap();
        latch_ledger::verify_inclusion(index, second.size, &leaf, &path, &second.root).unwrap();
    }
}

#[tokio::test]
async fn an_empty_ledger_has_no_checkpoint() {
    let api = TestApi::new(Backend::Sqlite).await;
    // The tokens made for the test are events already; a fresh store has none.
    let store = latch_testkit::TestStore::new(Backend::Sqlite).await;
    let ledger = latch_server::ledger::Ledger::new(
        store.store.clone(),
        latch_ledger::SigningKey::from_seed("x", [1; 32]).unwrap(),
        api.clock.clone(),
    );
    assert!(ledger.checkpoint().await.unwrap().is_none());
}

/// Proofs in trees large enough that some of their hashes are stored subtree roots and some are
/// folded from leaves, across checkpoints signed by a checkpointer that restarted in between
/// (so the tree's right border is read back from the store).
async fn proofs_span_stored_and_folded_levels(backend: Backend) {
    use latch_core::{Event, EventKind};
    use latch_server::ledger::Ledger;

    let store = latch_testkit::TestStore::new(backend).await;
    let shared: std::sync::Arc<dyn Store> = store.store.clone();
    let key = latch_ledger::SigningKey::from_seed("latch.test/audit", [7; 32]).unwrap();
    let clock = latch_testkit::FakeClock::new(latch_testkit::T0);
    let append = |from: u64, to: u64| {
        let events = (from..to)
            .map(|i| Event {
                at: latch_testkit::T0,
                actor: latch_core::Actor::System,
                subject: format!("s{i}"),
                kind: EventKind::AccessRefused {
                    action: "connect".into(),
                    reason: format!("test {i}"),
                },
            })
            .collect();
        store.append_session_events(events)
    };

    let mut sizes = Vec::new();
    let mut ledger = Ledger::new(shared.clone(), key.clone(), clock.clone());
    for (i, end) in [37_u64, 100, 101, 160, 293].into_iter().enumerate() {
        append(sizes.last().copied().unwrap_or(0), end)
            .await
            .unwrap();
        if i == 2 {
            // A restart: the new checkpointer starts from the stored nodes.
            ledger = Ledger::new(shared.clone(), key.clone(), clock.clone());
        }
        let checkpoint = ledger.checkpoint().await.unwrap().unwrap();
        assert_eq!(checkpoint.size, end);
        sizes.push(end);
    }
    let leaves = store.leaf_hashes(0, 293).await.unwrap();
    for &size in &sizes {
        let checkpoint = ledger.find_checkpoint(Some(size)).await.unwrap().unwrap();
        let n = usize::try_from(size).unwrap();
        assert_eq!(checkpoint.root, latch_ledger::root(&leaves[..n]));
        for index in 0..size {
            let (leaf, proof) = ledger.inclusion_proof(index, size).await.unwrap();
            assert_eq!(leaf, leaves[usize::try_from(index).unwrap()]);
            latch_ledger::verify_inclusion(index, size, &leaf, &proof, &checkpoint.root)
                .unwrap_or_else(|e| panic!("leaf {index} in {size}: {e}"));
        }
        for &earlier in sizes.iter().filter(|&&s| s < size) {
            let from = ledger
                .find_checkpoint(Some(earlier))
                .await
                .unwrap()
                .unwrap();
            let proof = ledger.consistency_proof(earlier, size).await.unwrap();
            latch_ledger::verify_consistency(earlier, size, &proof, &from.root, &checkpoint.root)
                .unwrap_or_else(|e| panic!("{earlier} to {size}: {e}"));
        }
    }
}

#[tokio::test]
async fn proofs_span_stored_and_folded_levels_sqlite() {
    proofs_span_stored_and_folded_levels(Backend::Sqlite).await;
}

#[tokio::test]
async fn proofs_span_stored_and_folded_levels_postgres() {
    proofs_span_stored_and_folded_levels(Backend::Postgres).await;
}
