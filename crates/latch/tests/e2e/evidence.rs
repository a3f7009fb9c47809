//! The evidence pack: made from the store after the server is stopped, verified offline with
//! nothing but the key, and every kind of tampering named.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Server, latch, wait_until};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A copy of the pack at `pack` with `file` edited by `edit`.
fn tampered(pack: &Path, name: &str, file: &str, edit: impl FnOnce(String) -> String) -> String {
    let copy = pack.parent().unwrap().join(name);
    copy_tree(pack, &copy);
    let path = copy.join(file);
    let before = std::fs::read_to_string(&path).unwrap();
    let after = edit(before.clone());
    assert_ne!(before, after, "the edit of {file} changed nothing");
    std::fs::write(&path, after).unwrap();
    copy.to_str().unwrap().to_owned()
}

#[test]
fn an_evidence_pack_verifies_offline_and_names_tampering() {
    // Audit checkpoints on: the weak reason becomes a finding, which the auditor resolves.
    let mut server = Server::start_configured(None, |_| String::new());
    let alice = server.token("alice");
    let bob = server.token("bob");
    let dave = server.token("dave");
    let request = server.pending_request(&alice, "test");
    server
        .run_as(&bob, &["approve", &request.id, "--comment", "looks fine"])
        .success();
    let findings = || -> Vec<latch_api::FindingView> {
        server
            .run_as(&dave, &["findings", "--output", "json"])
            .success()
            .json()
    };
    wait_until(
        "the weak reason is a finding",
        Duration::from_secs(10),
        || {
            findings()
                .iter()
                .any(|f| f.checkpoint == "justification.weak")
        },
    );
    let weak = findings()
        .into_iter()
        .find(|f| f.checkpoint == "justification.weak")
        .unwrap();
    server
        .run_as(
            &dave,
            &[
                "findings",
                "resolve",
                &weak.id,
                "--comment",
                "ticket INC-7 was in chat",
            ],
        )
        .success();
    server.run_as(&dave, &["ledger", "checkpoint"]).success();
    // Stopped the way an operator stops it: it signs a last checkpoint on the way out.
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_until("the server stops", Duration::from_secs(20), || {
        server.child.try_wait().unwrap().is_some()
    });
    server.kill();
    // A clean stop leaves the whole store in `latch.db`: the WAL is folded in and emptied.
    let wal = std::fs::metadata(server.data_dir().join("latch.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL kept {wal} bytes after a clean stop");

    let config = server.config_arg();
    let home = server.home();
    let key = latch(&home, &[], &["ledger", "public-key", "--config", &config])
        .success()
        .stdout
        .trim()
        .to_owned();
    let pack = server.dir.path().join("evidence").join("pack");
    let pack_arg = pack.to_str().unwrap();
    let made = latch(
        &home,
        &[],
        &[
            "evidence",
            "--config",
            &config,
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--out",
            pack_arg,
        ],
    )
    .success();
    assert!(
        made.stdout
            .contains("accesses: 1, findings: 1 (1 resolved)"),
        "{made:#?}"
    );
    assert!(made.stdout.contains(&format!("--key '{key}'")), "{made:#?}");

    // What the auditor reads.
    let csv = std::fs::read_to_string(pack.join("report.csv")).unwrap();
    let row = csv
        .split("\r\n")
        .find(|l| l.contains(&request.id))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        row.contains("alice") && row.contains("bob (looks fine)"),
        "{row}"
    );
    let findings_csv = std::fs::read_to_string(pack.join("findings.csv")).unwrap();
    assert!(
        findings_csv.contains("resolved by dave at") && findings_csv.contains("ticket INC-7"),
        "{findings_csv}"
    );
    let policy = std::fs::read_to_string(pack.join("policy/README.md")).unwrap();
    assert!(
        policy.contains("these are exactly the rules in force at the end of the period"),
        "{policy}"
    );
    assert!(pack.join("policy/files/default.cedar").is_file());
    let controls = std::fs::read_to_string(pack.join("controls.md")).unwrap();
    assert!(controls.contains("**CC6.1**") && controls.contains("**A.8.16**"));
    let readme = std::fs::read_to_string(pack.join("README.md")).unwrap();
    assert!(
        readme.contains("latch ledger verify --bundle . --key"),
        "{readme}"
    );

    let verify = |dir: &str| {
        latch(
            &home,
            &[],
            &["ledger", "verify", "--bundle", dir, "--key", &key],
        )
    };
    let ok = verify(pack_arg).success();
    for needle in [
        "evidence pack ok",
        "`ledger/checkpoint.txt`: signed by",
        "each canonical, at its own index",
        "rebuilt from those events",
        "the copied policy files hash to",
        "the SHA-256 of all",
    ] {
        assert!(ok.stdout.contains(needle), "`{needle}` in {ok:#?}");
    }

    // The pack is not overwritten.
    latch(
        &home,
        &[],
        &[
            "evidence", "--config", &config, "--period", "2026-Q3", "--out", pack_arg,
        ],
    )
    .fails(1, "exists and is not empty");
    latch(
        &home,
        &[],
        &[
            "evidence", "--config", &config, "--period", "2026-Q5", "--out", "x",
        ],
    )
    .fails(2, "`2026-Q5` is not a period");

    // One byte of a cited event: the approver's comment.
    let event = tampered(&pack, "event", "ledger/events.jsonl", |t| {
        t.replacen("looks fine", "looks fino", 1)
    });
    verify(&event).fails(1, "not in the signed checkpoint");

    // The report, edited to name another approver.
    let report = tampered(&pack, "report", "report.csv", |t| {
        t.replacen("bob (looks fine)", "carol (looks fine)", 1)
    });
    verify(&report).fails(
        1,
        "`report.csv` is not what the events in `ledger/events.jsonl` give: line 2",
    );

    // A proof removed.
    let proof = tampered(&pack, "proof", "ledger/proofs.jsonl", |t| {
        t.lines().skip(1).map(|l| format!("{l}\n")).collect()
    });
    verify(&proof).fails(1, "no inclusion proof in `ledger/proofs.jsonl`");
}
