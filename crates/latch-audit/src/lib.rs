//! latch's audit checkpoints: pure detectors over the ledger's event stream that emit
//! [`Finding`]s.
//!
//! No IO, no clock, no async. The server feeds every appended [`latch_core::StoredEvent`] to an
//! [`Auditor`] with [`Auditor::observe`], calls [`Auditor::tick`] every second with the time, and
//! records what comes out as ledger events; `latch audit run --from --to` replays history through
//! a fresh auditor ([`Auditor::replay`]) and skips the findings whose [`Finding::key`] the store
//! already holds. The checkpoints, their defaults and why they exist are in
//! `docs/CHECKPOINTS.md`.
//!
//! **Architecture Invariant:** a finding's key is a function of the events alone (never of the
//! tick cadence or the wall clock), and one auditor never emits the same key twice.
//!
//! **Architecture Invariant:** memory is bounded on an endless stream, provided `tick` is called:
//! state about a request lives while it is pending (at most `max_pending_age`), about a grant
//! until `retention` after it ended, about a session until it ends or its grant's state is
//! dropped; windows keep at most their threshold of entries and are swept once idle. What stays
//! for ever is bounded by the organisation: users × K remembered reasons, users × resources
//! first-use pairs, and (users + teams) × resources × N used durations.

mod auditor;
mod finding;
mod hash;
mod settings;
mod text;
mod window;

pub use auditor::{Auditor, AuditorStats};
pub use finding::{Checkpoint, Finding, Severity};
pub use settings::{AuditSettings, BusinessHours, ResourceRules};
