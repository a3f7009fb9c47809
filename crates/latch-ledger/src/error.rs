//! The one error type of the crate: every way a proof, key, note or checkpoint can be refused.

use crate::Hash;

/// Why the ledger refused a proof, a key, a signed note or a checkpoint.
///
/// Messages name what was wrong and what was expected, and never contain private key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A hash given as bytes was not 32 bytes long.
    #[error("hash is {len} bytes long, expected 32")]
    HashLength {
        /// The length that was given.
        len: usize,
    },

    /// A leaf index was not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The size of the tree.
        size: u64,
    },

    /// A consistency proof was asked for or checked from a bigger tree to a smaller one.
    #[error("old tree size {size1} is larger than new tree size {size2}")]
    SizeOrder {
        /// The older (claimed smaller) tree size.
        size1: u64,
        /// The newer (claimed larger) tree size.
        size2: u64,
    },

    /// A consistency proof was asked for or checked from the empty tree to a non-empty one.
    #[error(
        "consistency from the empty tree to size {size2} cannot be proved: every tree extends the empty tree"
    )]
    EmptyOldTree {
        /// The newer tree size.
        size2: u64,
    },

    /// An inclusion proof had the wrong number of hashes for its leaf index and tree size.
    #[error(
        "inclusion proof for leaf {index} in a tree of size {size} has {got} hashes, expected {want}"
    )]
    InclusionProofLength {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
        /// The number of hashes in the proof.
        got: usize,
        /// The number of hashes a correct proof has.
        want: usize,
    },

    /// A consistency proof had the wrong number of hashes for its two tree sizes.
    #[error(
        "consistency proof from tree size {size1} to {size2} has {got} hashes, expected {want}"
    )]
    ConsistencyProofLength {
        /// The older tree size.
        size1: u64,
        /// The newer tree size.
        size2: u64,
        /// The number of hashes in the proof.
        got: usize,
        /// The number of hashes a correct proof has.
        want: usize,
    },

    /// A proof led to a root other than the one it was checked against.
    #[error("proof leads to root {calculated} for tree size {size}, expected root {expected}")]
    RootMismatch {
        /// The size of the tree whose root did not match.
        size: u64,
        /// The root the proof leads to.
        calculated: Hash,
        /// The root the proof was checked against.
        expected: Hash,
    },

    /// The saved hashes of a compact range do not fit its size.
    #[error(
        "compact range of size {size} needs {want} hashes (one per set bit of the size), got {got}"
    )]
    CompactRangeShape {
        /// The size of the range.
        size: u64,
        /// The number of hashes given.
        got: usize,
        /// The number of hashes a range of that size has.
        want: u32,
    },

    /// A key name was empty or held whitespace or `+`, which the note formats use as separators.
    #[error("key name `{name}` is invalid: expected a non-empty name without whitespace or `+`")]
    InvalidKeyName {
        /// The name given.
        name: String,
    },

    /// A verifier key string was not `<name>+<8 hex digits>+<base64 of 0x01 and 32 key bytes>`.
    #[error("verifier key is malformed: {reason}")]
    MalformedVerifierKey {
        /// What was wrong, and what was expected.
        reason: String,
    },

    /// A private key string was not `PRIVATE+KEY+<name>+<8 hex digits>+<base64 of 0x01 and a
    /// 32-byte seed>`. The reason never quotes the key.
    #[error("private key is malformed: {reason}")]
    MalformedPrivateKey {
        /// What was wrong, and what was expected.
        reason: String,
    },

    /// The key hash written in a key string is not the hash of the key it carries.
    #[error(
        "key hash {written:08x} in key `{name}` does not match its key, which hashes to {actual:08x}"
    )]
    KeyHashMismatch {
        /// The key name.
        name: String,
        /// The key hash written in the string.
        written: u32,
        /// The key hash computed from the key.
        actual: u32,
    },

    /// A signed note was not text, a blank line and signature lines.
    #[error("signed note is malformed: {reason}")]
    MalformedNote {
        /// What was wrong, and what was expected.
        reason: String,
    },

    /// A signature line was not `— <key name> <base64 of 4-byte key hash and signature>`.
    #[error("signature line (line {line} of the note) is malformed: {reason}")]
    MalformedSignatureLine {
        /// The 1-based line number in the whole note.
        line: usize,
        /// What was wrong, and what was expected.
        reason: String,
    },

    /// No signature line in the note was made by the verifier key.
    #[error("note has no signature by key {name}+{key_hash:08x}")]
    NoSignature {
        /// The verifier key's name.
        name: String,
        /// The verifier key's hash.
        key_hash: u32,
    },

    /// A signature line names the verifier key but its signature does not verify over the text.
    #[error("signature by key {name}+{key_hash:08x} on line {line} of the note does not verify")]
    BadSignature {
        /// The verifier key's name.
        name: String,
        /// The verifier key's hash.
        key_hash: u32,
        /// The 1-based line number in the whole note.
        line: usize,
    },

    /// The signed text is not a checkpoint in latch's format.
    #[error("checkpoint line {line} is malformed: {reason}")]
    MalformedCheckpoint {
        /// The 1-based line number in the note.
        line: usize,
        /// What was wrong, and what was expected.
        reason: String,
    },

    /// A checkpoint's fields cannot be written in the checkpoint format.
    #[error("checkpoint cannot be signed: {reason}")]
    UnsignableCheckpoint {
        /// What was wrong, and what was expected.
        reason: String,
    },
}
