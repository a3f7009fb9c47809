//! Ed25519 signing and verifier keys, named and written as golang.org/x/mod/sumdb/note and the
//! C2SP signed-note spec write them, so that standard tooling can check latch's checkpoints.
//!
//! A verifier key is `<name>+<key hash>+<base64(0x01 || public key)>` and a private key is
//! `PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || seed)>`, where the key hash is the first four
//! bytes of `SHA-256(name || "\n" || 0x01 || public key)` as eight lowercase hex digits and 0x01
//! is the signed-note algorithm byte for Ed25519.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Error;

/// The signed-note algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;

/// A named Ed25519 key that signs checkpoints. Its `Debug` output leaves the secret out, and the
/// secret is wiped from memory when the key is dropped.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    key_hash: u32,
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// Makes the key `name` from a 32-byte Ed25519 seed, which the caller draws from a
    /// cryptographically secure random source (this crate has none).
    ///
    /// The name must be non-empty and hold no whitespace or `+`.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, Error> {
        check_name(name).map_err(|_| Error::InvalidKeyName {
            name: name.to_owned(),
        })?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let key_hash = key_hash(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key_hash,
            key,
        })
    }

    /// Reads a private key written as `PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || seed)>`,
    /// ignoring whitespace around it (such as a key file's final newline).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let malformed = |reason: &str| Error::MalformedPrivateKey {
            reason: reason.to_owned(),
        };
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| malformed("expected it to start with `PRIVATE+KEY+`"))?;
        let (name, written_hash, encoded) = split_key(rest).ok_or_else(|| {
            malformed("expected `PRIVATE+KEY+<name>+<8 hex digit key hash>+<base64 seed>`")
        })?;
        check_name(name)?;
        let written = parse_key_hash(written_hash).map_err(|reason| malformed(&reason))?;
        let decoded = Zeroizing::new(
            STANDARD
                .decode(encoded)
                .map_err(|_| malformed("seed is not padded standard base64"))?,
        );
        let seed = algorithm_payload(&decoded, "seed").map_err(|reason| malformed(&reason))?;
        let key = Self::from_seed(name, *seed)?;
        if key.key_hash != written {
            return Err(Error::KeyHashMismatch {
                name: name.to_owned(),
                written,
                actual: key.key_hash,
            });
        }
        Ok(key)
    }

    /// Writes the key as `PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || seed)>`, the text
    /// [`SigningKey::parse`] reads. The text is the secret: store it as such.
    pub fn to_private_text(&self) -> Zeroizing<String> {
        let mut payload = Zeroizing::new([0u8; 33]);
        payload[0] = ALG_ED25519;
        payload[1..].copy_from_slice(self.key.as_bytes());
        let encoded = Zeroizing::new(STANDARD.encode(payload.as_slice()));
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_hash,
            encoded.as_str()
        ))
    }

    /// The key that checks this key's signatures.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_hash: self.key_hash,
            key: self.key.verifying_key(),
        }
    }

    /// The key's name, which its signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key hash, which its signature lines carry.
    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    /// The Ed25519 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("key_hash", &format_args!("{:08x}", self.key_hash))
            .finish_non_exhaustive()
    }
}

/// A named Ed25519 public key that checks checkpoint signatures. `Display` writes it as
/// `<name>+<key hash>+<base64(0x01 || public key)>`, the text [`VerifierKey::parse`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_hash: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// Reads a verifier key written as `<name>+<key hash>+<base64(0x01 || public key)>`,
    /// ignoring whitespace around it. The key hash must match the name and key.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let malformed = |reason: String| Error::MalformedVerifierKey { reason };
        let (name, written_hash, encoded) = split_key(text.trim()).ok_or_else(|| {
            malformed(
                "expected `<name>+<8 hex digit key hash>+<base64 key>`, with two `+` separators"
                    .to_owned(),
            )
        })?;
        check_name(name)?;
        let written = parse_key_hash(written_hash).map_err(malformed)?;
        let decoded = STANDARD
            .decode(encoded)
            .map_err(|_| malformed(format!("key `{encoded}` is not padded standard base64")))?;
        let public = algorithm_payload(&decoded, "public key").map_err(malformed)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|_| {
            malformed("public key bytes are not a valid Ed25519 curve point".to_owned())
        })?;
        // A small-order key would let one signature pass for many messages.
        if key.is_weak() {
            return Err(malformed(
                "public key is a weak (small-order) Ed25519 point".to_owned(),
            ));
        }
        let actual = key_hash(name, public);
        if actual != written {
            return Err(Error::KeyHashMismatch {
                name: name.to_owned(),
                written,
                actual,
            });
        }
        Ok(Self {
            name: name.to_owned(),
            key_hash: actual,
            key,
        })
    }

    /// The key's name, which its signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key hash, which its signature lines carry.
    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`. Strict verification:
    /// non-canonical signatures are refused, so each message has one valid signature per key.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature)
            .is_ok_and(|signature| self.key.verify_strict(message, &signature).is_ok())
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut payload = [0u8; 33];
        payload[0] = ALG_ED25519;
        payload[1..].copy_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_hash,
            STANDARD.encode(payload)
        )
    }
}

/// Checks a key name: non-empty, no whitespace or control characters, no `+` (the separator of
/// key strings). The same rule holds for names in signature lines.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '+';
    if name.is_empty() || name.contains(bad) {
        return Err(Error::InvalidKeyName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`, big-endian.
