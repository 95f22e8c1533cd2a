#!/usr/bin/env bash
# A sweep's memory must not grow with its runs: sweeps $SMALL_SEEDS and
# $LARGE_SEEDS (default 1..41 and 1..1001) of short random runs
# ($DURATION of simulated time each, default 100ms, the fixed world of
# `--swarm off`: three members, every fault class, so the heaviest seed of
# both sweeps is alike) and
# fails if the larger sweep's peak RSS exceeds the smaller one's by more
# than $MAX_GROWTH_KB (default 4096); a flat sweep differs by what its
# heaviest seed needs (under 1 MB measured).
#
# What it catches: a leak of each run's simulation (about 1 MB a run when
# madsim's leftover tasks were not freed) or anything else that keeps more
# than ~15 KB a run. What it misses: a sweep keeping each run's report
# (about 1 KB a run): the memory the runs freed absorbs that, so peak RSS
# stays flat for thousands of runs. The test suite catches that one on
# the heap (sim/tests/sweep_memory.rs).
#
#   ci/memory.sh                 # under 10 s on 2 cores with a warm build
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL_SEEDS="${SMALL_SEEDS:-1..41}"
LARGE_SEEDS="${LARGE_SEEDS:-1..1001}"
DURATION="${DURATION:-100ms}"
MAX_GROWTH_KB="${MAX_GROWTH_KB:-4096}"
cargo build --quiet --release -p sim --all-features
sim="${CARGO_TARGET_DIR:-target}/release/sim"

# Peak RSS in KB of a sweep of the seeds $1 (the sweep must pass).
peak_kb() {
  python3 - "$sim" sweep --no-catalogue --swarm off --duration "$DURATION" --seeds "$1" <<'PY'
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
if run.returncode != 0:
    sys.exit(f"ci/memory.sh: {' '.join(sys.argv[1:])} exited with {run.returncode}")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}

small="$(peak_kb "$SMALL_SEEDS")"
large="$(peak_kb "$LARGE_SEEDS")"
growth=$((large - small))
echo "sweep peak RSS: $small KB for seeds $SMALL_SEEDS, $large KB for $LARGE_SEEDS ($DURATION runs): +$growth KB"
if [ "$growth" -gt "$MAX_GROWTH_KB" ]; then
  echo "ci/memory.sh: the sweep's memory grows with its runs (+$growth KB > $MAX_GROWTH_KB KB)" >&2
  exit 1
fi
