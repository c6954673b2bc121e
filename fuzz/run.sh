#!/usr/bin/env bash
# Runs every fuzz target for RUNS executions (default 10 million), each bounded by
# MAX_TIME seconds (default 1800), niced so that other builds keep their share.
#   fuzz/run.sh                 all targets
#   fuzz/run.sh endpoint        one target
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). The crate forbids
# `unsafe`, so the targets run without AddressSanitizer (`--sanitizer none`), several times
# faster; panics, overflows (debug assertions are on) and hangs are what they look for.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
MAX_TIME=${MAX_TIME:-1800}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
declare -A DICT=([basic_header]=dicts/basic.dict [form_params]=dicts/form.dict [endpoint]=dicts/endpoint.dict [jsonp_callback]=dicts/callback.dict [soap_envelope]=dicts/soap.dict)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(basic_header form_params jsonp_callback endpoint soap_envelope)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: $RUNS runs, at most $MAX_TIME s"
  nice cargo +nightly fuzz run --sanitizer none --target-dir "$TARGET_DIR" "$t" "corpus/$t" -- \
    -runs="$RUNS" -max_total_time="$MAX_TIME" -dict="${DICT[$t]}" \
    -print_final_stats=1 -max_len=4096
done
