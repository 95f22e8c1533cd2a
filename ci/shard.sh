#!/usr/bin/env bash
# One shard of a large sweep: `ci/shard.sh INDEX COUNT` runs the INDEX-th
# (0-based) of COUNT disjoint, contiguous slices of the seed range $SEEDS
# (default 1..100001) of the random run, and the same slice of
# $SCENARIO_SEEDS (default 1..1001) over the whole scenario catalogue. The
# slices of INDEX = 0..COUNT-1 cover each range exactly once, so a nightly
# job can fan out over a matrix of COUNT runners. A failing seed prints its
# reproduce command, which does not depend on the shard.
#
#   TIME_BUDGET=50m ci/shard.sh 3 8     # shard 3 of 8, stop starting runs at 50 min
#
# Extra arguments after COUNT go to both sweeps (e.g. `--jobs 4`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: ci/shard.sh INDEX COUNT [sweep args...]" >&2; exit 2; }
index="$1"; count="$2"; shift 2
[ "$count" -ge 1 ] && [ "$index" -ge 0 ] && [ "$index" -lt "$count" ] ||
  { echo "ci/shard.sh: need 0 <= INDEX < COUNT" >&2; exit 2; }
SEEDS="${SEEDS:-1..100001}"
SCENARIO_SEEDS="${SCENARIO_SEEDS:-1..1001}"
TIME_BUDGET="${TIME_BUDGET:-}"
JUNIT_DIR="${JUNIT_DIR:-target/junit}"
mkdir -p "$JUNIT_DIR"

# The INDEX-th of COUNT contiguous slices of A..B (B excluded); empty slices
# are skipped. Slice i is [A + i*len/COUNT, A + (i+1)*len/COUNT).
slice() {
  local a="${1%..*}" b="${1#*..}"
  local len=$((b - a))
  echo "$((a + index * len / count))..$((a + (index + 1) * len / count))"
}

cargo build --quiet --release -p sim
sim="${CARGO_TARGET_DIR:-target}/release/sim"
budget=()
[ -n "$TIME_BUDGET" ] && budget=(--time-budget "$TIME_BUDGET")
status=0
random="$(slice "$SEEDS")"
scen="$(slice "$SCENARIO_SEEDS")"
echo "shard $index/$count: random seeds $random, scenario seeds $scen"
if [ "${random%..*}" != "${random#*..}" ]; then
  "$sim" sweep --no-catalogue --seeds "$random" "${budget[@]}" \
    --junit "$JUNIT_DIR/shard-$index-random.xml" "$@" || status=1
fi
if [ "${scen%..*}" != "${scen#*..}" ]; then
  "$sim" sweep --scenarios '*' --seeds "$scen" "${budget[@]}" \
    --junit "$JUNIT_DIR/shard-$index-scenarios.xml" "$@" || status=1
fi
exit "$status"
