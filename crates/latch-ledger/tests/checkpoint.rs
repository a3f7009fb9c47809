//! Signed checkpoints through the public API: round trips, the exact text, and refusal of
//! tampered notes and wrong keys.

// Integration tests are test code too: this lets clippy apply its test allowances (unwrap,
// expect, panic) to their helpers, not only to #[test] functions.
#![cfg(test)]

use latch_ledger::{Checkpoint, Error, Hash, SigningKey, VerifierKey, leaf_hash, open, sign};
use proptest::prelude::*;

const ORIGIN: &str = "latch.example/audit";

fn key() -> SigningKey {
    SigningKey::from_seed(ORIGIN, [0x42; 32]).unwrap()
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 8,
        // The RFC 6962 root over the eight standard test leaves.
        root: Hash::from_slice(&[
            0x5d, 0xc9, 0xda, 0x79, 0xa7, 0x06, 0x59, 0xa9, 0xad, 0x55, 0x9c, 0xb7, 0x01, 0xde,
            0xd9, 0xa2, 0xab, 0x9d, 0x82, 0x3a, 0xad, 0x2f, 0x49, 0x60, 0xcf, 0xe3, 0x70, 0xef,
            0xf4, 0x60, 0x43, 0x28,
        ])
        .unwrap(),
        // 2026-11-25T15:20:43.000Z
        time_millis: 1_795_620_043_000,
    }
}

// The texts of `key()` and of `checkpoint()` signed by it, as Python's `cryptography` (OpenSSL)
// computes them too: Ed25519 is deterministic, so they never change.
const VERIFIER_TEXT: &str =
    "latch.example/audit+12835965+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS";
const PRIVATE_TEXT: &str =
    "PRIVATE+KEY+latch.example/audit+12835965+AUJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC";
const SIGNED: &str = "\
latch.example/audit
8
XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=
time 2026-11-25T15:20:43.000Z

— latch.example/audit EoNZZX2GV0hk5t12jJMt1uVb19cPh4c9MTm7IgyF9eB8V/4ONKZ4cu3I8ZJbOUswovtCxtYTI5sEtuKGRFrFAsZJkgA=
";

#[test]
fn signs_the_documented_text() {
    assert_eq!(key().verifier_key().to_string(), VERIFIER_TEXT);
    assert_eq!(key().to_private_text().as_str(), PRIVATE_TEXT);
    assert_eq!(sign(&checkpoint(), &key()).unwrap(), SIGNED);
    let verifier = VerifierKey::parse(VERIFIER_TEXT).unwrap();
    assert_eq!(open(SIGNED, &verifier), Ok(checkpoint()));
}

#[test]
fn opens_what_it_signs() {
    let note = sign(&checkpoint(), &key()).unwrap();
    assert_eq!(open(&note, &key().verifier_key()), Ok(checkpoint()));
}

#[test]
fn keys_survive_their_text_forms() {
    let key = key();
    let reread = SigningKey::parse(&key.to_private_text()).unwrap();
    assert_eq!(reread.verifier_key(), key.verifier_key());
    assert_eq!(
        sign(&checkpoint(), &reread).unwrap(),
        sign(&checkpoint(), &key).unwrap()
    );
    let verifier = VerifierKey::parse(&key.verifier_key().to_string()).unwrap();
    assert_eq!(verifier, key.verifier_key());
    assert_eq!(verifier.name(), ORIGIN);
    assert_eq!(verifier.key_hash(), key.key_hash());
}

#[test]
fn tampered_checkpoints_are_refused() {
    let note = sign(&checkpoint(), &key()).unwrap();
    let verifier = key().verifier_key();
    let tampered = [
        note.replacen("\n8\n", "\n9\n", 1),
        note.replacen("XcnaeacG", "XcnaeacH", 1),
        note.replacen("15:20:43", "15:20:44", 1),
        note.replacen("latch.example/audit\n", "latch.example/other\n", 1),
    ];
    for note in tampered {
        assert!(
            matches!(
                open(&note, &verifier),
                Err(Error::BadSignature { line: 6, .. })
            ),
            "{note}"
        );
    }
}

#[test]
fn tampered_signatures_are_refused() {
    let note = sign(&checkpoint(), &key()).unwrap();
    let verifier = key().verifier_key();
    let signature_start = note.rfind(' ').unwrap() + 1;
    // Every character of the base64 signature (but its padding), replaced by another.
    for at in signature_start..note.len() - 2 {
        let mut bytes = note.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(open(&tampered, &verifier).is_err(), "{tampered}");
    }
    let truncated = format!("{}=\n", &note[..note.len() - 3]);
    assert!(open(&truncated, &verifier).is_err());
}

#[test]
fn wrong_keys_are_refused() {
    let note = sign(&checkpoint(), &key()).unwrap();
    let same_name = SigningKey::from_seed(ORIGIN, [0x43; 32]).unwrap();
    let error = open(&note, &same_name.verifier_key()).unwrap_err();
    assert_eq!(
        error,
        Error::NoSignature {
            name: ORIGIN.to_owned(),
            key_hash: same_name.key_hash()
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "note has no signature by key latch.example/audit+{:08x}",
            same_name.key_hash()
        )
    );
    let other_name = SigningKey::from_seed("someone.else", [0x42; 32]).unwrap();
    assert!(matches!(
        open(&note, &other_name.verifier_key()),
        Err(Error::NoSignature { .. })
    ));
}

#[test]
fn cosignatures_by_other_keys_are_ignored() {
    let note = sign(&checkpoint(), &key()).unwrap();
    let witness = SigningKey::from_seed("witness.example", [0x07; 32]).unwrap();
    let witness_note = sign(&checkpoint(), &witness).unwrap();
    let (_, witness_line) = witness_note.split_once("\n\n").unwrap();
    let cosigned = format!("{note}{witness_line}");
    assert_eq!(open(&cosigned, &key().verifier_key()), Ok(checkpoint()));
    assert_eq!(open(&cosigned, &witness.verifier_key()), Ok(checkpoint()));
}

#[test]
fn unsignable_checkpoints_are_refused() {
    let cases = [
        (
            Checkpoint {
                origin: String::new(),
                ..checkpoint()
            },
            "checkpoint cannot be signed: origin is empty",
        ),
        (
            Checkpoint {
                origin: "two words".to_owned(),
                ..checkpoint()
            },
            "checkpoint cannot be signed: origin `two words` holds whitespace or control characters",
        ),
        (
            Checkpoint {
                origin: "line\nbreak".to_owned(),
                ..checkpoint()
            },
            "checkpoint cannot be signed: origin `line\\nbreak` holds whitespace or control characters",
        ),
        (
            Checkpoint {
                time_millis: -1,
                ..checkpoint()
            },
            "checkpoint cannot be signed: time -1 ms since the Unix epoch is outside \
             1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z",
        ),
    ];
    for (checkpoint, message) in cases {
        assert_eq!(sign(&checkpoint, &key()).unwrap_err().to_string(), message);
    }
}

proptest! {
    // Ed25519 is slow in unoptimised test builds.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_checkpoint_round_trips(
        origin in "[a-z0-9.]{1,20}(/[a-zA-Z0-9._-]{1,20}){0,3}",
        size: u64,
        root_data: Vec<u8>,
        time_millis in 0i64..=253_402_300_799_999,
    ) {
        let checkpoint = Checkpoint { origin, size, root: leaf_hash(&root_data), time_millis };
        let note = sign(&checkpoint, &key()).unwrap();
        prop_assert_eq!(open(&note, &key().verifier_key()), Ok(checkpoint));
    }
}
