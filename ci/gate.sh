#!/usr/bin/env bash
# The regression gate: the test suite, then a sweep of consecutive seeds of
# the default random run (3 members, 20 simulated seconds, every fault
# class). Exit non-zero on any failure; each failing seed prints the command
# that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${SEEDS:-1..201}"
cargo nextest run --workspace --all-features
cargo run --release -p sim -- sweep --seeds "$SEEDS"
