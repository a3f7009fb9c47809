//! Renders a pack: every file, by its path in the pack, ending with the manifest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use latch_core::Timestamp;
use latch_ledger::Hash;
use serde_json::json;

use crate::{Manifest, Plan, files, policy_hash};

/// A policy file of the config, as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    /// The path as the config gives it (and as `policy.loaded` records it).
    pub path: String,
    pub text: String,
}

/// What a pack is made of besides its plan.
pub struct PackInput<'a> {
    pub plan: &'a Plan,
    /// Sequence number → canonical text of at least every cited event.
    pub events: &'a BTreeMap<u64, String>,
    /// The signed checkpoint every cited event is proved against.
    pub checkpoint_note: &'a str,
    pub checkpoint_size: u64,
    /// Ledger index (seq - 1) → inclusion proof of that event in the checkpoint.
    pub proofs: &'a BTreeMap<u64, Vec<Hash>>,
    pub public_key: &'a str,
    pub generated_at: Timestamp,
    /// The config's policy files now; empty under the built-in rule.
    pub policy_files: &'a [PolicyFile],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error(
        "event {seq} is cited but not covered by the checkpoint of size {size}: run `latch ledger checkpoint` against the server, then build the pack again"
    )]
    Uncovered { seq: u64, size: u64 },
    #[error("event {0} is cited but was not read from the store (a bug in latch)")]
    MissingEvent(u64),
    #[error("event {0} has no inclusion proof (a bug in latch)")]
    MissingProof(u64),
}

/// A file name for each policy file: its own name, numbered when two share one.
fn policy_names(policy_files: &[PolicyFile]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    policy_files
        .iter()
        .map(|file| {
            let base = file
                .path
                .rsplit(['/', '\\'])
                .next()
                .filter(|b| !b.is_empty())
                .unwrap_or("policy.cedar")
                .to_owned();
            let count = seen.entry(base.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                format!("{}{base}", files::POLICY_DIR)
            } else {
                format!("{}{count}-{base}", files::POLICY_DIR)
            }
        })
        .collect()
}

fn policy_readme(plan: &Plan, policy_files: &[PolicyFile], names: &[String]) -> String {
    let mut out = String::from("# Policy sets in force\n\n");
    if plan.policies.is_empty() {
        out.push_str(
            "The ledger records no policy set in force during the period: requests were decided \
             by latch's built-in rule (a lead of the owner team or the requester's manager \
             approves; nobody approves their own request).\n",
        );
    } else {
        out.push_str(
            "`policy-sets.json` lists each Cedar policy set in force during the period, from the \
             `policy.loaded` event that recorded it (its SHA-256 over the files' paths and texts, \
             the files and the number of policies). Every decision in the report names the \
             policies that took it.\n\n",
        );
        for p in &plan.policies {
            let _ = writeln!(
                out,
                "- `{}`: loaded at {} (event {}), {} policies from {}",
                p.hash,
                p.at,
                p.seq,
                p.policies,
                p.files.join(", ")
            );
        }
    }
    if policy_files.is_empty() {
        out.push_str("\nThe config names no policy files today, so none are copied here.\n");
        return out;
    }
    let pairs: Vec<(String, String)> = policy_files
        .iter()
        .map(|f| (f.path.clone(), f.text.clone()))
        .collect();
    let current = policy_hash(&pairs);
    let _ = write!(
        out,
        "\n## The files in `files/`\n\nThe config's policy files as they are when this pack was \
         made (hash `{current}`):\n\n"
    );
    for (file, name) in policy_files.iter().zip(names) {
        let _ = writeln!(out, "- `{name}`: `{}`", file.path);
    }
    match plan.policies.iter().find(|p| p.hash == current) {
        Some(p) if plan.policies.last() == Some(p) => {
            let _ = write!(
                out,
                "\nTheir hash is the one recorded at event {}: these are exactly the rules in \
                 force at the end of the period.\n",
                p.seq
            );
        }
        Some(p) => {
            let _ = write!(
                out,
                "\nTheir hash is the one recorded at event {}, in force until a later set \
                 replaced it during the period; the later sets' files are not in this pack: \
                 retrieve them from version control by their hash.\n",
                p.seq
            );
        }
        None => {
            out.push_str(
                "\n**Note: their hash differs from every set recorded for the period.** The \
                 policies changed after the period (or were edited without a reload): these \
                 files are not the rules that decided the period's requests. Retrieve the files \
                 in force from version control by the hash above; `latch policy validate` on \
                 them prints the same hash.\n",
            );
        }
    }
    out
}

