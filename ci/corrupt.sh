#!/usr/bin/env bash
# The exhaustive corruption suite: every byte offset of every file of the
# test data directory (the backend too, ~100k offsets), truncated and with
# one bit flipped. The normal suite samples the backend file; this tries
# all of it (a few minutes in release).
set -euo pipefail
cd "$(dirname "$0")/.."
CORRUPT_EXHAUSTIVE=1 cargo test --release --test corrupt corrupt -- --nocapture --test-threads 2
