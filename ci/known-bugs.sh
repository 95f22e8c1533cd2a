#!/usr/bin/env bash
# Detection figures of the known-bug switches: for each switch, the wall
# time of its scenario, and how many consecutive random seeds (from 1) it
# takes the random run to catch it, with the wall time to that first
# failure, for each swarm mode in SWARM (default "on off": the random run as
# the main job runs it, each seed drawing its world, and with `--swarm off`,
# the fixed world). Prints a Markdown table. MAX_SEEDS bounds the search
# (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_SEEDS="${MAX_SEEDS:-1000}"
SWARM="${SWARM:-on off}"
cargo build --quiet --release -p sim --features known-bugs
sim=target/release/sim
declare -A scenario=(
  [cindex-before-apply]=12-crash-during-replay
  [cindex-only-on-explicit-commit]=01-batch-commit-crash-follower
  [v2-skipped-with-v3]=04-backend-ahead-of-snapshot
  [v2-put-writes-v3-on-replay]=12-crash-during-replay
  [confchange-double-apply]=05-conf-change-replay
  [no-torn-tail-repair]=07-torn-wal-tail
  [no-fsync-before-send]=10-fsync-errors
  [fsync-retry-after-eio]=13-fsync-retry-after-eio
  [wal-crc-unchecked]=16-bitrot-wal
  [put-ack-before-v3-write]=18-large-put-durability
  [ignore-storage-full]=19-disk-full
  [sync-dir-error-ignored]=20-sync-dir-error
  [wal-read-error-as-eof]=21-latent-sector-error
  [wal-zero-word-as-end]=28-misdirected-wal-write
  [cindex-only-grows]=24-snapshot-restore
  [backup-shift-indexes]=25-backup-restore
  [backup-no-cindex-update]=25-backup-restore
  [snapshot-rename-error-ignored]=30-snapshot-rename-error
  [read-index-before-apply]=22-read-index-before-apply
  [serializable-read-from-stale-snapshot]=23-serializable-read-stale-snapshot
  [serializable-read-before-replay]=31-serializable-read-before-replay
  [range-revision-unchecked]=32-range-revision-unchecked
  [revision-not-restored-after-compaction]=33-revision-reuse-after-compaction
  [lease-read-timed-by-ticks]=34-lease-read-on-a-slow-leader
)
now() { date +%s%N; }
secs() { local ms=$(( ($(now) - $1) / 1000000 )); printf "%d.%03d" $((ms / 1000)) $((ms % 1000)); }
head="| switch | scenario | scenario wall s |"
rule="| --- | --- | --- |"
for mode in $SWARM; do
  head+=" swarm $mode: first failing seed | swarm $mode: wall s to it |"
  rule+=" --- | --- |"
done
echo "$head"
echo "$rule"
for bug in cindex-before-apply cindex-only-on-explicit-commit v2-skipped-with-v3 \
           v2-put-writes-v3-on-replay confchange-double-apply \
           no-torn-tail-repair no-fsync-before-send fsync-retry-after-eio \
           wal-crc-unchecked put-ack-before-v3-write ignore-storage-full \
           sync-dir-error-ignored wal-read-error-as-eof wal-zero-word-as-end \
           cindex-only-grows backup-shift-indexes backup-no-cindex-update \
           snapshot-rename-error-ignored read-index-before-apply \
           serializable-read-from-stale-snapshot serializable-read-before-replay \
           range-revision-unchecked revision-not-restored-after-compaction \
           lease-read-timed-by-ticks; do
  sc="${scenario[$bug]}"
  if [ -n "$sc" ]; then
    t0=$(now)
    if "$sim" run --scenario "$sc" --bug "$bug" >/dev/null 2>&1; then sres="NOT caught"; else sres="caught"; fi
    swall=$(secs "$t0")
    scol="$sc ($sres)"
  else
    scol="-"; swall="-"
  fi
  row="| $bug | $scol | $swall |"
  for mode in $SWARM; do
    t0=$(now); first="not within $MAX_SEEDS"
    for seed in $(seq 1 "$MAX_SEEDS"); do
      if ! "$sim" run --seed "$seed" --swarm "$mode" --bug "$bug" >/dev/null 2>&1; then first="$seed"; break; fi
    done
    row+=" $first | $(secs "$t0") |"
  done
  echo "$row"
done