fn readme(input: &PackInput<'_>, checkpoint_root: &str) -> String {
    let plan = input.plan;
    let period = &plan.period;
    format!(
        "# latch evidence pack: {label}\n\n\
         Access to the systems latch guards, from {from} to {to} (UTC, end excluded), as \
         recorded in latch's tamper-evident ledger: {summary}.\n\n\
         Made at {made} from the ledger as of the checkpoint of size {size} (root `{root}`), \
         signed by the ledger's key `{key}`.\n\n\
         ## Verify it\n\n\
         Obtain the ledger's verifier key independently of this pack (from the operator's \
         published key, or `latch ledger public-key` run by someone you trust), then, with no \
         server and no network:\n\n\
         ```\nlatch ledger verify --bundle . --key '<verifier key obtained independently>'\n```\n\n\
         It checks the checkpoint's signature; that every event in `{events}` is canonical, \
         hashes to its leaf and is in the signed tree (its inclusion proof); that every event \
         the report, the findings, the policy sets and the reviews cite is there; that the \
         report, findings, policy sets and reviews are exactly what those events give; and the SHA-256 of every file in \
         `{manifest}`. Any difference exits non-zero naming the file or event.\n\n\
         The pack proves that what it shows is in the signed ledger, unaltered. To check that \
         nothing of the period was left out, verify the whole ledger (`latch ledger export`, \
         then `latch ledger verify --bundle`) and compare.\n\n\
         ## Files\n\n\
         | file | what it is |\n| --- | --- |\n\
         | `{report_html}` | the access report, printable: one row per access request created in the period |\n\
         | `{report_csv}` | the same, for a spreadsheet (RFC 4180, UTF-8, times RFC 3339 UTC) |\n\
         | `{report_json}` | the same as data, each access with the ledger events (`seq`) it was made from |\n\
         | `{findings_csv}`, `{findings_json}` | audit findings opened or handled in the period, or about its accesses: checkpoint, severity, subject, and status history (who, when, comment) |\n\
         | `{policy_sets}` | the Cedar policy sets in force during the period, as the ledger recorded them |\n\
         | `{reviews_csv}`, `{reviews_json}` | the resource owners' review of the period's access: for each resource the outcome (approved, changes needed), who recorded it, when and why, or that it is still pending; reviews recorded up to the checkpoint, so a pack made as the period closes has none yet (make it again once the owners have answered) |\n\
         | `{policy_readme}`, `{policy_dir}` | the config's policy files, and whether they are the ones recorded |\n\
         | `{controls_md}`, `{controls_json}` | which file evidences which SOC 2 and ISO/IEC 27001:2022 control |\n\
         | `{events}` | every cited event: its ledger index and its canonical JSON (the Merkle leaf) |\n\
         | `{checkpoint}` | the signed checkpoint (C2SP signed note, Ed25519) |\n\
         | `{proofs}` | an RFC 9162 inclusion proof of each cited event in that checkpoint |\n\
         | `{public_key}` | the key the pack says signed it (do not trust it: compare it with the one you obtained) |\n\
         | `{manifest}` | the SHA-256 of every other file, the period and the checkpoint size |\n",
        label = period.label,
        from = period.from,
        to = period.to,
        summary = plan.summary(),
        made = input.generated_at,
        size = input.checkpoint_size,
        root = checkpoint_root,
        key = input.public_key,
        events = files::EVENTS,
        manifest = files::MANIFEST,
        report_html = files::REPORT_HTML,
        report_csv = files::REPORT_CSV,
        report_json = files::REPORT_JSON,
        findings_csv = files::FINDINGS_CSV,
        findings_json = files::FINDINGS_JSON,
        policy_sets = files::POLICY_SETS,
        reviews_csv = files::REVIEWS_CSV,
        reviews_json = files::REVIEWS_JSON,
        policy_readme = files::POLICY_README,
        policy_dir = files::POLICY_DIR,
        controls_md = files::CONTROLS_MD,
        controls_json = files::CONTROLS_JSON,
        checkpoint = files::CHECKPOINT,
        proofs = files::PROOFS,
        public_key = files::PUBLIC_KEY,
    )
}

/// Every file of the pack, by its path in the pack, including `manifest.json`.
pub fn build(input: &PackInput<'_>) -> Result<BTreeMap<String, Vec<u8>>, BuildError> {
    let plan = input.plan;
    let mut events = String::new();
    let mut proofs = String::new();
    let mut root = String::new();
    if let Some(&seq) = plan.cited.iter().find(|&&seq| seq > input.checkpoint_size) {
        return Err(BuildError::Uncovered {
            seq,
            size: input.checkpoint_size,
        });
    }
    for &seq in &plan.cited {
        let body = input
            .events
            .get(&seq)
            .ok_or(BuildError::MissingEvent(seq))?;
        let index = seq - 1;
        let proof = input
            .proofs
            .get(&index)
            .ok_or(BuildError::MissingProof(seq))?;
        events.push_str(&json!({"index": index, "event": body}).to_string());
        events.push('\n');
        let hashes: Vec<String> = proof.iter().map(Hash::to_string).collect();
        proofs.push_str(&json!({"index": index, "proof": hashes}).to_string());
        proofs.push('\n');
    }
    if let Some(line) = input.checkpoint_note.lines().nth(2) {
        root = line.to_owned();
    }
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (path, text) in plan.derived_files() {
        out.insert(path.to_owned(), text.into_bytes());
    }
    out.insert(files::EVENTS.to_owned(), events.into_bytes());
    out.insert(files::PROOFS.to_owned(), proofs.into_bytes());
    out.insert(
        files::CHECKPOINT.to_owned(),
        input.checkpoint_note.as_bytes().to_vec(),
    );
    out.insert(
        files::PUBLIC_KEY.to_owned(),
        format!("{}\n", input.public_key).into_bytes(),
    );
    let names = policy_names(input.policy_files);
    let listing: Vec<serde_json::Value> = input
        .policy_files
        .iter()
        .zip(&names)
        .map(|(file, name)| json!({"path": file.path, "file": name}))
        .collect();
    out.insert(
        files::POLICY_FILES.to_owned(),
        (serde_json::to_string_pretty(&listing).unwrap_or_default() + "\n").into_bytes(),
    );
    for (file, name) in input.policy_files.iter().zip(&names) {
        out.insert(name.clone(), file.text.clone().into_bytes());
    }
    out.insert(
        files::POLICY_README.to_owned(),
        policy_readme(plan, input.policy_files, &names).into_bytes(),
    );
    out.insert(files::README.to_owned(), readme(input, &root).into_bytes());
    let manifest = Manifest::of(
        &plan.period,
        input.checkpoint_size,
        input.generated_at,
        &out,
    );
    out.insert(files::MANIFEST.to_owned(), manifest.to_json().into_bytes());
    Ok(out)
}
