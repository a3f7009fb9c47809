//! latch's tamper-evident ledger, as pure functions: no IO, no clock, no randomness.
//!
//! - Merkle trees as RFC 9162 (and RFC 6962) define them over SHA-256: [`leaf_hash`],
//!   [`node_hash`], [`root`], inclusion proofs ([`inclusion_proof`], [`verify_inclusion`]) and
//!   consistency proofs ([`consistency_proof`], [`verify_consistency`]).
//! - [`CompactRange`], the right border of a growing tree, for verifiers that stream leaves.
//! - Checkpoints: a [`Checkpoint`] is [`sign`]ed with a [`SigningKey`] into a C2SP signed note
//!   and [`open`]ed with a [`VerifierKey`]. The keys, signature lines and key strings are those of
//!   golang.org/x/mod/sumdb/note, so its tools can check latch's checkpoints.
//!
//! A signed checkpoint reads:
//!
//! ```text
//! latch.example/audit
//! 8
//! XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=
//! time 2026-11-25T15:20:43.000Z
//!
//! — latch.example/audit EoNZZX2GV0hk5t12jJMt1uVb19cPh4c9MTm7IgyF9eB8V/4ONKZ4cu3I8ZJbOUswovtCxtYTI5sEtuKGRFrFAsZJkgA=
//! ```
//!
//! The lines are the origin (the ledger's name), the tree size, the root hash in base64, and the
//! time the checkpoint was made as an extension line (UTC, RFC 3339, always with milliseconds).
//! A blank line precedes the signature lines, each an em dash, the key name, and the base64 of
//! the 4-byte key hash followed by the 64-byte Ed25519 signature of the text above the blank
//! line.

mod checkpoint;
mod compact;
mod error;
mod hash;
mod keys;
mod nodes;
mod note;
mod proof;

pub use checkpoint::{Checkpoint, open, sign};
pub use compact::CompactRange;
pub use error::Error;
pub use hash::{EMPTY_ROOT, Hash, HashHex, leaf_hash, node_hash};
pub use keys::{SigningKey, VerifierKey};
pub use nodes::{LeafRange, NodeId, consistency_ranges, fold_nodes, inclusion_ranges};
pub use proof::{consistency_proof, inclusion_proof, root, verify_consistency, verify_inclusion};
