//! Evidence packs for SOC 2 and ISO/IEC 27001 auditors: the access report, findings, policy
//! set and owners' review outcomes of a period, a control mapping, and the ledger events they cite with a signed checkpoint
//! and an inclusion proof for each, all checkable offline with nothing but the verifier key.
//!
//! Pure: no IO, no clock. The binary reads the store and writes the files; [`plan`] chooses what
//! a period's pack holds, [`build`] renders its files, and [`verify`] checks a pack's files,
//! recomputing everything derived from the events so that a report cannot say more or less than
//! the signed ledger does.

mod controls;
mod manifest;
mod pack;
mod period;
mod plan;
mod verify;

pub use controls::{CONTROLS, Control, controls_json, controls_markdown};
pub use manifest::{Manifest, sha256_hex};
pub use pack::{BuildError, PackInput, PolicyFile, build};
pub use period::{Period, PeriodError, Schedule};
pub use plan::{
    FindingRecord, Plan, PolicyRecord, ReviewDueRecord, ReviewRecord, StatusChange, plan,
    policy_hash,
};
pub use verify::{VerifyError, verify};

/// The `format` of a pack's `manifest.json`: bump it when the layout changes.
pub const PACK_FORMAT: &str = "latch-evidence/2";

/// The files of a pack, relative to its directory.
pub mod files {
    pub const README: &str = "README.md";
    pub const MANIFEST: &str = "manifest.json";
    pub const REPORT_HTML: &str = "report.html";
    pub const REPORT_CSV: &str = "report.csv";
    pub const REPORT_JSON: &str = "report.json";
    pub const FINDINGS_CSV: &str = "findings.csv";
    pub const FINDINGS_JSON: &str = "findings.json";
    pub const POLICY_SETS: &str = "policy/policy-sets.json";
    pub const REVIEWS_CSV: &str = "reviews.csv";
    pub const REVIEWS_JSON: &str = "reviews.json";
    pub const POLICY_README: &str = "policy/README.md";
    pub const POLICY_FILES: &str = "policy/files.json";
    pub const CONTROLS_MD: &str = "controls.md";
    pub const CONTROLS_JSON: &str = "controls.json";
    pub const EVENTS: &str = "ledger/events.jsonl";
    pub const CHECKPOINT: &str = "ledger/checkpoint.txt";
    pub const PROOFS: &str = "ledger/proofs.jsonl";
    pub const PUBLIC_KEY: &str = "ledger/public-key.txt";
    /// Where the config's `.cedar` files are copied (`policy/files/<name>`).
    pub const POLICY_DIR: &str = "policy/files/";

    /// Every fixed file (the `.cedar` copies come on top).
    pub const ALL: [&str; 18] = [
        README,
        MANIFEST,
        REPORT_HTML,
        REPORT_CSV,
        REPORT_JSON,
        FINDINGS_CSV,
        FINDINGS_JSON,
        POLICY_SETS,
        REVIEWS_CSV,
        REVIEWS_JSON,
        POLICY_README,
        POLICY_FILES,
        CONTROLS_MD,
        CONTROLS_JSON,
        EVENTS,
        CHECKPOINT,
        PROOFS,
        PUBLIC_KEY,
    ];
}

#[cfg(test)]
mod tests;
