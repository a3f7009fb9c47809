//! Property tests: generated proofs verify for any tree, and any single-bit flip or truncation
//! of a proof, or of the hashes it is checked against, is refused; the compact range's root is
//! the tree's root at every size.

// Integration tests are test code too: this lets clippy apply its test allowances (unwrap,
// expect, panic) to their helpers, not only to #[test] functions.
#![cfg(test)]

use latch_ledger::{
    CompactRange, EMPTY_ROOT, Hash, consistency_proof, inclusion_proof, leaf_hash, root,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

/// Distinct leaf hashes for a tree, derived from a seed so that cases shrink to small numbers.
fn leaves(seed: u64, size: u64) -> Vec<Hash> {
    (0..size)
        .map(|i| leaf_hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut bytes = *hash.as_bytes();
    bytes[bit / 8] ^= 1 << (bit % 8);
    Hash::from_bytes(bytes)
}

/// A tree size and a leaf index in it.
fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1u64..=600).prop_flat_map(|size| (Just(size), 0..size))
}

/// Two tree sizes, `0 < size1 <= size2`.
fn two_sizes() -> impl Strategy<Value = (u64, u64)> {
    (1u64..=600).prop_flat_map(|size2| (1..=size2, Just(size2)))
}

proptest! {
    #[test]
    fn inclusion_proofs_verify_and_any_flip_or_cut_is_refused(
        seed: u64,
        (size, index) in size_and_index(),
        bits in prop::collection::vec(0usize..256, 12),
    ) {
        let leaves = leaves(seed, size);
        let tree_root = root(&leaves);
        let leaf = leaves[index as usize];
        let proof = inclusion_proof(&leaves, index).unwrap();
        prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &tree_root), Ok(()));

        // One flipped bit in each proof hash in turn, at a position chosen per hash.
        for (i, bit) in bits.iter().enumerate().take(proof.len()) {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], *bit);
            prop_assert!(verify_inclusion(index, size, &leaf, &bad, &tree_root).is_err());
        }
        prop_assert!(verify_inclusion(index, size, &flip(&leaf, bits[0]), &proof, &tree_root).is_err());
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &flip(&tree_root, bits[1])).is_err());

        if !proof.is_empty() {
            prop_assert!(verify_inclusion(index, size, &leaf, &proof[1..], &tree_root).is_err());
            prop_assert!(verify_inclusion(index, size, &leaf, &proof[..proof.len() - 1], &tree_root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(tree_root);
        prop_assert!(verify_inclusion(index, size, &leaf, &longer, &tree_root).is_err());
        // Another leaf of the same tree is not at this index.
        let other = (index + 1) % size;
        if other != index {
            prop_assert!(verify_inclusion(index, size, &leaves[other as usize], &proof, &tree_root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_flip_or_cut_is_refused(
        seed: u64,
        (size1, size2) in two_sizes(),
        bits in prop::collection::vec(0usize..256, 12),
    ) {
        let leaves = leaves(seed, size2);
        let root1 = root(&leaves[..size1 as usize]);
        let root2 = root(&leaves);
        let proof = consistency_proof(&leaves, size1).unwrap();
        prop_assert_eq!(verify_consistency(size1, size2, &proof, &root1, &root2), Ok(()));
        prop_assert_eq!(proof.is_empty(), size1 == size2);

        for (i, bit) in bits.iter().enumerate().take(proof.len()) {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], *bit);
            prop_assert!(verify_consistency(size1, size2, &bad, &root1, &root2).is_err());
        }
        prop_assert!(verify_consistency(size1, size2, &proof, &flip(&root1, bits[0]), &root2).is_err());
        prop_assert!(verify_consistency(size1, size2, &proof, &root1, &flip(&root2, bits[1])).is_err());

        if !proof.is_empty() {
            prop_assert!(verify_consistency(size1, size2, &proof[1..], &root1, &root2).is_err());
            prop_assert!(verify_consistency(size1, size2, &proof[..proof.len() - 1], &root1, &root2).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root1);
        prop_assert!(verify_consistency(size1, size2, &longer, &root1, &root2).is_err());
        if size1 < size2 {
            prop_assert!(verify_consistency(size1, size2, &proof, &root2, &root1).is_err());
        }
    }
}

proptest! {
    // Fewer cases: each checked size costs a full tree hash, and SHA-256 is slow in unoptimised
    // test builds.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn compact_range_root_is_the_tree_root_for_large_sizes(
        seed: u64,
        size in 0u64..=2000,
        checked in prop::collection::vec(0.0f64..1.0, 4),
    ) {
        let leaves = leaves(seed, size);
        let checked: Vec<usize> = checked.iter().map(|at| (at * size as f64) as usize).collect();
        let mut range = CompactRange::new();
        for (i, leaf) in leaves.iter().enumerate() {
            if checked.contains(&i) {
                prop_assert_eq!(range.root(), root(&leaves[..i]));
            }
            range.append(*leaf);
        }
        prop_assert_eq!(range.root(), root(&leaves));
        // A range saved and resumed goes on as if it had never stopped.
        let mut resumed = CompactRange::from_parts(range.size(), range.hashes().to_vec()).unwrap();
        let next = leaf_hash(b"next");
        resumed.append(next);
        let mut all = leaves.clone();
        all.push(next);
        prop_assert_eq!(resumed.root(), root(&all));
    }
}

#[test]
fn compact_range_root_is_the_tree_root_at_every_size() {
    // Every size up to 520: past 512 and through 511, a range of nine subtrees.
    let leaves = leaves(3, 520);
    let mut range = CompactRange::new();
    assert_eq!(range.root(), EMPTY_ROOT);
    for (i, leaf) in leaves.iter().enumerate() {
        range.append(*leaf);
        assert_eq!(range.root(), root(&leaves[..=i]), "size {}", i + 1);
    }
}

#[test]
fn every_proof_in_small_trees_verifies() {
    // Exhaustive where proptest samples: every leaf and every pair of sizes up to 70 leaves.
    let leaves = leaves(7, 70);
    let roots: Vec<Hash> = (0..=leaves.len()).map(|n| root(&leaves[..n])).collect();
    for size2 in 1..=leaves.len() {
        let tree = &leaves[..size2];
        for (index, leaf) in tree.iter().enumerate() {
            let proof = inclusion_proof(tree, index as u64).unwrap();
            let verdict = verify_inclusion(index as u64, size2 as u64, leaf, &proof, &roots[size2]);
            assert_eq!(verdict, Ok(()), "leaf {index} of {size2}");
        }
        for size1 in 1..=size2 {
            let proof = consistency_proof(tree, size1 as u64).unwrap();
            let verdict = verify_consistency(
                size1 as u64,
                size2 as u64,
                &proof,
                &roots[size1],
                &roots[size2],
            );
            assert_eq!(verdict, Ok(()), "{size1} to {size2}");
        }
    }
}
