//! The offline check of a pack: the checkpoint's signature, each event's leaf and inclusion
//! proof, the events the documents (report, findings, policy sets, reviews) cite, the documents derived again from the events, and the
//! manifest's digests. The first problem is returned, naming the file or event.

use std::collections::{BTreeMap, BTreeSet};

use latch_core::StoredEvent;
use latch_ledger::{Hash, VerifierKey};
use serde_json::Value;

use crate::{Manifest, files, plan, policy_hash, sha256_hex};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("`{0}` is missing from the pack")]
    Missing(String),
    #[error("`{file}`: {message}")]
    Malformed { file: String, message: String },
    #[error("`{file}` does not verify with the key `{key}`: {message}")]
    Checkpoint {
        file: String,
        key: String,
        message: String,
    },
    #[error("`{file}`: event {seq} (index {index}): {message}")]
    Event {
        file: String,
        seq: u64,
        index: u64,
        message: String,
    },
    #[error("`{file}` cites event {seq} ({what}), which is not in `{events}`", events = files::EVENTS)]
    Uncited {
        file: String,
        seq: u64,
        what: String,
    },
    #[error(
        "`{file}` is not what the events in `{events}` give: line {line} is `{found}`, expected `{expected}`",
        events = files::EVENTS
    )]
    Derived {
        file: String,
        line: usize,
        found: String,
        expected: String,
    },
    #[error(
        "`{0}` does not match its SHA-256 in `{manifest}`: it was changed after the pack was made",
        manifest = files::MANIFEST
    )]
    Digest(String),
    #[error("`{0}` is not listed in `{manifest}`: it was added after the pack was made", manifest = files::MANIFEST)]
    Unlisted(String),
}

fn text<'a>(files: &'a BTreeMap<String, Vec<u8>>, name: &str) -> Result<&'a str, VerifyError> {
    let bytes = files
        .get(name)
        .ok_or_else(|| VerifyError::Missing(name.to_owned()))?;
    std::str::from_utf8(bytes).map_err(|_| VerifyError::Malformed {
        file: name.to_owned(),
        message: "not UTF-8".into(),
    })
}

fn malformed(file: &str, line: usize, message: impl std::fmt::Display) -> VerifyError {
    VerifyError::Malformed {
        file: file.to_owned(),
        message: format!("line {line}: {message}"),
    }
}

/// `{"index": N, …}` lines of a `.jsonl` file, with their line numbers.
fn json_lines(text: &str, file: &str) -> Result<Vec<(usize, u64, Value)>, VerifyError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let value: Value =
                serde_json::from_str(line).map_err(|err| malformed(file, i + 1, err))?;
            let index = value
                .get("index")
                .and_then(Value::as_u64)
                .ok_or_else(|| malformed(file, i + 1, "no `index`"))?;
            Ok((i + 1, index, value))
        })
        .collect()
}

fn parse_hash(hex_text: &str) -> Option<Hash> {
    let bytes = hex::decode(hex_text).ok()?;
    Hash::from_slice(&bytes).ok()
}

/// The events a document cites, with what cites them: `(seq, what)`.
fn citations(files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<(String, u64, String)>, VerifyError> {
    let mut out = Vec::new();
    let parse = |name: &str| -> Result<Value, VerifyError> {
        serde_json::from_str(text(files, name)?).map_err(|err| VerifyError::Malformed {
            file: name.to_owned(),
            message: format!("not JSON: {err}"),
        })
    };
    let seqs = |value: Option<&Value>| -> Vec<u64> {
        value
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    let report = parse(files::REPORT_JSON)?;
    for row in report
        .get("accesses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = row.get("request_id").and_then(Value::as_str).unwrap_or("?");
        for seq in seqs(row.get("events")) {
            out.push((files::REPORT_JSON.to_owned(), seq, format!("access {id}")));
        }
    }
    let findings = parse(files::FINDINGS_JSON)?;
    for finding in findings.as_array().into_iter().flatten() {
        let id = finding.get("id").and_then(Value::as_str).unwrap_or("?");
        for seq in seqs(finding.get("events"))
            .into_iter()
            .chain(seqs(finding.get("evidence")))
        {
            out.push((
                files::FINDINGS_JSON.to_owned(),
                seq,
                format!("finding {id}"),
            ));
        }
    }
    let policies = parse(files::POLICY_SETS)?;
    for set in policies.as_array().into_iter().flatten() {
        if let Some(seq) = set.get("event").and_then(Value::as_u64) {
            out.push((
                files::POLICY_SETS.to_owned(),
                seq,
                "a policy set".to_owned(),
            ));
        }
    }
    let reviews = parse(files::REVIEWS_JSON)?;
    for due in reviews
        .get("due")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let period = due.get("period").and_then(Value::as_str).unwrap_or("?");
        if let Some(seq) = due.get("event").and_then(Value::as_u64) {
            out.push((
                files::REVIEWS_JSON.to_owned(),
                seq,
                format!("the review of {period} due"),
            ));
        }
    }
    for review in reviews
        .get("reviews")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let period = review.get("period").and_then(Value::as_str).unwrap_or("?");
        let resource = review
            .get("resource")
            .and_then(Value::as_str)
            .unwrap_or("?");
        for outcome in review
            .get("outcomes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(seq) = outcome.get("event").and_then(Value::as_u64) {
                out.push((
                    files::REVIEWS_JSON.to_owned(),
                    seq,
                    format!("the review of {resource} for {period}"),
                ));
            }
        }
    }
    Ok(out)
}