fn key_hash(name: &str, public: &[u8; 32]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALG_ED25519])
        .chain_update(public)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Splits `<name>+<hash>+<key>` at its first two `+`; the base64 key may itself hold `+`.
fn split_key(text: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = text.split_once('+')?;
    let (hash, key) = rest.split_once('+')?;
    Some((name, hash, key))
}

/// Reads a key hash written as exactly eight hex digits.
fn parse_key_hash(text: &str) -> Result<u32, String> {
    let not_hex = || format!("key hash `{text}` is not 8 hex digits");
    // `from_str_radix` alone would also take a sign and fewer digits.
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_hex());
    }
    u32::from_str_radix(text, 16).map_err(|_| not_hex())
}

/// The 32 key bytes after the Ed25519 algorithm byte.
fn algorithm_payload<'a>(decoded: &'a [u8], what: &str) -> Result<&'a [u8; 32], String> {
    match decoded.split_first() {
        Some((&ALG_ED25519, payload)) => <&[u8; 32]>::try_from(payload).map_err(|_| {
            format!(
                "{what} is {} bytes, expected 33: the algorithm byte 0x01 and 32 key bytes",
                decoded.len()
            )
        }),
        Some((other, _)) => Err(format!(
            "algorithm byte is 0x{other:02x}, expected 0x01 (Ed25519)"
        )),
        None => Err(format!("{what} is empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The key pair of golang.org/x/mod/sumdb/note's tests, which sumdb-compatible tools accept.
    const GO_PRIVATE: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    #[test]
    fn reads_and_writes_the_go_note_key_pair() {
        let signing = SigningKey::parse(GO_PRIVATE).unwrap();
        assert_eq!(signing.name(), "PeterNeumann");
        assert_eq!(signing.key_hash(), 0xc74f20a3);
        assert_eq!(signing.to_private_text().as_str(), GO_PRIVATE);
        assert_eq!(signing.verifier_key().to_string(), GO_VERIFIER);
        let verifier = VerifierKey::parse(GO_VERIFIER).unwrap();
        assert_eq!(verifier, signing.verifier_key());
        assert_eq!(
            VerifierKey::parse(&format!("  {GO_VERIFIER}\n")),
            Ok(verifier)
        );
    }

    #[test]
    fn debug_leaves_the_secret_out() {
        let signing = SigningKey::parse(GO_PRIVATE).unwrap();
        let shown = format!("{signing:?}");
        assert_eq!(
            shown,
            "SigningKey { name: \"PeterNeumann\", key_hash: c74f20a3, .. }"
        );
    }

    #[test]
    fn every_mangled_verifier_key_is_refused() {
        let bytes = GO_VERIFIER.as_bytes();
        for start in 0..bytes.len() {
            for end in start + 1..=bytes.len() {
                let part = &GO_VERIFIER[start..end];
                // Surrounding whitespace is trimmed, so only proper parts can be tried.
                if part != GO_VERIFIER {
                    assert!(VerifierKey::parse(part).is_err(), "accepted {part:?}");
                }
            }
        }
        for i in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[i] += 1;
            let mangled = String::from_utf8(mangled).unwrap();
            assert!(
                VerifierKey::parse(&mangled).is_err(),
                "accepted {mangled:?}"
            );
        }
    }

    #[test]
    fn every_mangled_private_key_is_refused() {
        let bytes = GO_PRIVATE.as_bytes();
        for start in 0..bytes.len() {
            for end in start + 1..=bytes.len() {
                let part = &GO_PRIVATE[start..end];
                if part != GO_PRIVATE {
                    assert!(SigningKey::parse(part).is_err(), "accepted {part:?}");
                }
            }
        }
        for i in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[i] += 1;
            let mangled = String::from_utf8(mangled).unwrap();
            assert!(SigningKey::parse(&mangled).is_err(), "accepted {mangled:?}");
        }
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert_eq!(
            VerifierKey::parse("PeterNeumann+c74f20a+ARpc")
                .unwrap_err()
                .to_string(),
            "verifier key is malformed: key hash `c74f20a` is not 8 hex digits"
        );
        assert_eq!(
            VerifierKey::parse(
                "PeterNeumann+c74f20a3+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .unwrap_err()
            .to_string(),
            "verifier key is malformed: algorithm byte is 0x65, expected 0x01 (Ed25519)"
        );
        assert_eq!(
            VerifierKey::parse(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .unwrap_err()
            .to_string(),
            "key hash c74f20a4 in key `PeterNeumann` does not match its key, which hashes to c74f20a3"
        );
        assert_eq!(
            SigningKey::from_seed("two words", [1; 32])
                .unwrap_err()
                .to_string(),
            "key name `two words` is invalid: expected a non-empty name without whitespace or `+`"
        );
        let secret = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF";
        let error = SigningKey::parse(&format!("PRIVATE+KEY+PeterNeumann+c74f20a3+{secret}"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "private key is malformed: seed is not padded standard base64"
        );
        assert!(!error.contains(secret));
    }

    #[test]
    fn names_follow_the_note_rules() {
        for good in ["latch.example/audit", "PeterNeumann", "ünïcode"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "a b", "a+b", "a\tb", "a\u{a0}b", "a\u{7f}b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
