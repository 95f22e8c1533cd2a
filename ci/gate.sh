#!/usr/bin/env bash
# The regression gate: the test suite, then a sweep of consecutive seeds of
# the default random run (3 members, 20 simulated seconds, every fault
# class), then every scenario of the catalogue with a few seeds, then the
# sensitivity gate (below), then ci/memory.sh (a sweep's peak RSS must not
# grow with its runs). All run even if one fails; JUnit reports and
# coverage JSON go to $JUNIT_DIR. Exit non-zero on any failure; each
# failing run prints the command that reproduces it.
#
# The sensitivity gate: a green sweep must also still reach what it used
# to reach.
# - coverage: every probe listed in ci/expected-hits-random.txt must be hit
#   by some run of the random sweep, and likewise for the catalogue sweep
#   and ci/expected-hits-scenarios.txt (`sim coverage check`);
# - detection: each known-bug switch's first failing random seed must stay
#   within ci/detection-thresholds.txt (`sim detect`);
# - crash states: power-loss states at every sync and process-crash states
#   before every disk operation, of every member of every catalogue
#   scenario, must boot to the run's state (`sim explore`); and every
#   combination of the members' power-loss states at the first sync after
#   each 100 ms of every catalogue scenario, booted as a cluster, must
#   converge, keep every acknowledged write and match the run's state per
#   index (`sim explore --cluster`).
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
cargo nextest run --workspace --all-features --release
# One build for everything: the known-bug switches are off unless named.
cargo build --quiet --release -p sim --all-features
sim="${CARGO_TARGET_DIR:-target}/release/sim"
status=0
"$sim" sweep --no-catalogue --seeds "$SEEDS" --junit "$JUNIT_DIR/sim-random.xml" || status=1
"$sim" sweep --scenarios '*' --seeds "$SCENARIO_SEEDS" \
  --junit "$JUNIT_DIR/sim-scenarios.xml" || status=1
for sweep in random scenarios; do
  "$sim" coverage check --expected "ci/expected-hits-$sweep.txt" \
    "$JUNIT_DIR/sim-$sweep.coverage.json" || status=1
done
"$sim" detect --thresholds ci/detection-thresholds.txt || status=1
"$sim" explore --scenario '*' --all-members || status=1
"$sim" explore --cluster --scenario '*' --at-ms "$(seq -s, 100 100 2000)" || status=1
ci/memory.sh || status=1
exit "$status"
