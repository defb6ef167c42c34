#!/usr/bin/env python3
"""Where a lake's bytes go: compressed bytes per event of each top-level column, summed
over the store's Parquet files (from their footers), and optionally the eventjson column
re-encoded with other zstd levels / page sizes (pyarrow) to see what settings would buy.

    target/lake-bench-venv/bin/python crates/testing/lake-bench/storage_report.py 'OUT/lake/STORE/*/*.parquet' [--variants]
"""
import glob
import io
import os
import sys
from collections import Counter

import pyarrow.parquet as pq


def main():
    files = sorted(glob.glob(sys.argv[1]))
    sizes, rows, total, row_groups = Counter(), 0, 0, 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        row_groups += meta.num_row_groups
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                sizes[column.path_in_schema.split(".")[0]] += column.total_compressed_size
        total += os.path.getsize(path)
    print(f"{len(files)} files, {row_groups} row groups, {rows} events, {total / rows:.1f} B/event on disk")
    for name, size in sizes.most_common():
        print(f"  {name:<28} {size / rows:8.1f} B/event")
    if "--variants" in sys.argv:
        sample = files[: max(1, len(files) // 10)]
        column = "eventjsonskeleton" if "eventjsonskeleton" in pq.read_schema(sample[0]).names else "eventjson"
        tables = [pq.read_table(p, columns=[column]) for p in sample]
        n = sum(t.num_rows for t in tables)
        for level, page in [(1, 1 << 20), (3, 1 << 20), (3, 8 << 20), (6, 8 << 20), (9, 8 << 20)]:
            out = 0
            for t in tables:
                b = io.BytesIO()
                pq.write_table(t, b, compression="zstd", compression_level=level,
                               use_dictionary=False, data_page_size=page)
                out += len(b.getvalue())
            print(f"  {column} at zstd {level}, pages {page >> 20} MiB: {out / n:.1f} B/event ({len(sample)} files)")


if __name__ == "__main__":
    main()
