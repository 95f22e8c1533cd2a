#!/usr/bin/env bash
# The regression gate: the test suite, then a sweep of consecutive seeds of
# the default random run (3 members, 20 simulated seconds, every fault
# class), then every scenario of the catalogue with a few seeds, then
# ci/memory.sh (a sweep's peak RSS must not grow with its runs). All three
# run even if one fails; JUnit reports go to $JUNIT_DIR. Exit non-zero on
# any failure; each failing run prints the command that reproduces it.
#
#   SEEDS=1..201 SCENARIO_SEEDS=1..21 JUNIT_DIR=target/junit ci/gate.sh
#
# Sized for a 2-core runner: well under 10 minutes with a warm build cache
# (see ci/README.md for the measured figures).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${SEEDS:-1..201}"
SCENARIO_SEEDS="${SCENARIO_SEEDS:-1..21}"
JUNIT_DIR="${JUNIT_DIR:-target/junit}"
mkdir -p "$JUNIT_DIR"
cargo nextest run --workspace --all-features
cargo build --quiet --release -p sim
sim="${CARGO_TARGET_DIR:-target}/release/sim"
status=0
"$sim" sweep --no-catalogue --seeds "$SEEDS" --junit "$JUNIT_DIR/sim-random.xml" || status=1
"$sim" sweep --scenarios '*' --seeds "$SCENARIO_SEEDS" \
  --junit "$JUNIT_DIR/sim-scenarios.xml" || status=1
ci/memory.sh || status=1
exit "$status"
