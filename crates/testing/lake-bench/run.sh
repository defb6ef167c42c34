#!/usr/bin/env bash
# The Lake benchmark end to end, from the workspace root:
#   crates/testing/lake-bench/run.sh INPUT OUT [RUNS] [RAW_RUNS]
# INPUT: CloudTrail .json.gz files (python3 benches/gen_cloudtrail.py --out INPUT --events N --seed 42)
# OUT:   a new folder: the event log (deleted after loading), the lake, results *.json
# Builds opentrail-lake-bench in the `fast` profile, creates a bench-local venv
# (target/lake-bench-venv) with DuckDB 1.5.6 and pyarrow from PyPI, loads INPUT into one
# all-events store with the lake writer, then runs queries.sql with OpenTrail's
# DataFusionEngine, DuckDB over the same Parquet files, and DuckDB over INPUT's raw files.
# Set SKIP_RAW=1 to leave out the raw-file runs (minutes each).
set -euo pipefail
INPUT=${1:?usage: run.sh INPUT OUT [RUNS] [RAW_RUNS]}
OUT=${2:?usage: run.sh INPUT OUT [RUNS] [RAW_RUNS]}
RUNS=${3:-5}
RAW_RUNS=${4:-1}
HERE=crates/testing/lake-bench
# The allocator settings `opentrail serve` runs with (it starts itself again with this set).
export MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:-25}
export MIMALLOC_PURGE_DECOMMITS=${MIMALLOC_PURGE_DECOMMITS:-0}
VENV=target/lake-bench-venv

# The same package set as the other benchmarks' build (crates/testing/bench/README.md): a
# build of this package alone unifies dependency features differently and recompiles
# DataFusion (about an hour on the 2-core machine) instead of reusing it.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --profile fast -p opentrail-lake-bench -p opentrail-server -p opentrail-bench
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q duckdb==1.5.6 pyarrow==26.0.1

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
target/fast/opentrail-lake-bench load --input "$INPUT" --out "$OUT"
echo "== opentrail (DataFusionEngine), $RUNS runs"
target/fast/opentrail-lake-bench query --out "$OUT" --queries "$HERE/queries.sql" --runs "$RUNS" \
    --json-out "$OUT/opentrail.json"
GLOB=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["parquet_glob"])' "$OUT/load.json")
echo "== duckdb over the same Parquet files, $RUNS runs"
"$VENV/bin/python" "$HERE/duckdb_bench.py" --queries "$HERE/queries.sql" --runs "$RUNS" \
    --parquet-glob "$GLOB" --json-out "$OUT/duckdb-parquet.json"
if [ "${SKIP_RAW:-0}" != 1 ]; then
    echo "== duckdb over the raw .json.gz files, $RAW_RUNS run(s)"
    "$VENV/bin/python" "$HERE/duckdb_bench.py" --queries "$HERE/queries.sql" --raw-runs "$RAW_RUNS" \
        --raw-input "$INPUT" --json-out "$OUT/duckdb-raw.json"
fi
echo "== load $(cut -d' ' -f1-3 /proc/loadavg)"
