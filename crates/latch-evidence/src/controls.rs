//! The control mapping: for each SOC 2 and ISO/IEC 27001:2022 control an evidence pack speaks
//! to, what the control requires, what latch does about it, and which files of the pack show it.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::files;

/// One control and how the pack evidences it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    pub framework: &'static str,
    pub id: &'static str,
    pub title: &'static str,
    /// What the control asks for, in one line (paraphrased, not the standard's text).
    pub requires: &'static str,
    /// What in latch does it, in one line.
    pub evidenced_by: &'static str,
    /// Files of the pack an auditor opens for it.
    // INVARIANT: every file is one the pack writes (`files::ALL`); a test checks it.
    pub files: &'static [&'static str],
}

const SOC2: &str = "SOC 2 (AICPA Trust Services Criteria 2017, revised 2022)";
const ISO: &str = "ISO/IEC 27001:2022 Annex A";

/// The controls, in the order the pack lists them.
pub const CONTROLS: [Control; 9] = [
    Control {
        framework: SOC2,
        id: "CC6.1",
        title: "Logical access security",
        requires: "logical access to protected assets goes through access control software and rules that restrict it to authorised users",
        evidenced_by: "every access is a time-bound grant decided by the Cedar policy set in force (its hash recorded in the ledger); users reach databases only through latch's gateway with short-lived brokered credentials",
        files: &[
            files::POLICY_SETS,
            files::POLICY_README,
            files::REPORT_CSV,
            files::REPORT_HTML,
        ],
    },
    Control {
        framework: SOC2,
        id: "CC6.2",
        title: "Authorisation before access is granted",
        requires: "access is authorised before credentials are issued or access is granted, and removed when no longer needed",
        evidenced_by: "each row of the report is one request with its requester, reason, ticket and the approvers who authorised it before the grant started, and how the grant ended (expired, revoked); the resource owners' periodic review of the period's access, with its outcome, is recorded in the ledger",
        files: &[
            files::REPORT_CSV,
            files::REPORT_HTML,
            files::REPORT_JSON,
            files::REVIEWS_CSV,
            files::EVENTS,
        ],
    },
    Control {
        framework: SOC2,
        id: "CC6.3",
        title: "Role-based, least-privilege access with segregation of duties",
        requires: "access is granted, changed and removed by role and responsibility, with least privilege and segregation of duties",
        evidenced_by: "grants name one role on one resource for a limited time; nobody approves their own request unless a policy allows an emergency self-approval, which is flagged; granted and used durations show over-long grants; owners review each resource's access every period and record changes needed",
        files: &[
            files::REPORT_CSV,
            files::REPORT_HTML,
            files::POLICY_SETS,
            files::FINDINGS_CSV,
            files::REVIEWS_CSV,
        ],
    },
    Control {
        framework: SOC2,
        id: "CC7.2",
        title: "Monitoring for anomalies",
        requires: "system components are monitored for anomalies that indicate malicious acts or errors, and the anomalies are analysed",
        evidenced_by: "latch's audit checkpoints open findings (weak reasons, writes under read grants, unused grants, …); each finding's triage, by whom and why, is a ledger event",
        files: &[files::FINDINGS_CSV, files::FINDINGS_JSON, files::EVENTS],
    },
    Control {
        framework: ISO,
        id: "A.5.15",
        title: "Access control",
        requires: "rules to control access to information are established and implemented",
        evidenced_by: "the Cedar policy set in force during the period, its hash as recorded in the ledger, and the decisions the report shows were taken under it",
        files: &[files::POLICY_SETS, files::POLICY_README, files::REPORT_CSV],
    },
    Control {
        framework: ISO,
        id: "A.5.18",
        title: "Access rights",
        requires: "access rights are provisioned, reviewed, modified and removed according to the access control rules",
        evidenced_by: "rights are provisioned only by an approved request, removed at expiry or by revocation (both in the report); the owners review each period's pack and record the outcome in the ledger (`latch review record`): each resource's outcome, reviewer, time and comment, or that it is still pending",
        files: &[
            files::REPORT_CSV,
            files::REPORT_HTML,
            files::REVIEWS_CSV,
            files::REVIEWS_JSON,
            files::README,
        ],
    },
    Control {
        framework: ISO,
        id: "A.8.2",
        title: "Privileged access rights",
        requires: "the allocation and use of privileged access rights is restricted and managed",
        evidenced_by: "write and admin roles are held only for the approved time; the statements run under each grant are counted by class (read, write, ddl, privilege); emergency access is flagged and findings name misuse",
        files: &[files::REPORT_CSV, files::REPORT_JSON, files::FINDINGS_CSV],
    },
    Control {
        framework: ISO,
        id: "A.8.15",
        title: "Logging",
        requires: "logs of activities, exceptions and events are produced, stored, protected and analysed",
        evidenced_by: "every event is a leaf of an append-only Merkle tree; the pack holds the cited events, a checkpoint signed with the ledger's Ed25519 key and an inclusion proof for each, so any edit is detectable offline",
        files: &[
            files::EVENTS,
            files::CHECKPOINT,
            files::PROOFS,
            files::PUBLIC_KEY,
            files::MANIFEST,
        ],
    },
    Control {
        framework: ISO,
        id: "A.8.16",
        title: "Monitoring activities",
        requires: "systems are monitored for anomalous behaviour and action is taken on potential incidents",
        evidenced_by: "findings from latch's audit checkpoints with their severity, subject and status history (acknowledged, resolved, by whom, with what comment)",
        files: &[files::FINDINGS_CSV, files::FINDINGS_JSON],
    },
];

