//! Scheduled reviews: `latch serve` with `[reviews]` writes the last closed quarter's pack and
//! lists its review as pending; the owner team's lead records the outcome with the CLI, which
//! anyone else is refused.

use std::time::Duration;

use latch_core::time::{Clock, SystemClock};

use super::{Server, wait_until};

#[test]
fn an_owner_records_the_review_of_a_closed_quarter() {
    let server = Server::start_configured(None, |_| {
        "\n[audit]\nenabled = false\n\n[reviews]\nschedule = \"quarterly\"\n".to_owned()
    });
    let period = latch_evidence::Schedule::Quarterly
        .last_closed(SystemClock.now())
        .unwrap()
        .label;
    let dave = server.token("dave");
    let bob = server.token("bob");
    let alice = server.token("alice");

    // The review task writes the closed quarter's pack beside the config (`out_dir` defaults
    // to `reviews`) and records that its review is due.
    let pack = server.dir.path().join("reviews").join(&period);
    let reviews = |token: &str| -> Vec<latch_api::ReviewView> {
        server
            .run_as(token, &["reviews", "--period", &period, "--output", "json"])
            .success()
            .json()
    };
    wait_until(
        "the closed quarter's review is due",
        Duration::from_secs(20),
        || !reviews(&dave).is_empty(),
    );
    assert!(pack.join("manifest.json").is_file(), "{}", pack.display());
    let due = reviews(&dave);
    assert_eq!(due.len(), 1, "{due:#?}");
    assert_eq!(due[0].resource, "payments-db");
    assert_eq!(due[0].status, "pending");
    assert_eq!(due[0].pack_dir.as_deref(), pack.to_str());

    // alice is in the owner team but does not lead it.
    server
        .run_as(
            &alice,
            &[
                "review",
                "record",
                "--period",
                &period,
                "--resource",
                "payments-db",
                "--outcome",
                "approved",
                "--comment",
                "looks fine to me",
            ],
        )
        .fails(1, "may not record the review of `payments-db`");

    // bob leads it.
    let run = server
        .run_as(
            &bob,
            &[
                "review",
                "record",
                "--period",
                &period,
                "--resource",
                "payments-db",
                "--outcome",
                "changes-needed",
                "--comment",
                "alice's write access is no longer needed",
            ],
        )
        .success();
    assert!(
        run.stdout.starts_with(&format!(
            "review of payments-db for {period} recorded: changes_needed (ledger event "
        )),
        "{run:#?}"
    );

    let reviewed = reviews(&bob);
    assert_eq!(reviewed[0].status, "changes_needed");
    let outcome = &reviewed[0].outcomes[0];
    assert_eq!(outcome.reviewer, "user:bob");
    assert_eq!(outcome.comment, "alice's write access is no longer needed");

    // The table for people names the reviewer and the outcome.
    let table = server
        .run_as(&dave, &["reviews", "--period", &period])
        .success();
    assert!(table.stdout.contains("changes_needed"), "{table:#?}");
    assert!(table.stdout.contains("bob"), "{table:#?}");
}
