//! Signed notes (C2SP signed-note, as golang.org/x/mod/sumdb/note writes them): a text, a blank
//! line, then one line per signature, `— <key name> <base64(4-byte key hash || signature)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::keys::check_name;
use crate::{Error, SigningKey, VerifierKey};

/// What starts a signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// At most this many signature lines are read, as in the Go implementation, so that a note
/// stuffed with signatures cannot make a verifier work without bound.
const MAX_SIGNATURES: usize = 100;

/// Signs `text`, which the caller has checked is non-empty, ends with a newline, holds no blank
/// line and no control characters other than newlines.
pub(crate) fn sign_text(text: &str, key: &SigningKey) -> String {
    let mut payload = Vec::with_capacity(68);
    payload.extend_from_slice(&key.key_hash().to_be_bytes());
    payload.extend_from_slice(&key.sign(text.as_bytes()));
    format!(
        "{text}\n{SIGNATURE_PREFIX}{} {}\n",
        key.name(),
        STANDARD.encode(payload)
    )
}

/// Checks that `note` carries a valid signature by `key` and returns its text (ending with a
/// newline). Signatures by other keys, such as witness cosignatures, are ignored, but every
/// line must still be a well-formed signature line.
pub(crate) fn open_text<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, Error> {
    let malformed = |reason: String| Error::MalformedNote { reason };
    // Control characters (carriage returns above all) would let two notes look alike.
    for (number, line) in note.split('\n').enumerate() {
        if let Some(c) = line.chars().find(char::is_ascii_control) {
            return Err(malformed(format!(
                "line {} holds the control character U+{:04X}, and only newlines are allowed",
                number + 1,
                u32::from(c)
            )));
        }
    }
    let split = note.rfind("\n\n").ok_or_else(|| {
        malformed("no blank line separates the text from its signature lines".to_owned())
    })?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(malformed(
            "no signature line follows the last blank line".to_owned(),
        ));
    }
    if !signatures.ends_with('\n') {
        return Err(malformed(
            "the last signature line does not end with a newline".to_owned(),
        ));
    }

    // The text's lines, then the blank line, then the signature lines.
    let first_line = text.matches('\n').count() + 2;
    let mut signed = false;
    for (i, line) in signatures.split_terminator('\n').enumerate() {
        let number = first_line + i;
        if i == MAX_SIGNATURES {
            return Err(malformed(format!(
                "it has more than {MAX_SIGNATURES} signature lines"
            )));
        }
        let (name, key_hash, signature) =
            parse_signature_line(line).map_err(|reason| Error::MalformedSignatureLine {
                line: number,
                reason,
            })?;
        if name != key.name() || key_hash != key.key_hash() {
            continue;
        }
        if !key.verifies(text.as_bytes(), signature.as_slice()) {
            return Err(Error::BadSignature {
                name: name.to_owned(),
                key_hash,
                line: number,
            });
        }
        signed = true;
    }
    if !signed {
        return Err(Error::NoSignature {
            name: key.name().to_owned(),
            key_hash: key.key_hash(),
        });
    }
    Ok(text)
}

/// Splits a signature line into its key name, key hash and signature bytes.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), String> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| "expected it to start with `— ` (an em dash and a space)".to_owned())?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| "expected `— <key name> <base64 signature>`".to_owned())?;
    check_name(name)
        .map_err(|_| format!("key name `{name}` is empty or holds whitespace or `+`"))?;
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| format!("signature `{encoded}` is not padded standard base64"))?;
    match decoded.split_first_chunk::<4>() {
        Some((key_hash, signature)) if !signature.is_empty() => {
            Ok((name, u32::from_be_bytes(*key_hash), signature.to_vec()))
        }
        _ => Err(format!(
            "signature is {} bytes, expected a 4-byte key hash and the signature",
            decoded.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The note, keys and signatures of golang.org/x/mod/sumdb/note's tests: Ed25519 is
    // deterministic, so signing the same text must give the same line.
    const GO_PRIVATE: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const GO_ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter() -> VerifierKey {
        VerifierKey::parse(GO_VERIFIER).unwrap()
    }

    #[test]
    fn signs_exactly_as_go_does() {
        let key = SigningKey::parse(GO_PRIVATE).unwrap();
        assert_eq!(
            sign_text(GO_TEXT, &key),
            format!("{GO_TEXT}\n{GO_PETER_SIG}")
        );
    }

    #[test]
    fn opens_go_notes_and_ignores_other_signers() {
        let note = format!("{GO_TEXT}\n{GO_PETER_SIG}");
        assert_eq!(open_text(&note, &peter()), Ok(GO_TEXT));
        let cosigned = format!("{GO_TEXT}\n{GO_ENOCH_SIG}{GO_PETER_SIG}");
        assert_eq!(open_text(&cosigned, &peter()), Ok(GO_TEXT));
        let only_enoch = format!("{GO_TEXT}\n{GO_ENOCH_SIG}");
        assert_eq!(
            open_text(&only_enoch, &peter()),
            Err(Error::NoSignature {
                name: "PeterNeumann".to_owned(),
                key_hash: 0xc74f20a3
            })
        );
    }

    #[test]
    fn refuses_a_corrupt_signature_by_the_key() {
        let (head, tail) = GO_PETER_SIG.split_at(60);
        let note = format!("{GO_TEXT}\n{head}ABCD{tail}");
        assert_eq!(
            open_text(&note, &peter()),
            Err(Error::BadSignature {
                name: "PeterNeumann".to_owned(),
                key_hash: 0xc74f20a3,
                line: 4
            })
        );
        // A good signature does not excuse a bad one by the same key.
        let both = format!("{GO_TEXT}\n{GO_PETER_SIG}{head}ABCD{tail}");
        assert!(matches!(
            open_text(&both, &peter()),
            Err(Error::BadSignature { line: 5, .. })
        ));
    }

    #[test]
    fn refuses_malformed_notes() {
        let (sig_without_newline, _) = GO_PETER_SIG.split_at(GO_PETER_SIG.len() - 1);
        let bad = [
            GO_TEXT.to_owned(),
            format!("{GO_TEXT}\n"),
            format!("{GO_TEXT}\n{sig_without_newline}"),
            format!("\u{1}{GO_TEXT}\n{GO_PETER_SIG}"),
            format!("{GO_TEXT}\r\n{GO_PETER_SIG}"),
            format!(
                "{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            format!("{GO_TEXT}\n{GO_PETER_SIG}Unexpected line.\n"),
            format!("{GO_TEXT}\n{}", GO_PETER_SIG.repeat(MAX_SIGNATURES + 1)),
        ];
        for note in bad {
            assert!(
                matches!(
                    open_text(&note, &peter()),
                    Err(Error::MalformedNote { .. } | Error::MalformedSignatureLine { .. })
                ),
                "accepted or misjudged {note:?}"
            );
        }
        assert_eq!(
            open_text(
                &format!("{GO_TEXT}\n{GO_PETER_SIG}Unexpected line.\n"),
                &peter()
            )
            .unwrap_err()
            .to_string(),
            "signature line (line 5 of the note) is malformed: expected it to start with `— ` (an em dash and a space)"
        );
        assert_eq!(
            open_text(&format!("{GO_TEXT}\r\n{GO_PETER_SIG}"), &peter())
                .unwrap_err()
                .to_string(),
            "signed note is malformed: line 3 holds the control character U+000D, and only newlines are allowed"
        );
    }
}
