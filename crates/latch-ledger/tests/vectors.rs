//! Known-answer tests against transparency-dev/merkle's RFC 6962 vectors, which are read from
//! shared/testdata at test time (never copied here), so that the ledger is checked against an
//! implementation that no one on latch wrote.

// Integration tests are test code too: this lets clippy apply its test allowances (unwrap,
// expect, panic) to their helpers, not only to #[test] functions.
#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latch_ledger::{
    CompactRange, Error, Hash, consistency_proof, inclusion_proof, leaf_hash, root,
    verify_consistency, verify_inclusion,
};
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/merkle"
);

/// One vector file: its path under the vectors folder and its JSON.
struct Vector {
    name: String,
    json: Value,
}

impl Vector {
    fn want_err(&self) -> bool {
        self.json["wantErr"].as_bool().unwrap()
    }

    fn number(&self, field: &str) -> u64 {
        self.json[field].as_u64().unwrap()
    }

    fn bytes(&self, field: &str) -> Vec<u8> {
        decode_base64(&self.json[field])
    }

    /// The proof's hashes as bytes; `null` is an empty proof.
    fn proof(&self) -> Vec<Vec<u8>> {
        match &self.json["proof"] {
            Value::Null => Vec::new(),
            Value::Array(items) => items.iter().map(decode_base64).collect(),
            other => panic!("{}: proof is {other}", self.name),
        }
    }
}

fn decode_base64(value: &Value) -> Vec<u8> {
    STANDARD.decode(value.as_str().unwrap()).unwrap()
}

fn vectors(kind: &str) -> Vec<Vector> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("cannot read test vectors in {}: {err}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                found.push(path);
            }
        }
    }
    let base = Path::new(VECTORS);
    let mut paths = Vec::new();
    walk(&base.join(kind), &mut paths);
    paths.sort();
    assert!(!paths.is_empty(), "no {kind} vectors under {VECTORS}");
    paths
        .into_iter()
        .map(|path| Vector {
            name: path.strip_prefix(base).unwrap().display().to_string(),
            json: serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap(),
        })
        .collect()
}

/// How a vector's byte strings become hashes.
///
/// `strict` is what a real verifier does with bytes off the wire: anything but 32 bytes is
/// refused before any proof is checked. The vectors were written for Go's byte-slice API, and a
/// few use short placeholders ("don't care 1") where any value would do; `stand_in` maps those to
/// a distinct 32-byte hash, so that what the verifier itself decides can be checked too.
type Decode = fn(&[u8]) -> Result<Hash, Error>;

fn strict(bytes: &[u8]) -> Result<Hash, Error> {
    Hash::from_slice(bytes)
}

fn stand_in(bytes: &[u8]) -> Result<Hash, Error> {
    Ok(Hash::from_slice(bytes).unwrap_or_else(|_| leaf_hash(bytes)))
}

fn decode_proof(proof: &[Vec<u8>], decode: Decode) -> Result<Vec<Hash>, Error> {
    proof.iter().map(|bytes| decode(bytes)).collect()
}

fn check_inclusion(vector: &Vector, decode: Decode) -> Result<(), Error> {
    let leaf = decode(&vector.bytes("leafHash"))?;
    let root = decode(&vector.bytes("root"))?;
    let proof = decode_proof(&vector.proof(), decode)?;
    verify_inclusion(
        vector.number("leafIdx"),
        vector.number("treeSize"),
        &leaf,
        &proof,
        &root,
    )
}

fn check_consistency(vector: &Vector, decode: Decode) -> Result<(), Error> {
    let root1 = decode(&vector.bytes("root1"))?;
    let root2 = decode(&vector.bytes("root2"))?;
    let proof = decode_proof(&vector.proof(), decode)?;
    verify_consistency(
        vector.number("size1"),
        vector.number("size2"),
        &proof,
        &root1,
        &root2,
    )
}

