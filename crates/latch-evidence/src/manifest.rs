//! `manifest.json`: the pack's table of contents, the SHA-256 of every other file, with the
//! period and checkpoint the pack was made for.

use std::collections::BTreeMap;

use latch_core::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{PACK_FORMAT, Period};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub period: Period,
    /// The size of the checkpoint in `ledger/checkpoint.txt`.
    pub checkpoint_size: u64,
    pub generated_at: Timestamp,
    /// Path (relative, `/`-separated) → SHA-256 hex of every file but the manifest itself.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest of `files` (the manifest itself, if present, is left out).
    pub fn of(
        period: &Period,
        checkpoint_size: u64,
        generated_at: Timestamp,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Self {
        Self {
            period: period.clone(),
            checkpoint_size,
            generated_at,
            files: files
                .iter()
                .filter(|(path, _)| path.as_str() != crate::files::MANIFEST)
                .map(|(path, bytes)| (path.clone(), sha256_hex(bytes)))
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        let value = json!({
            "format": PACK_FORMAT,
            "period": {
                "label": self.period.label,
                "from": self.period.from.to_string(),
                "to": self.period.to.to_string(),
            },
            "checkpoint_size": self.checkpoint_size,
            "generated_at": self.generated_at.to_string(),
            "sha256": self.files,
        });
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }

    /// Reads a manifest; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))?;
        match value.get("format").and_then(Value::as_str) {
            Some(PACK_FORMAT) => {}
            Some(other) => {
                return Err(format!(
                    "format `{other}` is not one this latch reads (`{PACK_FORMAT}`)"
                ));
            }
            None => return Err(format!("no `format` (expected `{PACK_FORMAT}`)")),
        }
        let text_at = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("`{pointer}` is missing or not a string"))
        };
        let time_at = |pointer: &str| {
            let text = text_at(pointer)?;
            Timestamp::parse(text).map_err(|err| format!("`{pointer}`: {err}"))
        };
        let period = Period {
            label: text_at("/period/label")?.to_owned(),
            from: time_at("/period/from")?,
            to: time_at("/period/to")?,
        };
        let checkpoint_size = value
            .get("checkpoint_size")
            .and_then(Value::as_u64)
            .ok_or("`checkpoint_size` is missing or not a number")?;
        let generated_at = time_at("/generated_at")?;
        let files = value
            .get("sha256")
            .and_then(Value::as_object)
            .ok_or("`sha256` is missing or not an object")?
            .iter()
            .map(|(path, digest)| {
                digest
                    .as_str()
                    .map(|d| (path.clone(), d.to_owned()))
                    .ok_or_else(|| format!("`sha256` of `{path}` is not a string"))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            period,
            checkpoint_size,
            generated_at,
            files,
        })
    }
}
