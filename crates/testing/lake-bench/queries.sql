-- The reference queries of the Lake benchmark. `$EDS` is the event data store: its id for
-- OpenTrail, a view over the same Parquet files (or over the raw .json.gz files) for DuckDB.
-- Same SQL text for every engine. The dataset (benches/gen_cloudtrail.py, seed 42) spans
-- 2024-03-01 .. 2024-03-30.

-- name: a_count_by_source_name
SELECT eventSource, eventName, COUNT(*) AS apiCount
FROM $EDS
GROUP BY eventSource, eventName
ORDER BY apiCount DESC, eventSource, eventName;

-- name: b_one_arn_7_days_newest_50
SELECT *
FROM $EDS
WHERE userIdentity.arn = 'arn:aws:iam::123456789012:user/erin.platform'
  AND eventTime >= timestamp '2024-03-10 00:00:00'
  AND eventTime < timestamp '2024-03-17 00:00:00'
ORDER BY eventTime DESC
LIMIT 50;

-- name: c_top_ips_with_errors
SELECT sourceIPAddress, COUNT(*) AS errors
FROM $EDS
WHERE errorCode IS NOT NULL
GROUP BY sourceIPAddress
ORDER BY errors DESC, sourceIPAddress
LIMIT 10;

-- name: d_every_field
SELECT *
FROM $EDS;

-- name: e_hourly_7_days
SELECT date_trunc('hour', eventTime) AS hour, COUNT(*) AS events
FROM $EDS
WHERE eventTime >= timestamp '2024-03-08 00:00:00'
  AND eventTime < timestamp '2024-03-15 00:00:00'
GROUP BY date_trunc('hour', eventTime)
ORDER BY hour;

-- name: f_regions_one_day
SELECT awsRegion, COUNT(*) AS calls, COUNT(DISTINCT userIdentity.arn) AS principals,
       COUNT(errorCode) AS failures
FROM $EDS
WHERE eventTime >= timestamp '2024-03-20 00:00:00'
  AND eventTime < timestamp '2024-03-21 00:00:00'
GROUP BY awsRegion
ORDER BY calls DESC, awsRegion;
