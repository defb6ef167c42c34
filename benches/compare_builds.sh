#!/usr/bin/env bash
# The events and delivery benchmarks of one `fast` build, run from its checkout, so two
# builds (say, two commits in two worktrees) can be measured back to back:
#
#   benches/compare_builds.sh CHECKOUT LABEL     # writes /tmp/bench-LABEL.txt
#
# CHECKOUT is a checkout with `cargo build --profile fast -p opentrail-server -p opentrail-bench`
# done (CARGO_TARGET_DIR is honoured); /tmp/ct1m is the reference dataset
# (python3 benches/gen_cloudtrail.py --out /tmp/ct1m --events 1000000 --seed 42).
set -uo pipefail
cd "$1" || exit 1
bin=${CARGO_TARGET_DIR:-target}/fast
out=/tmp/bench-$2.txt
python=${PYTHON:-python3}
: >"$out"
run() { echo "### $*" >>"$out"; "$@" >>"$out" 2>&1; echo >>"$out"; }
run "$bin/opentrail-bench" ingest --input /tmp/ct1m --concurrency 3 --opentrail-bin "$bin/opentrail"
run "$bin/opentrail-bench" import --input /tmp/ct1m --opentrail-bin "$bin/opentrail"
run "$bin/opentrail-bench" delivery --input /tmp/ct1m --opentrail-bin "$bin/opentrail"
run "$bin/opentrail-bench" api-latency --requests 1000 --opentrail-bin "$bin/opentrail"
run "$python" benches/history_visibility.py --input /tmp/ct1m --rate 50000 --duration 20 --watch-every 0.1 --binary "$bin/opentrail"
echo "results in $out"