/// Checks every vector of a kind against its `wantErr` and returns what had to be excused: the
/// valid vectors that needed stand-ins, and the invalid ones that only strict decoding refuses.
fn check_all(kind: &str, check: fn(&Vector, Decode) -> Result<(), Error>) -> Excused {
    let mut excused = Excused::default();
    let (mut valid, mut refused_by_decoding, mut refused_by_verifier) = (0, 0, 0);
    for vector in vectors(kind) {
        let strict_result = check(&vector, strict);
        let stand_in_result = check(&vector, stand_in);
        if vector.want_err() {
            match strict_result {
                Ok(()) => panic!("{}: accepted, but the vector is invalid", vector.name),
                Err(Error::HashLength { .. }) => refused_by_decoding += 1,
                Err(_) => refused_by_verifier += 1,
            }
            if stand_in_result.is_ok() {
                excused.only_by_decoding.push(vector.name);
            }
        } else {
            match strict_result {
                Ok(()) => {}
                Err(Error::HashLength { .. }) => {
                    assert_eq!(stand_in_result, Ok(()), "{}", vector.name);
                    excused.needed_stand_ins.push(vector.name);
                }
                Err(err) => panic!("{}: refused a valid vector: {err}", vector.name),
            }
            valid += 1;
        }
    }
    println!(
        "{kind}: {valid} valid vectors verified; invalid ones refused: {refused_by_verifier} by \
         the verifier, {refused_by_decoding} at decoding"
    );
    assert!(
        valid > 0 && refused_by_verifier > 0,
        "{kind}: too few vectors"
    );
    excused
}

#[derive(Default)]
struct Excused {
    needed_stand_ins: Vec<String>,
    only_by_decoding: Vec<String>,
}

#[test]
fn inclusion_vectors_verify_or_are_refused_as_labelled() {
    let excused = check_all("inclusion", check_inclusion);
    assert_eq!(excused.needed_stand_ins, Vec::<String>::new());
    // Root and leaf are both empty byte strings: only their length is wrong, which a Hash cannot
    // even express.
    assert_eq!(
        excused.only_by_decoding,
        ["inclusion/single-entry/empty-root-and-leaf.json"]
    );
}

#[test]
fn consistency_vectors_verify_or_are_refused_as_labelled() {
    let excused = check_all("consistency", check_consistency);
    // Equal sizes, an empty proof and equal (placeholder) roots: valid whatever the roots are.
    assert_eq!(
        excused.needed_stand_ins,
        ["consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"]
    );
    assert_eq!(excused.only_by_decoding, Vec::<String>::new());
}

fn readme() -> String {
    fs::read_to_string(Path::new(VECTORS).join("README.md")).unwrap()
}

fn decode_hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The README's standard RFC 6962 leaves: backquoted hex after "in order:", `""` being empty.
fn standard_leaves() -> Vec<Hash> {
    let readme = readme();
    let (_, rest) = readme.split_once("in order:").unwrap();
    let (list, _) = rest.split_once("Tree roots").unwrap();
    let leaves: Vec<Hash> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|token| leaf_hash(&decode_hex(token.trim_matches('"'))))
        .collect();
    assert_eq!(leaves.len(), 8);
    leaves
}

/// The README's table of roots over the first n standard leaves.
fn readme_roots() -> Vec<(usize, String)> {
    readme()
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", n, root, ""] => Some((n.parse().ok()?, (*root).to_owned())),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn roots_over_the_standard_leaves_match_the_readme_table() {
    let leaves = standard_leaves();
    let table = readme_roots();
    assert_eq!(table.len(), 8);
    let mut range = CompactRange::new();
    for (n, want) in table {
        assert_eq!(root(&leaves[..n]).to_string(), want, "root of {n} leaves");
        while range.size() < n as u64 {
            range.append(leaves[range.size() as usize]);
        }
        assert_eq!(
            range.root().to_string(),
            want,
            "compact range of {n} leaves"
        );
    }
}

fn decoded_proof(vector: &Vector) -> Vec<Hash> {
    decode_proof(&vector.proof(), strict).unwrap()
}

#[test]
fn generated_proofs_equal_the_reference_proofs() {
    let leaves = standard_leaves();
    let over_standard_leaves = |size: u64, root_bytes: Vec<u8>| {
        let size = size as usize;
        size <= leaves.len() && Hash::from_slice(&root_bytes) == Ok(root(&leaves[..size]))
    };
    let mut compared = 0;
    for vector in vectors("inclusion") {
        let size = vector.number("treeSize");
        if vector.want_err() || !over_standard_leaves(size, vector.bytes("root")) {
            continue;
        }
        let generated = inclusion_proof(&leaves[..size as usize], vector.number("leafIdx"));
        assert_eq!(generated, Ok(decoded_proof(&vector)), "{}", vector.name);
        compared += 1;
    }
    for vector in vectors("consistency") {
        let size2 = vector.number("size2");
        if vector.want_err() || !over_standard_leaves(size2, vector.bytes("root2")) {
            continue;
        }
        let generated = consistency_proof(&leaves[..size2 as usize], vector.number("size1"));
        assert_eq!(generated, Ok(decoded_proof(&vector)), "{}", vector.name);
        compared += 1;
    }
    // The five happy paths of each kind.
    assert_eq!(compared, 10);
}
