#!/usr/bin/env bash
# One shard of a large sweep: `ci/shard.sh INDEX COUNT` runs partition
# INDEX of COUNT (1-based, `sim sweep --partition count:INDEX/COUNT`, the
# convention of `cargo nextest --partition`) of the random run over $SEEDS
# (default 1..100001) and of the whole catalogue over $SCENARIO_SEEDS
# (default 1..1001). Runs are dealt round-robin, so partitions 1..COUNT are
# disjoint and together are the whole sweep. Each sweep writes a JUnit
# report and a summary into $JUNIT_DIR; `sim merge-reports` adds the
# shards' files up (the workflow's merge job). A failing seed prints its
# reproduce command, which does not depend on the shard.
#
#   TIME_BUDGET=50m ci/shard.sh 3 8     # shard 3 of 8, stop starting runs at 50 min
#
# Extra arguments after COUNT go to both sweeps (e.g. `--jobs 4`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: ci/shard.sh INDEX COUNT [sweep args...]" >&2; exit 2; }
index="$1"; count="$2"; shift 2
[ "$count" -ge 1 ] && [ "$index" -ge 1 ] && [ "$index" -le "$count" ] ||
  { echo "ci/shard.sh: need 1 <= INDEX <= COUNT" >&2; exit 2; }
SEEDS="${SEEDS:-1..100001}"
SCENARIO_SEEDS="${SCENARIO_SEEDS:-1..1001}"
TIME_BUDGET="${TIME_BUDGET:-}"
JUNIT_DIR="${JUNIT_DIR:-target/junit}"
mkdir -p "$JUNIT_DIR"

cargo build --quiet --release -p sim
sim="${CARGO_TARGET_DIR:-target}/release/sim"
budget=()
[ -n "$TIME_BUDGET" ] && budget=(--time-budget "$TIME_BUDGET")
part="count:$index/$count"
echo "shard $part: random seeds $SEEDS, scenario seeds $SCENARIO_SEEDS"
status=0
"$sim" sweep --no-catalogue --seeds "$SEEDS" --partition "$part" "${budget[@]}" \
  --junit "$JUNIT_DIR/shard-$index-random.xml" \
  --summary "$JUNIT_DIR/shard-$index-random.json" "$@" || status=1
"$sim" sweep --scenarios '*' --seeds "$SCENARIO_SEEDS" --partition "$part" "${budget[@]}" \
  --junit "$JUNIT_DIR/shard-$index-scenarios.xml" \
  --summary "$JUNIT_DIR/shard-$index-scenarios.json" "$@" || status=1
exit "$status"
