"""DuckDB baseline for opentrail-history-bench: load the same CloudTrail files into a
DuckDB table of management events and replay the same lookups as
`WHERE ... ORDER BY eventTime DESC LIMIT 50` queries.

Usage: python duckdb_bench.py <data dir> <db file> <queries.json> <results.json> <threads>
"""
import json
import os
import sys
import time

import duckdb

data_dir, db_path, queries_path, results_path, threads = sys.argv[1:6]
if os.path.exists(db_path):
    os.remove(db_path)
con = duckdb.connect(db_path)
con.execute(f"SET threads={int(threads)}")
con.execute("SET preserve_insertion_order=false")
con.execute("SET TimeZone='UTC'")

pattern = os.path.join(data_dir, "AWSLogs", "*", "CloudTrail", "*", "*", "*", "*", "*.json.gz")
load_started = time.time()
con.execute(f"""
CREATE TABLE ev AS
WITH records AS (
  SELECT unnest(Records) AS r
  FROM read_json('{pattern}', columns={{'Records': 'JSON[]'}}, format='unstructured',
                 maximum_object_size=536870912)
)
SELECT
  r::VARCHAR AS raw,
  r->>'recipientAccountId' AS account,
  r->>'awsRegion' AS region,
  strptime(r->>'eventTime', '%Y-%m-%dT%H:%M:%SZ') AS event_time,
  r->>'eventID' AS event_id,
  r->>'eventName' AS event_name,
  r->>'eventSource' AS event_source,
  r->>'readOnly' AS read_only,
  r->'userIdentity'->>'accessKeyId' AS access_key_id,
  CASE r->'userIdentity'->>'type'
    WHEN 'Root' THEN 'root'
    WHEN 'AssumedRole' THEN coalesce(regexp_extract(r->'userIdentity'->>'arn', 'assumed-role/[^/]+/(.+)$', 1), r->'userIdentity'->>'userName')
    WHEN 'FederatedUser' THEN coalesce(regexp_extract(r->'userIdentity'->>'arn', 'federated-user/(.+)$', 1), r->'userIdentity'->>'userName')
    ELSE r->'userIdentity'->>'userName'
  END AS username,
  json_extract_string(r, '$.resources[*].type') AS resource_types,
  json_extract_string(r, '$.resources[*].ARN') AS resource_names
FROM records
WHERE coalesce(r->>'eventCategory', 'Management') = 'Management'
  AND coalesce(r->>'managementEvent', 'true') = 'true'
""")
con.execute("CHECKPOINT")
load_seconds = time.time() - load_started
rows = con.execute("SELECT count(*) FROM ev").fetchone()[0]

COLUMNS = {
    "EventId": "event_id = $value",
    "EventName": "event_name = $value",
    "ReadOnly": "read_only = $value",
    "Username": "username = $value",
    "ResourceType": "list_contains(resource_types, $value)",
    "ResourceName": "list_contains(resource_names, $value)",
    "EventSource": "event_source = $value",
    "AccessKeyId": "access_key_id = $value",
    "TimeRange": "true",
}
queries = json.load(open(queries_path))
timings = []
for query in queries:
    condition = COLUMNS[query["kind"]]
    sql = f"""
      SELECT raw, event_id, event_name, read_only, access_key_id, epoch(event_time), event_source, username,
             resource_types, resource_names
      FROM ev
      WHERE account = $account AND region = $region AND {condition}
        AND event_time BETWEEN to_timestamp($start)::TIMESTAMP AND to_timestamp($end)::TIMESTAMP
      ORDER BY event_time DESC, event_id DESC
      LIMIT 50"""
    params = {"account": query["account"], "region": query["region"], "start": query["start"], "end": query["end"]}
    if query["value"] is not None:
        params["value"] = query["value"]
    started = time.perf_counter()
    found = con.execute(sql, params).fetchall()
    timings.append({"kind": query["kind"], "ms": (time.perf_counter() - started) * 1000.0, "rows": len(found)})

con.close()
json.dump(
    {"load_seconds": load_seconds, "rows": rows, "db_bytes": os.path.getsize(db_path), "timings": timings},
    open(results_path, "w"),
)
