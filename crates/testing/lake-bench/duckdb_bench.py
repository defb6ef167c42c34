#!/usr/bin/env python3
"""DuckDB side of the Lake benchmark: the queries of queries.sql with DuckDB (2 threads),
over the Parquet files OpenTrail's lake writer wrote and over the raw CloudTrail .json.gz
files. `$EDS` becomes a view (`lake` or `raw`); the SQL is otherwise the same text
OpenTrail runs. Prints one line per query and writes JSON results with --json-out.

A result is fetched the way the OpenTrail side gets it: small results as Python rows
(OpenTrail renders them to strings); `d_*` queries (whole table) as Arrow record batches,
counted and dropped, never held together (OpenTrail streams and counts Arrow batches).
"""
import argparse
import json
import math
import re
import sys
import time

import duckdb


def parse_queries(text):
    queries = []
    for line in text.splitlines():
        m = re.match(r"\s*-- name:\s*(\S+)", line)
        if m:
            queries.append([m.group(1), ""])
        elif queries and line.strip() and not line.lstrip().startswith("--"):
            queries[-1][1] += line.rstrip() + "\n"
    return [(name, sql.strip().rstrip(";")) for name, sql in queries]


def quote(text):
    return "'" + text.replace("'", "''") + "'"


def percentile(sorted_values, p):
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def run(con, sql, streamed):
    cursor = con.execute(sql)
    if streamed:
        rows = 0
        for batch in cursor.to_arrow_reader(122_880):
            rows += batch.num_rows
        return rows
    return len(cursor.fetchall())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet-glob", help="the store's Parquet files")
    ap.add_argument("--raw-input", help="folder of the raw .json.gz files")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--raw-runs", type=int, default=1)
    ap.add_argument("--only", help="comma-separated query names")
    ap.add_argument("--raw-only", help="comma-separated query names to run over raw files")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json-out")
    a = ap.parse_args()

    queries = parse_queries(open(a.queries).read())
    if a.only:
        wanted = a.only.split(",")
        queries = [q for q in queries if q[0] in wanted]
    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    results = []
    sources = []
    if a.parquet_glob:
        con.execute(
            f"CREATE VIEW lake AS SELECT * FROM read_parquet({quote(a.parquet_glob)}, hive_partitioning = false)"
        )
        sources.append(("duckdb-parquet", "lake", a.runs, None))
    if a.raw_input:
        started = time.time()
        # One row per log file; unnest its Records into one row per event with the
        # record's top-level fields as columns (types inferred by DuckDB).
        con.execute(
            f"CREATE VIEW raw AS SELECT unnest(Records, max_depth := 2) "
            f"FROM read_json_auto({quote(a.raw_input + '/**/*.json.gz')})"
        )
        print(f"raw view (schema inference) {time.time() - started:.1f} s", file=sys.stderr)
        raw_only = a.raw_only.split(",") if a.raw_only else None
        sources.append(("duckdb-json.gz", "raw", a.raw_runs, raw_only))
    print(f"duckdb {duckdb.__version__}, threads {a.threads}", file=sys.stderr)
    for engine, view, runs, only in sources:
        for name, sql in queries:
            if only is not None and name not in only:
                continue
            text = sql.replace("$EDS", view)
            streamed = name.startswith("d_")
            times, rows = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                rows = run(con, text, streamed)
                times.append(time.perf_counter() - started)
            s = sorted(times)
            p50, p90 = percentile(s, 50), percentile(s, 90)
            print(
                f"{engine:<15} {name:<26} p50 {p50 * 1e3:>10.1f} ms  p90 {p90 * 1e3:>10.1f} ms  rows {rows:>9}",
                flush=True,
            )
            results.append(
                {
                    "name": name,
                    "engine": engine,
                    "p50_ms": p50 * 1e3,
                    "p90_ms": p90 * 1e3,
                    "times_ms": [t * 1e3 for t in times],
                    "rows": rows,
                }
            )
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