/// `controls.json`: the mapping as data.
pub fn controls_json() -> String {
    let list: Vec<Value> = CONTROLS
        .iter()
        .map(|c| {
            json!({
                "framework": c.framework,
                "control": c.id,
                "title": c.title,
                "requires": c.requires,
                "evidenced_by": c.evidenced_by,
                "files": c.files,
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
}

/// `controls.md`: the mapping as a reader's table, one section per framework.
pub fn controls_markdown() -> String {
    let mut out = String::from(
        "# Control mapping\n\nWhich file of this pack evidences which control. The one-line \
         statements of what a control requires paraphrase the standards; read the standards for \
         their exact text.\n",
    );
    let mut framework = "";
    for control in &CONTROLS {
        if control.framework != framework {
            framework = control.framework;
            let _ = write!(
                out,
                "\n## {framework}\n\n| control | requires | latch evidence | files |\n| --- | --- | --- | --- |\n"
            );
        }
        let files: Vec<String> = control.files.iter().map(|f| format!("`{f}`")).collect();
        let _ = writeln!(
            out,
            "| **{}** {} | {} | {} | {} |",
            control.id,
            control.title,
            control.requires,
            control.evidenced_by,
            files.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_the_issue_names_is_mapped_to_files_the_pack_writes() {
        let wanted = [
            "CC6.1", "CC6.2", "CC6.3", "CC7.2", "A.5.15", "A.5.18", "A.8.2", "A.8.15", "A.8.16",
        ];
        let ids: Vec<&str> = CONTROLS.iter().map(|c| c.id).collect();
        assert_eq!(ids, wanted);
        for control in &CONTROLS {
            assert!(!control.files.is_empty(), "{} has no file", control.id);
            for file in control.files {
                assert!(
                    files::ALL.contains(file),
                    "{} cites `{file}`, which the pack does not write",
                    control.id
                );
            }
        }
    }

    #[test]
    fn the_markdown_has_one_row_per_control_under_its_framework() {
        let text = controls_markdown();
        assert_eq!(text.matches("\n| **").count(), CONTROLS.len());
        let soc2 = text.find("## SOC 2").unwrap();
        let iso = text.find("## ISO/IEC 27001:2022").unwrap();
        let cc72 = text.find("**CC7.2**").unwrap();
        let a515 = text.find("**A.5.15**").unwrap();
        assert!(soc2 < cc72 && cc72 < iso && iso < a515);
        let json: Value = serde_json::from_str(&controls_json()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), CONTROLS.len());
        assert_eq!(json[7]["files"][1], files::CHECKPOINT);
    }
}
