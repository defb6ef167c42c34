#!/usr/bin/env python3
"""Writes ONE large CloudTrail log file, {"Records":[...]} gzipped, in the trail key layout
(AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_..._big.json.gz),
from the records of a gen_cloudtrail.py output directory: its files are read in order and
their records appended as text (one source file in memory at a time), again and again with
a pass number in eventID (so every event stays unique) until --bytes of uncompressed JSON
are written (whole source files: it stops after the one that crosses --bytes). For `opentrail-bench lake-import`: a StartImport of this file shows
whether the server streams a log file or holds it.

Usage: python3 benches/gen_single_log.py --from /tmp/ct1m --out /tmp/ctbig --bytes 2000000000
Prints {"events": N, "uncompressed_bytes": ..., "gz_bytes": ..., "path": ...}.
"""
import argparse
import gzip
import json
import os
import re
import sys
from pathlib import Path

ACCOUNT = "111122223333"
EVENT_ID = b'"eventID":"'
EVENT_ID_RE = re.compile(rb'"eventID":"[0-9a-f]{4}')
REGION = "us-east-1"


def source_files(root: Path):
    files = sorted(p for p in root.rglob("*.json.gz") if "CloudTrail-Digest" not in p.parts)
    if not files:
        sys.exit(f"no .json.gz files under {root}")
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="source", required=True, help="gen_cloudtrail.py output directory")
    ap.add_argument("--out", required=True, help="directory to write the one file into (in the trail layout)")
    ap.add_argument("--bytes", type=int, default=2_000_000_000, help="uncompressed JSON size to reach")
    ap.add_argument("--level", type=int, default=1, help="gzip level (1: the file is written fast)")
    a = ap.parse_args()

    files = source_files(Path(a.source))
    day = "2024/03/01"
    folder = Path(a.out) / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ACCOUNT}_CloudTrail_{REGION}_20240301T0000Z_bigsinglelog0001.json.gz"

    events = 0
    written = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=a.level, mtime=0) as out:
        out.write(b'{"Records":[')
        written += len(b'{"Records":[')
        first = True
        passes = 0
        while written < a.bytes:
            for source in files:
                with gzip.open(source, "rb") as f:
                    text = f.read()
                # gen_cloudtrail.py writes compact {"Records":[{...},...]}: its records are
                # copied as text (parsing 2 GB in Python would take far longer than writing it).
                if not (text.startswith(b'{"Records":[') and text.endswith(b"]}")):
                    sys.exit(f"{source} is not a compact gen_cloudtrail.py file")
                records = text[len(b'{"Records":['):-2]
                count = records.count(EVENT_ID)
                if events == 0 and count != len(json.loads(text)["Records"]):
                    sys.exit(f"{source}: eventID is not once per record")
                if passes:
                    # eventIDs are UUIDs: the pass number replaces their first 4 hex digits.
                    records = EVENT_ID_RE.sub(lambda m: EVENT_ID + b"%04x" % passes, records)
                out.write(records if first else b"," + records)
                first = False
                written += len(records) + 1
                events += count
                if written >= a.bytes:
                    break
                if events % 200_000 < count:
                    print(f"events={events} raw={written / 1e6:.0f}MB", file=sys.stderr)
            passes += 1
        out.write(b"]}")
        written += 2
    print(json.dumps({"events": events, "uncompressed_bytes": written, "gz_bytes": os.path.getsize(path),
                      "path": str(path)}))


if __name__ == "__main__":
    main()
