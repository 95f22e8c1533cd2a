#!/usr/bin/env bash
# Fuzzes the decoders of damaged input for a bounded time per target:
# WAL segments, v2 snapshot files, the backend's meta values (and snapshot
# blob). Seeds come from a real data directory (tests/fuzz_inputs.rs).
#
# Needs a nightly toolchain; cargo-fuzz is installed from crates.io if it is
# missing. Without nightly, the same inputs run as proptest cases instead
# (FUZZ_CASES per property).
#
#   FUZZ_SECONDS=60 ci/fuzz.sh          # per target
#   ci/fuzz.sh wal_segments             # one target
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(wal_segments v2_snapshot backend_meta)

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "ci/fuzz.sh: no nightly toolchain; running the proptest equivalents"
  FUZZ_CASES="${FUZZ_CASES:-100000}" cargo test --release --test fuzz_inputs fuzz_
  exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT
FUZZ_SEED_DIR="$seeds" cargo test --test fuzz_inputs write_fuzz_seeds -- --ignored

cd fuzz
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  echo "== $target: ${SECONDS_PER_TARGET}s"
  # The fuzz crate has its own target dir: its build flags differ.
  env -u CARGO_TARGET_DIR cargo +nightly fuzz run "$target" "corpus/$target" "$seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
