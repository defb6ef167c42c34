#!/usr/bin/env python3
"""How fast the console's event history page shows its 50 events (issue 16: "the event
history page shows 50 events of a 10M-event history within 300 ms of navigation").

Starts the given `opentrail` binary on 127.0.0.1:0 with a fresh data dir and
`--history-retention-days 36500` (the reference events are from 2024), imports the
reference dataset with `opentrail import`, waits (polling /metrics) until event history has
indexed every imported record, signs in with headless Debian Chromium at 1280x800, then
measures navigations to the event history page until its table has 50 rows:

* `first`: the history page on the session's first visit (cold caches), reported apart;
* `unfiltered`: /console/events (newest 50 of the account and region);
* `filtered`: one lookup attribute (`--attribute`/`--value`);
* `next_page`: the second page (the first page's `Next page` link, its NextToken).

For each navigation it records the wall time from `driver.get` to the 50th row found, and
the page's Navigation Timing: `ttfb_ms` (request start to the response's first byte: the
server's LookupEvents and render), `dom_ms` (navigation start to DOMContentLoaded: the rows
are parsed) and `load_ms` (to the load event). Prints one JSON object with p50, p90 and max
of each. The server is signed in as the root of the account with the most log files in the
dataset, in the region with the most of that account's files (LookupEvents is per account
and region), so the page reads the largest history slice of the dataset.

    python3 benches/gen_cloudtrail.py --out /tmp/ct1m --events 1000000 --seed 42
    cargo build -p opentrail-server      # or --profile fast
    .venv/bin/python benches/console_history.py --binary target/debug/opentrail --input /tmp/ct1m
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROWS = 50
MARKER = "console-bench-imported"  # written into the data dir once the import finished
LOG_FILE = re.compile(r"(\d{12})_CloudTrail_([a-z0-9-]+)_\d{8}T\d{4}Z_")


def largest_slice(input_dir: Path) -> tuple[str, str, int]:
    """The (account, region) with the most CloudTrail log files, and their number."""
    counts: dict[tuple[str, str], int] = {}
    for path in input_dir.rglob("*.json.gz"):
        found = LOG_FILE.match(path.name)
        if found:
            key = (found.group(1), found.group(2))
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        raise SystemExit(f"no CloudTrail log files under {input_dir}")
    (account, region), files = max(counts.items(), key=lambda item: item[1])
    return account, region, files


def metrics(endpoint: str) -> dict[str, float]:
    text = requests.get(f"{endpoint}/metrics", timeout=30).text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


def wait_until_indexed(endpoint: str, deadline_s: float = 3600) -> float:
    started = time.monotonic()
    while True:
        found = metrics(endpoint)
        end = found.get("opentrail_event_log_durable_end_offset")
        applied = found.get("opentrail_history_applied_offset")
        if end is None or applied is None:
            raise SystemExit("the server's /metrics has no history progress gauges")
        if applied >= end:
            return time.monotonic() - started
        if time.monotonic() - started > deadline_s:
            raise SystemExit("event history did not catch up in time")
        time.sleep(0.2)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return round(ordered[index], 1)
    return {"n": len(ordered), "p50": at(50), "p90": at(90), "max": round(ordered[-1], 1),
            "mean": round(statistics.fmean(ordered), 1)}


def browser() -> webdriver.Chrome:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--window-size=1280,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    return driver


def measure(driver, url: str) -> dict[str, float]:
    """One navigation to `url`: wall ms until the table has 50 rows, and Navigation Timing."""
    started = time.perf_counter()
    driver.get(url)
    deadline = started + 60
    while len(driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")) < ROWS:
        if time.perf_counter() > deadline:
            raise SystemExit(f"{url} did not show {ROWS} events: {driver.find_element(By.TAG_NAME, 'main').text[:500]}")
        time.sleep(0.005)
    wall = (time.perf_counter() - started) * 1000
    timing = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return [n.requestStart, n.responseStart, n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd, n.transferSize];")
    request_start, response_start, _response_end, dom, load, size = timing
    return {"wall_ms": wall, "ttfb_ms": response_start - request_start, "dom_ms": dom, "load_ms": load,
            "bytes": size}


def summary(samples: list[dict[str, float]]) -> dict:
    return {key: percentiles([s[key] for s in samples]) for key in ("wall_ms", "ttfb_ms", "dom_ms", "load_ms")} | {
        "page_bytes": int(samples[-1]["bytes"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, default=Path("target/fast/opentrail"))
    parser.add_argument("--input", type=Path, default=Path("/tmp/ct1m"))
    parser.add_argument("--runs", type=int, default=30, help="navigations per case")
    parser.add_argument("--attribute", default="EventSource", help="the filtered case's lookup attribute")
    parser.add_argument("--value", default="ec2.amazonaws.com", help="the filtered case's attribute value")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (printed)")
    parser.add_argument("--data-dir", type=Path,
                        help="use (and keep) this data dir; when it holds an earlier run's import, skip the import")
    args = parser.parse_args()
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "needs Debian's chromium and chromium-driver"

    account, region, files = largest_slice(args.input)
    reuse = args.data_dir is not None and (args.data_dir / MARKER).exists()
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        args.keep = True
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="opentrail-console-bench-"))
    server = subprocess.Popen(
        [str(args.binary), "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0",
         "--account-id", account, "--history-retention-days", "36500"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    driver = None
    try:
        endpoint = ""
        for line in server.stdout:
            if line.startswith("listening on "):
                endpoint = line.split()[-1]
                break
        if not endpoint:
            raise SystemExit("the server did not start")
        started = time.monotonic()
        if not reuse:
            subprocess.run([str(args.binary), "import", "--quiet", "--endpoint", endpoint, "--data-dir", str(data),
                            str(args.input)], check=True)
            (data / MARKER).write_text(str(args.input))
        imported_s = time.monotonic() - started
        indexed_s = wait_until_indexed(endpoint) + imported_s
        config = configparser.ConfigParser()
        config.read(data / "credentials")
        key, secret = config["default"]["aws_access_key_id"], config["default"]["aws_secret_access_key"]

        driver = browser()
        driver.get(f"{endpoint}/console/signin")
        driver.find_element(By.ID, "access_key_id").send_keys(key)
        driver.find_element(By.ID, "secret_access_key").send_keys(secret)
        region_input = driver.find_element(By.ID, "region")
        region_input.clear()
        region_input.send_keys(region)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        deadline = time.monotonic() + 120
        while not driver.current_url.endswith("/console/events"):
            if time.monotonic() > deadline:
                raise SystemExit("sign-in did not reach the event history page")
            time.sleep(0.05)
        # The sign-in's redirect already loaded the page; the first measured load is the
        # first navigation of the session to it (caches of the page's LookupEvents cold).
        history = f"{endpoint}/console/events"
        first = measure(driver, history)
        next_link = driver.find_element(By.CSS_SELECTOR, "nav.pager a[rel=next]").get_attribute("href")
        filtered = f"{history}?attr={args.attribute}&value={requests.utils.quote(args.value)}"
        cases = {"unfiltered": history, "filtered": filtered, "next_page": next_link}
        results = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, url in cases.items():
                results[name].append(measure(driver, url))
        load = os.getloadavg()
        print(json.dumps({
            "binary": str(args.binary), "input": str(args.input), "account": account, "region": region,
            "account_region_log_files": files, "import_seconds": None if reuse else round(imported_s, 1),
            "searchable_after_seconds": round(indexed_s, 1), "window": "1280x800", "rows": ROWS,
            "filter": {args.attribute: args.value}, "loadavg": [round(x, 2) for x in load],
            "first": {k: round(v, 1) for k, v in first.items()},
            **{name: summary(samples) for name, samples in results.items()},
        }, indent=2))
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        if args.keep:
            print(f"data dir kept: {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