/// The first line where `found` and `expected` differ (1-based), with both lines.
fn first_difference(found: &str, expected: &str) -> (usize, String, String) {
    let mut found_lines = found.split('\n');
    let mut expected_lines = expected.split('\n');
    let mut line = 1;
    loop {
        match (found_lines.next(), expected_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                let show = |l: Option<&str>| {
                    let l = l.unwrap_or("(end of file)").trim_end_matches('\r');
                    if l.chars().count() > 120 {
                        format!("{}…", l.chars().take(120).collect::<String>())
                    } else {
                        l.to_owned()
                    }
                };
                return (line, show(a), show(b));
            }
        }
    }
}

/// Checks the pack's `files` (path in the pack → bytes) with `key`; on success, the checks made,
/// one line each, for the user to read.
pub fn verify(
    files: &BTreeMap<String, Vec<u8>>,
    key: &VerifierKey,
) -> Result<Vec<String>, VerifyError> {
    let manifest = Manifest::parse(text(files, files::MANIFEST)?).map_err(|message| {
        VerifyError::Malformed {
            file: files::MANIFEST.to_owned(),
            message,
        }
    })?;
    let mut checked = Vec::new();

    // The checkpoint: signed by the key the auditor trusts, of the size the manifest names.
    let note = text(files, files::CHECKPOINT)?;
    let checkpoint = latch_ledger::open(note, key).map_err(|err| VerifyError::Checkpoint {
        file: files::CHECKPOINT.to_owned(),
        key: key.to_string(),
        message: err.to_string(),
    })?;
    if checkpoint.size != manifest.checkpoint_size {
        return Err(VerifyError::Malformed {
            file: files::MANIFEST.to_owned(),
            message: format!(
                "it names the checkpoint of size {}, but `{}` is of size {}",
                manifest.checkpoint_size,
                files::CHECKPOINT,
                checkpoint.size
            ),
        });
    }
    checked.push(format!(
        "`{}`: signed by `{key}`, tree size {}, root {}",
        files::CHECKPOINT,
        checkpoint.size,
        checkpoint.root
    ));

    // Every event: canonical, at its own index, in the signed tree.
    let mut proofs: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    for (line, index, value) in json_lines(text(files, files::PROOFS)?, files::PROOFS)? {
        let hashes = value
            .get("proof")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(files::PROOFS, line, "no `proof` list"))?
            .iter()
            .map(|h| h.as_str().and_then(parse_hash))
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| malformed(files::PROOFS, line, "a proof hash is not 64 hex digits"))?;
        proofs.insert(index, hashes);
    }
    let mut events: BTreeMap<u64, StoredEvent> = BTreeMap::new();
    for (line, index, value) in json_lines(text(files, files::EVENTS)?, files::EVENTS)? {
        let seq = index + 1;
        let event_error = |message: String| VerifyError::Event {
            file: files::EVENTS.to_owned(),
            seq,
            index,
            message,
        };
        let body = value
            .get("event")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(files::EVENTS, line, "no `event` text"))?;
        let event = StoredEvent::decode(body).map_err(|err| event_error(err.to_string()))?;
        if event.seq != seq {
            return Err(event_error(format!(
                "the event says it is event {}: it was moved",
                event.seq
            )));
        }
        let proof = proofs
            .get(&index)
            .ok_or_else(|| event_error(format!("no inclusion proof in `{}`", files::PROOFS)))?;
        latch_ledger::verify_inclusion(
            index,
            checkpoint.size,
            &latch_ledger::leaf_hash(body.as_bytes()),
            proof,
            &checkpoint.root,
        )
        .map_err(|err| {
            event_error(format!(
                "not in the signed checkpoint of size {}: {err} (the event or its proof was changed)",
                checkpoint.size
            ))
        })?;
        if events.insert(seq, event).is_some() {
            return Err(event_error("listed twice".into()));
        }
    }
    checked.push(format!(
        "`{}`: {} events, each canonical, at its own index, its leaf hash (RFC 6962) proved in that checkpoint by its inclusion proof",
        files::EVENTS,
        events.len()
    ));

    // What the documents cite is there.
    let cited = citations(files)?;
    for (file, seq, what) in &cited {
        if !events.contains_key(seq) {
            return Err(VerifyError::Uncited {
                file: file.clone(),
                seq: *seq,
                what: what.clone(),
            });
        }
    }
    let distinct: BTreeSet<u64> = cited.iter().map(|(_, seq, _)| *seq).collect();
    checked.push(format!(
        "every event cited by `{}`, `{}`, `{}` and `{}` ({} events) is among them",
        files::REPORT_JSON,
        files::FINDINGS_JSON,
        files::POLICY_SETS,
        files::REVIEWS_JSON,
        distinct.len()
    ));

    // The documents are exactly what those events give.
    let ordered: Vec<StoredEvent> = events.into_values().collect();
    let plan = plan(&ordered, &manifest.period);
    let derived = plan.derived_files();
    for (name, expected) in &derived {
        let found = text(files, name)?;
        if found != expected {
            let (line, found, expected) = first_difference(found, expected);
            return Err(VerifyError::Derived {
                file: (*name).to_owned(),
                line,
                found,
                expected,
            });
        }
    }
    let names: Vec<String> = derived.iter().map(|(n, _)| format!("`{n}`")).collect();
    checked.push(format!(
        "{} rebuilt from those events for {} ({} to {}): identical ({})",
        names.join(", "),
        manifest.period.label,
        manifest.period.from,
        manifest.period.to,
        plan.summary()
    ));

    // The policy files copied: are they a set the ledger recorded?
    if let Ok(listing) = text(files, files::POLICY_FILES)
        && let Ok(Value::Array(list)) = serde_json::from_str::<Value>(listing)
        && !list.is_empty()
    {
        let mut pairs = Vec::new();
        for item in &list {
            let path = item.get("path").and_then(Value::as_str).unwrap_or_default();
            let file = item.get("file").and_then(Value::as_str).unwrap_or_default();
            pairs.push((path.to_owned(), text(files, file)?.to_owned()));
        }
        let hash = policy_hash(&pairs);
        match plan.policies.iter().find(|p| p.hash == hash) {
            Some(p) => checked.push(format!(
                "`{}`: the copied policy files hash to `{hash}`, the set recorded at event {}",
                files::POLICY_DIR,
                p.seq
            )),
            None => checked.push(format!(
                "! `{}`: the copied policy files (hash `{hash}`) are not a set recorded for the period (see `{}`)",
                files::POLICY_DIR,
                files::POLICY_README
            )),
        }
    }

    // Every file is the one the pack was made with, and nothing was added.
    for (name, digest) in &manifest.files {
        let bytes = files
            .get(name)
            .ok_or_else(|| VerifyError::Missing(name.clone()))?;
        if sha256_hex(bytes) != *digest {
            return Err(VerifyError::Digest(name.clone()));
        }
    }
    if let Some(extra) = files
        .keys()
        .find(|name| name.as_str() != files::MANIFEST && !manifest.files.contains_key(*name))
    {
        return Err(VerifyError::Unlisted(extra.clone()));
    }
    checked.push(format!(
        "`{}`: the SHA-256 of all {} files match, none missing or added",
        files::MANIFEST,
        manifest.files.len()
    ));
    Ok(checked)
}
