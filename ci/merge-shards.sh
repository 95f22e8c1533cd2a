#!/usr/bin/env bash
# Merges the reports ci/shard.sh wrote (JUnit files and summaries, possibly
# from many machines, all in directory IN) into one JUnit report and one
# summary per sweep kind in OUT, printing the merged tables:
#
#   ci/merge-shards.sh target/shards target/junit
#
# Exit 1 if any shard's run failed (its reproduce command is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: ci/merge-shards.sh IN OUT" >&2; exit 2; }
in="$1"; out="$2"
mkdir -p "$out"
cargo build --quiet --release -p sim
sim="${CARGO_TARGET_DIR:-target}/release/sim"
status=0
for kind in random scenarios; do
  shopt -s nullglob
  files=("$in"/shard-*-"$kind".xml "$in"/shard-*-"$kind".json)
  shopt -u nullglob
  [ "${#files[@]}" -gt 0 ] || { echo "no $kind shard reports in $in" >&2; status=1; continue; }
  echo "== $kind: ${#files[@]} files"
  "$sim" merge-reports --junit "$out/nightly-$kind.xml" --summary "$out/nightly-$kind.json" \
    "${files[@]}" || status=1
done
exit "$status"
