//! `latch analytics`: read offline from the store of a running server, as text and JSON, with
//! its filters and their mistakes.

use super::{Server, granted, latch};

#[test]
fn analytics_summarise_the_store_offline() {
    let server = Server::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let request = granted(&server, &alice, &bob, "read", "30m");
    let config = server.config.to_str().unwrap();

    let text = latch(&server.home(), &[], &["analytics", "--config", config])
        .success()
        .stdout;
    assert!(
        text.starts_with("latch analytics: requests created from"),
        "{text}"
    );
    assert!(
        text.contains("requests          1: 1 approved (100.0%)"),
        "{text}"
    );
    assert!(text.contains("top approvers     bob 1"), "{text}");
    assert!(text.contains("recommendations:"), "{text}");

    let run = latch(
        &server.home(),
        &[],
        &[
            "analytics",
            "--config",
            config,
            "--format",
            "json",
            "--team",
            "payments",
        ],
    )
    .success();
    let json: serde_json::Value = run.json();
    assert_eq!(json["requests"], 1);
    assert_eq!(json["team"], "payments");
    assert_eq!(json["grants"][0]["request_id"], request.id.as_str());
    assert_eq!(json["approvers"][0]["approver"], "bob");

    let none: serde_json::Value = latch(
        &server.home(),
        &[],
        &[
            "analytics",
            "--config",
            config,
            "--format",
            "json",
            "--approver",
            "carol",
        ],
    )
    .success()
    .json();
    assert_eq!(none["requests"], 0);

    latch(
        &server.home(),
        &[],
        &["analytics", "--config", config, "--team", "nope"],
    )
    .fails(1, "unknown team `nope`");
    latch(
        &server.home(),
        &[],
        &["analytics", "--config", config, "--from", "yesterday"],
    )
    .fails(2, "not a time");
}
