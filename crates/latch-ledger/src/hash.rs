//! SHA-256 hashes and the two RFC 6962 hashing rules: leaves with prefix 0x00, nodes with 0x01.

use std::fmt;

use ring::digest::{Context, SHA256};
use subtle::ConstantTimeEq;

use crate::Error;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
///
/// Equality is constant-time, so comparing a computed root with an expected one leaks nothing
/// through timing. `Display` is lowercase hex.
#[derive(Clone, Copy)]
pub struct Hash([u8; 32]);

/// The root of the empty tree: SHA-256 of no bytes (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

impl Hash {
    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a hash from bytes that must be exactly 32 long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::HashLength { len: bytes.len() })
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Hash {}

// Written by hand because `PartialEq` is; hashing all 32 bytes agrees with it.
impl std::hash::Hash for Hash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Hash {
    /// Lowercase hex, without allocating: every event row stores its leaf hash in hex.
    pub fn hex(&self) -> HashHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        HashHex(hex)
    }
}

/// A hash's 64 lowercase hex digits ([`Hash::hex`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashHex([u8; 64]);

impl HashHex {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for HashHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashHex({})", self.as_str())
    }
}

impl fmt::Display for Hash {
    /// Lowercase hex. Written as one string: 32 formatted writes of two digits each were 3 % of
    /// the gateway's CPU.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Context::new(&SHA256);
    hasher.update(&[0x00]);
    hasher.update(data);
    finish(hasher)
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Context::new(&SHA256);
    hasher.update(&[0x01]);
    hasher.update(&left.0);
    hasher.update(&right.0);
    finish(hasher)
}

fn finish(hasher: Context) -> Hash {
    let mut out = [0; 32];
    out.copy_from_slice(hasher.finish().as_ref());
    Hash(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        use sha2::{Digest, Sha256};
        let digest: [u8; 32] = Sha256::digest([]).into();
        assert_eq!(EMPTY_ROOT, Hash(digest));
        assert_eq!(
            EMPTY_ROOT.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_and_node_hashes_use_distinct_prefixes() {
        // RFC 6962's first test leaf is the empty string.
        assert_eq!(
            leaf_hash(b"").to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
        let mut concatenated = a.0.to_vec();
        concatenated.extend_from_slice(&b.0);
        assert_ne!(node_hash(&a, &b), leaf_hash(&concatenated));
    }

    #[test]
    fn from_slice_wants_exactly_32_bytes() {
        assert_eq!(Hash::from_slice(&[7; 32]), Ok(Hash([7; 32])));
        assert_eq!(
            Hash::from_slice(&[7; 31]),
            Err(Error::HashLength { len: 31 })
        );
        assert_eq!(Hash::from_slice(&[]), Err(Error::HashLength { len: 0 }));
        assert_eq!(
            Error::HashLength { len: 31 }.to_string(),
            "hash is 31 bytes long, expected 32"
        );
    }

    #[test]
    fn debug_shows_hex() {
        let hash = Hash([0xab; 32]);
        assert_eq!(format!("{hash:?}"), format!("Hash({})", "ab".repeat(32)));
    }

    #[test]
    fn hex_is_the_display_without_allocating() {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::try_from(i * 8 + 1).unwrap();
        }
        let hash = Hash(bytes);
        assert_eq!(hash.hex().as_str(), hash.to_string());
        assert_eq!(
            hash.hex().as_str(),
            "0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9"
        );
    }
}
