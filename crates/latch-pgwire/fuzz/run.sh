#!/usr/bin/env bash
# Fuzzes latch-pgwire's client-side decoders for N seconds (default 30); CI calls this.
# cargo-fuzz needs nightly-only rustc flags: RUSTC_BOOTSTRAP=1 enables them on the stable
# toolchain. Installs cargo-fuzz from crates.io when it is missing.
# Exit status: non-zero when the fuzzer found a crash (the input is under fuzz/artifacts/).
set -euo pipefail
seconds="${1:-30}"
cd "$(dirname "$0")"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz run frontend -- -max_total_time="$seconds" -max_len=4096
