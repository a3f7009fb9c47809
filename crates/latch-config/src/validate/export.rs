//! `[export.nats]`: where the live copy of the ledger goes.

use super::{Checker, is_host_port};
use crate::raw::RawNats;
use crate::{ExportFormat, NatsExport};

impl Checker<'_, '_> {
    /// The sink's settings, or `None` when any of them is wrong (each problem reported).
    pub(super) fn nats_export(&mut self, raw: &RawNats) -> Option<NatsExport> {
        let mut ok = true;
        let server = raw.server.get_ref();
        let address = server
            .strip_prefix("nats://")
            .or_else(|| server.strip_prefix("tls://"));
        if !address.is_some_and(is_host_port) {
            ok = false;
            self.report(
                &raw.server,
                "export.nats.server",
                format!(
                    "invalid NATS server `{server}` (expected `nats://host:port` or \
                     `tls://host:port`, e.g. `nats://127.0.0.1:4222`)"
                ),
            );
        }
        let subject = raw.subject.get_ref();
        if !is_subject(subject) {
            ok = false;
            self.report(
                &raw.subject,
                "export.nats.subject",
                format!(
                    "invalid subject `{subject}` (expected dot-separated tokens of letters, \
                     digits, `-` and `_`, without wildcards, e.g. `latch.events`)"
                ),
            );
        }
        let stream = raw.stream.get_ref();
        if !is_stream_name(stream) {
            ok = false;
            self.report(
                &raw.stream,
                "export.nats.stream",
                format!(
                    "invalid stream name `{stream}` (expected letters, digits, `-` and `_`, at \
                     most 64 characters, e.g. `LATCH`)"
                ),
            );
        }
        let format = match raw.format.as_ref() {
            None => ExportFormat::Ledger,
            Some(format) => match format.get_ref().as_str() {
                "ledger" => ExportFormat::Ledger,
                "ocsf" => ExportFormat::Ocsf,
                other => {
                    ok = false;
                    self.report(
                        format,
                        "export.nats.format",
                        format!("unknown format `{other}` (expected `ledger` or `ocsf`)"),
                    );
                    ExportFormat::Ledger
                }
            },
        };
        ok.then(|| NatsExport {
            server: server.clone(),
            subject: subject.clone(),
            stream: stream.clone(),
            format,
        })
    }
}

/// A subject one publishes to: tokens without wildcards or spaces.
fn is_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        })
}

/// JetStream stream names may not hold `.`, `*`, `>`, path separators or spaces.
fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
}
