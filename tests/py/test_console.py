"""The web console (/console) in real headless Chromium from Debian's packages, driven by
Selenium with the system chromedriver; and its HTTP endpoints' security with plain HTTP.

Screenshots of each page go to target/test-artifacts/console/.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
import urllib3
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import OPENTRAIL_BIN, REPO, _child_env, wait_for
from test_hardening_net import certificate, tls_server  # noqa: F401 (fixtures)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "target" / "test-artifacts" / "console"



@pytest.fixture
def console(start_server):
    server = start_server("--delivery-interval", "1s")
    server.create_bucket("console-bucket")
    return server


@pytest.fixture
def browser(tmp_path):
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "the console tests need Debian's chromium and chromium-driver: "
        "apt-get install -y chromium chromium-driver (scripts/test installs them)")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--window-size=1280,800"):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(90)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def follow(driver, by: str, selector: str) -> None:
    """Clicks a link or submit button and waits for the page it leads to."""
    before = driver.find_element(By.TAG_NAME, "html").id

    def new_page():
        try:
            return driver.find_element(By.TAG_NAME, "html").id != before
        except WebDriverException:  # between the two documents
            return False
    driver.find_element(by, selector).click()
    wait_for(new_page, what=f"the page after clicking {selector}")


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def sign_in(driver, server, secret: str | None = None, access_key_id: str | None = None) -> None:
    root = server.root
    driver.get(f"{server.endpoint}/console/signin")
    driver.find_element(By.ID, "access_key_id").send_keys(access_key_id or root.access_key_id)
    driver.find_element(By.ID, "secret_access_key").send_keys(secret or root.secret_access_key)
    follow(driver, By.CSS_SELECTOR, "form button[type=submit]")


def console_logins(server, outcome: str) -> list[dict]:
    events = server.client().lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    return [r for r in records if r["responseElements"]["ConsoleLogin"] == outcome]


def test_sign_in_and_failed_sign_in_is_a_console_login_event(console, browser):
    browser.get(f"{console.endpoint}/console")
    assert browser.current_url.endswith("/console/signin")
    shot(browser, "01-signin")
    sign_in(browser, console, secret="not-the-secret")
    alert = browser.find_element(By.CSS_SELECTOR, "[role=alert]")
    assert "not correct" in alert.text
    shot(browser, "02-signin-failed")
    failure = wait_for(lambda: console_logins(console, "Failure"), what="a ConsoleLogin Failure event")[0]
    assert failure["eventType"] == "AwsConsoleSignIn"
    assert failure["eventSource"] == "signin.amazonaws.com"
    assert failure["errorMessage"] == "Failed authentication"
    assert failure["additionalEventData"]["MFAUsed"] == "No"
    assert failure["additionalEventData"]["LoginTo"].endswith("/console/events")
    assert failure["userIdentity"]["type"] == "Root"
    assert "not-the-secret" not in json.dumps(failure)

    sign_in(browser, console)
    assert browser.current_url.endswith("/console/events")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Event history"
    success = wait_for(lambda: console_logins(console, "Success"), what="a ConsoleLogin Success event")[0]
    assert "errorMessage" not in success
    assert success["recipientAccountId"] == console.account_id
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    assert console.root.secret_access_key not in console.log_text()


def event_names_shown(driver) -> list[str]:
    headings = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#events thead th")]
    column = headings.index("Event name")
    return [row.find_elements(By.TAG_NAME, "td")[column].text
            for row in driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")]


def test_event_history_filter_columns_detail_and_download(console, browser, tmp_path):
    client = console.client()
    for name in ("hist-a", "hist-b", "hist-c"):
        client.create_trail(Name=name, S3BucketName="console-bucket")
    client.describe_trails()
    console.wait_for_history_caught_up()
    sign_in(browser, console)
    shot(browser, "03-event-history")
    assert "CreateTrail" in event_names_shown(browser)

    Select(browser.find_element(By.ID, "attr")).select_by_value("EventName")
    browser.find_element(By.ID, "value").send_keys("CreateTrail")
    follow(browser, By.ID, "apply-filter")
    assert event_names_shown(browser) == ["CreateTrail"] * 3
    shot(browser, "04-event-history-filtered")

    # Columns: add Event ID and AWS region, drop Resource type; remembered for the user.
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    for column in ("event_id", "region", "resource_type"):
        browser.find_element(By.ID, f"col-{column}").click()
    follow(browser, By.ID, "save-columns")
    headings = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#events thead th")]
    assert "Event ID" in headings and "AWS region" in headings and "Resource type" not in headings
    assert event_names_shown(browser) == ["CreateTrail"] * 3  # the filter survived
    shot(browser, "05-event-history-columns")
    browser.get(f"{console.endpoint}/console/events")
    headings = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#events thead th")]
    assert "Event ID" in headings and "Resource type" not in headings

    # Detail: the record's JSON.
    browser.get(f"{console.endpoint}/console/events?attr=EventName&value=CreateTrail")
    follow(browser, By.CSS_SELECTOR, "#events tbody tr td a")
    record = json.loads(browser.find_element(By.ID, "event-record").text)
    assert record["eventName"] == "CreateTrail"
    shot(browser, "06-event-detail")

    # Download the filtered history as CSV and JSON; compare with `opentrail events export`.
    browser.get(f"{console.endpoint}/console/events?attr=EventName&value=CreateTrail")
    browser.find_element(By.ID, "download-csv").click()
    downloaded = wait_for(lambda: [p for p in browser.downloads.glob("*.csv")], what="the CSV download")[0]
    wait_for(lambda: not list(browser.downloads.glob("*.crdownload")), what="the download to finish")
    export = tmp_path / "export.csv"
    result = subprocess.run(
        [str(OPENTRAIL_BIN), "events", "export", "--endpoint", console.endpoint, "--data-dir",
         str(console.data_dir), "--attribute", "EventName=CreateTrail", "--format", "csv", "--out", str(export)],
        capture_output=True, text=True, timeout=120, env=_child_env())
    assert result.returncode == 0, result.stderr
    assert downloaded.read_text() == export.read_text()
    rows = list(csv.reader(io.StringIO(export.read_text())))
    assert len(rows) == 4 and rows[0][:4] == ["Event ID", "Event time", "User name", "Event name"]

    browser.find_element(By.ID, "download-json").click()
    downloaded_json = wait_for(lambda: [p for p in browser.downloads.glob("*.json")], what="the JSON download")[0]
    wait_for(lambda: not list(browser.downloads.glob("*.crdownload")), what="the download to finish")
    records = json.loads(downloaded_json.read_text())["Records"]
    assert [r["eventName"] for r in records] == ["CreateTrail"] * 3
    assert sorted(r["requestParameters"]["name"] for r in records) == ["hist-a", "hist-b", "hist-c"]


def test_paging_through_history(console, browser):
    client = console.client()
    for _ in range(60):
        client.list_trails()
    console.wait_for_history_caught_up()
    sign_in(browser, console)
    browser.get(f"{console.endpoint}/console/events?attr=EventName&value=ListTrails")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")) == 50
    follow(browser, By.CSS_SELECTOR, "a[rel=next]")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")) == 10
    with pytest.raises(NoSuchElementException):
        browser.find_element(By.CSS_SELECTOR, "a[rel=next]")


ADVANCED = [
    {"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
    {"Name": "S3 objects", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                             {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]},
]


def test_create_trail_with_advanced_selectors_and_start_logging(console, browser):
    sign_in(browser, console)
    browser.get(f"{console.endpoint}/console/trails")
    shot(browser, "07-trails-empty")
    follow(browser, By.ID, "create-trail")
    # An API validation error is shown with its message, and the form keeps its values.
    browser.find_element(By.ID, "trail-name").send_keys("console-trail")
    browser.find_element(By.ID, "bucket").send_keys("console-bucket")
    browser.find_element(By.ID, "kind-advanced").click()
    browser.find_element(By.ID, "selectors").send_keys("[{\"FieldSelectors\": []}]")
    browser.find_element(By.ID, "start-logging").click()  # off: started below by its button
    follow(browser, By.ID, "create-submit")
    alert = browser.find_element(By.CSS_SELECTOR, "[role=alert]")
    assert "InvalidEventSelectorsException" in alert.text or "InvalidParameter" in alert.text
    shot(browser, "08-trail-selector-error")
    # That failed after creation (the selectors are the API's to validate): fix them on the
    # trail's page.
    selectors = browser.find_element(By.ID, "selectors")
    selectors.clear()
    selectors.send_keys(json.dumps(ADVANCED))
    browser.find_element(By.ID, "kind-advanced").click()
    follow(browser, By.ID, "selectors-submit")
    assert "Event selectors saved." in browser.find_element(By.CSS_SELECTOR, "[role=status]").text

    trails = console.aws("cloudtrail", "describe-trails")["trailList"]
    assert [t["Name"] for t in trails] == ["console-trail"]
    assert trails[0]["S3BucketName"] == "console-bucket"
    selectors = console.aws("cloudtrail", "get-event-selectors", "--trail-name", "console-trail")
    assert selectors["AdvancedEventSelectors"] == ADVANCED

    # Tags, Insights and settings.
    browser.find_element(By.ID, "tag-key").send_keys("team")
    browser.find_element(By.ID, "tag-value").send_keys("audit")
    follow(browser, By.ID, "tag-submit")
    assert "team = audit" in browser.find_element(By.ID, "tags").text
    browser.find_element(By.ID, "insight-call-rate").click()
    follow(browser, By.ID, "insights-submit")
    insights = console.aws("cloudtrail", "get-insight-selectors", "--trail-name", "console-trail")
    assert insights["InsightSelectors"] == [{"InsightType": "ApiCallRateInsight"}]
    browser.find_element(By.ID, "prefix").send_keys("logs")
    follow(browser, By.ID, "update-submit")
    assert console.aws("cloudtrail", "get-trail", "--name", "console-trail")["Trail"]["S3KeyPrefix"] == "logs"

    # Start logging; the status shows the deliveries.
    follow(browser, By.ID, "start-logging")
    assert "Logging started." in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert console.aws("cloudtrail", "get-trail-status", "--name", "console-trail")["IsLogging"] is True

    def delivered():
        browser.refresh()
        cells = browser.find_elements(By.CSS_SELECTOR, "#trail-status dd[data-member=LatestDeliveryTime]")
        return cells and cells[0].text
    wait_for(delivered, what="a delivery in the trail status")
    status = browser.find_element(By.ID, "trail-status").text
    assert "Logging\nYes" in status
    shot(browser, "09-trail-status")
    browser.get(f"{console.endpoint}/console/trails")
    row = browser.find_element(By.CSS_SELECTOR, "#trails tbody tr").text
    assert "console-trail" in row and "us-east-1" in row and "Logging" in row
    shot(browser, "10-trails")
    browser.set_window_size(400, 800)
    shot(browser, "11-trails-narrow")

    # Stop and delete.
    follow(browser, By.CSS_SELECTOR, "#trails tbody a")
    follow(browser, By.ID, "stop-logging")
    assert console.aws("cloudtrail", "get-trail-status", "--name", "console-trail")["IsLogging"] is False
    browser.find_element(By.ID, "delete-confirm").click()
    follow(browser, By.ID, "delete-submit")
    assert browser.current_url.endswith("/console/trails")
    assert console.aws("cloudtrail", "describe-trails")["trailList"] == []
    # The console's calls are audited as the signed-in principal's API calls.
    console.wait_for_history_caught_up()
    deleted = console.client().lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "DeleteTrail"}])["Events"]
    assert deleted and json.loads(deleted[0]["CloudTrailEvent"])["userIdentity"]["type"] == "Root"


# ----------------------------------------------------------------- plain-HTTP security


def http_sign_in(server, endpoint: str | None = None, key: tuple[str, str] | None = None,
                 verify=True, expect: int = 303) -> requests.Session:
    endpoint = endpoint or server.endpoint
    session = requests.Session()
    page = session.get(f"{endpoint}/console/signin", timeout=30, verify=verify)
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    access_key_id, secret = key or (server.root.access_key_id, server.root.secret_access_key)
    answer = session.post(f"{endpoint}/console/signin", data={
        "csrf": token, "access_key_id": access_key_id,
        "secret_access_key": secret, "region": "us-east-1"},
        allow_redirects=False, timeout=30, verify=verify)
    assert answer.status_code == expect, answer.text
    session.signin_answer = answer
    return session


def csrf_of(session: requests.Session, server) -> str:
    page = session.get(f"{server.endpoint}/console/trails/new", timeout=30)
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


def test_no_access_without_a_session(console):
    base = console.endpoint
    for path in ("/console/events", "/console/trails", "/console/trails/new",
                 "/console/events/download?format=csv", "/console/events/detail?id=x",
                 "/console/lake", "/console/lake/new", "/console/lake/editor", "/console/lake/history?store=x",
                 "/console/lake/query?id=x", "/console/lake/query/download?id=x",
                 "/console/insights", "/console/insights/view?id=x"):
        answer = requests.get(base + path, allow_redirects=False, timeout=30)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/signin", path
    for path in ("/console/trails/new", "/console/trails/delete", "/console/trails/logging",
                 "/console/events/columns", "/console/signout", "/console/lake/new", "/console/lake/query"):
        answer = requests.post(base + path, data={"name": "x", "csrf": "x"}, allow_redirects=False, timeout=30)
        assert answer.status_code == 401, path
    forged = requests.get(base + "/console/events", cookies={"opentrail_console": "0" * 64},
                          allow_redirects=False, timeout=30)
    assert forged.status_code == 303


def test_csrf_is_refused(console):
    session = http_sign_in(console)
    token = csrf_of(session, console)
    form = {"Name": "forged", "S3BucketName": "console-bucket"}
    for csrf in (None, "", "0" * len(token)):
        data = dict(form, **({} if csrf is None else {"csrf": csrf}))
        answer = session.post(f"{console.endpoint}/console/trails/new", data=data, allow_redirects=False, timeout=30)
        assert answer.status_code == 403
    assert console.client().describe_trails()["trailList"] == []
    answer = session.post(f"{console.endpoint}/console/trails/new", data=dict(form, csrf=token),
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    assert [t["Name"] for t in console.client().describe_trails()["trailList"]] == ["forged"]
    # The sign-in form has its own token: a post without it is refused and not a sign-in.
    root = console.root
    answer = requests.post(f"{console.endpoint}/console/signin", data={
        "access_key_id": root.access_key_id, "secret_access_key": root.secret_access_key},
        allow_redirects=False, timeout=30)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_cookie_flags_and_security_headers(console):
    session = http_sign_in(console)
    cookie = next(c for c in session.signin_answer.headers["set-cookie"].split(", opentrail")
                  if c.startswith(("opentrail_console=", "_console=")))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain HTTP here; TLS adds it
    for path in ("/console/signin", "/console/events", "/console/trails"):
        answer = session.get(console.endpoint + path, timeout=30)
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in answer.text
    # Sign-out ends the session on the server.
    token = session.cookies.get("opentrail_console")
    answer = session.post(f"{console.endpoint}/console/signout", data={"csrf": csrf_of(session, console)},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    stale = requests.get(f"{console.endpoint}/console/events", headers={"Cookie": f"opentrail_console={token}"},
                         allow_redirects=False, timeout=30)
    assert stale.status_code == 303


def test_sessions_expire(start_server):
    server = start_server("--console-session", "5s")
    session = http_sign_in(server)
    cookie = {"Cookie": f"opentrail_console={session.cookies.get('opentrail_console')}"}
    assert requests.get(f"{server.endpoint}/console/events", headers=cookie, allow_redirects=False,
                        timeout=30).status_code == 200
    time.sleep(6)  # the session's lifetime is the condition tested, not a race
    answer = requests.get(f"{server.endpoint}/console/events", headers=cookie, allow_redirects=False, timeout=30)
    assert answer.status_code == 303


def test_sign_in_with_an_unknown_key_is_recorded_with_a_hidden_user_name(console):
    http_sign_in(console, key=("AKIANOTAKEYOFTHIS", "whatever-secret"), expect=401)
    failure = wait_for(lambda: console_logins(console, "Failure"), what="a ConsoleLogin Failure event")[0]
    assert failure["userIdentity"]["userName"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert failure["recipientAccountId"] == console.account_id
    assert "whatever-secret" not in json.dumps(failure)
    # An IAM user's key signs in as that user, and sees what the API lets it see.
    key = console.create_key("carol")
    session = http_sign_in(console, key=(key["AccessKeyId"], key["SecretAccessKey"]))
    page = session.get(f"{console.endpoint}/console/trails", timeout=30)
    assert page.status_code == 200 and "carol" in page.text
    success = wait_for(lambda: console_logins(console, "Success"), what="a ConsoleLogin Success event")[0]
    assert success["userIdentity"]["type"] == "IAMUser" and success["userIdentity"]["userName"] == "carol"


def test_session_cookie_is_secure_over_tls(tls_server):
    endpoint, data_dir, cert = tls_server
    root = {}
    for line in (data_dir / "credentials").read_text().splitlines():
        if "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            root[name] = value
    # The cookie's flags are under test, not the certificate (Python's ssl refuses a
    # self-signed end-entity certificate as its own trust anchor).
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    session = http_sign_in(None, endpoint=endpoint, verify=False,
                           key=(root["aws_access_key_id"], root["aws_secret_access_key"]))
    cookies = session.signin_answer.headers["set-cookie"]
    session_cookie = cookies[cookies.index("opentrail_console="):]
    assert "; Secure" in session_cookie.split(", opentrail")[0]
    assert session.get(f"{endpoint}/console/events", timeout=30, verify=False).status_code == 200


def test_lake_and_query_posts_refuse_csrf(console):
    session = http_sign_in(console)
    token = csrf_of(session, console)
    ct = console.client()
    posts = {
        "/console/lake/new": {"Name": "forged-store", "RetentionPeriod": "30"},
        "/console/lake/query": {"sql": "SELECT 1", "store": "x"},
    }
    for path, form in posts.items():
        for csrf in (None, "", "0" * len(token)):
            data = dict(form, **({} if csrf is None else {"csrf": csrf}))
            answer = session.post(console.endpoint + path, data=data, allow_redirects=False, timeout=30)
            assert answer.status_code == 403, (path, csrf)
    assert ct.list_event_data_stores()["EventDataStores"] == []
    answer = session.post(f"{console.endpoint}/console/lake/new", allow_redirects=False, timeout=30,
                          data=dict(posts["/console/lake/new"], csrf=token))
    assert answer.status_code == 303 and answer.headers["location"] == "/console/lake?done=created"
    assert [s["Name"] for s in ct.list_event_data_stores()["EventDataStores"]] == ["forged-store"]


# ----------------------------------------------------------------- Lake


def lake_rows(ct, query_id: str) -> list:
    rows, kwargs = [], {"QueryId": query_id, "MaxQueryResults": 1000}
    while True:
        page = ct.get_query_results(**kwargs)
        rows.extend(page["QueryResultRows"])
        if not page.get("NextToken"):
            return rows
        kwargs["NextToken"] = page["NextToken"]


def wait_query_page_done(browser) -> str:
    """Waits (the page reloads itself while the query is active) for a terminal status."""
    def status():
        try:
            text = browser.find_element(By.CSS_SELECTOR, "#query-status dd[data-member=QueryStatus]").text
        except (NoSuchElementException, WebDriverException):
            return None
        return text if text in ("FINISHED", "FAILED", "CANCELLED", "TIMED_OUT") else None
    return wait_for(status, what="the query page to show a finished query")


def test_lake_store_editor_samples_query_paging_and_csv(console, browser):
    ct = console.client()
    sign_in(browser, console)
    follow(browser, By.LINK_TEXT, "Lake")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Event data stores"
    follow(browser, By.ID, "create-store")
    # A bad selector list is shown with the form kept.
    browser.find_element(By.ID, "store-name").send_keys("console-lake")
    retention = browser.find_element(By.ID, "retention")
    retention.clear()
    retention.send_keys("30")
    browser.find_element(By.ID, "termination-protection").click()  # off
    browser.find_element(By.ID, "store-selectors").send_keys("[{\"FieldSelectors\": ")
    follow(browser, By.ID, "create-store-submit")
    assert "InvalidEventSelectorsException" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert browser.find_element(By.ID, "store-name").get_attribute("value") == "console-lake"
    selectors = browser.find_element(By.ID, "store-selectors")
    selectors.clear()
    selectors.send_keys(json.dumps([{"Name": "management", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]}]}]))
    shot(browser, "12-lake-create")
    follow(browser, By.ID, "create-store-submit")
    assert "Event data store created." in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    stores = ct.list_event_data_stores()["EventDataStores"]
    assert [s["Name"] for s in stores] == ["console-lake"]
    store = ct.get_event_data_store(EventDataStore=stores[0]["EventDataStoreArn"])
    assert store["RetentionPeriod"] == 30 and store["MultiRegionEnabled"] is True
    assert store["TerminationProtectionEnabled"] is False
    assert store["AdvancedEventSelectors"][0]["Name"] == "management"
    arn = store["EventDataStoreArn"]
    store_id = arn.rsplit("/", 1)[1]
    row = browser.find_element(By.CSS_SELECTOR, "#stores tbody tr").text
    assert "console-lake" in row and arn in row and "30" in row and "ENABLED" in row
    shot(browser, "13-lake-stores")

    # 60 ListTrails calls: their audit events become the store's rows (the Lake writer).
    for _ in range(60):
        ct.list_trails()
    sql = f"SELECT eventName, eventTime, eventID FROM {store_id} WHERE eventName = 'ListTrails' ORDER BY eventTime, eventID"

    def written():
        query_id = ct.start_query(QueryStatement=sql)["QueryId"]
        wait_for(lambda: ct.describe_query(QueryId=query_id)["QueryStatus"] in ("FINISHED", "FAILED"),
                 what="the probe query")
        return len(lake_rows(ct, query_id)) == 60
    wait_for(written, interval=1, what="the 60 ListTrails events in the event data store")

    # The editor: search the sample library; a sample fills the editor for the chosen store.
    follow(browser, By.CSS_SELECTOR, "#stores tbody td a")
    assert Select(browser.find_element(By.ID, "store")).first_selected_option.get_attribute("value") == store_id
    browser.find_element(By.ID, "search").send_keys("most frequent API calls")
    follow(browser, By.ID, "search-samples")
    samples = browser.find_elements(By.CSS_SELECTOR, "#samples a.sample")
    assert samples and any(a.text == "Most frequent API calls" for a in samples)
    shot(browser, "14-lake-editor-samples")
    follow(browser, By.LINK_TEXT, "Most frequent API calls")
    editor_sql = browser.find_element(By.ID, "sql").get_attribute("value")
    assert f"FROM {store_id}" in editor_sql and "$EDS_ID" not in editor_sql
    follow(browser, By.ID, "run-query")
    assert wait_query_page_done(browser) == "FINISHED"
    headings = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#results thead th")]
    assert headings == ["eventSource", "eventName", "apiCount"]
    cells = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
             for tr in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")]
    assert ["cloudtrail.amazonaws.com", "ListTrails", "60"] in cells

    # Our own SQL: 60 rows, 50 on the first page, 10 on the next.
    browser.get(f"{console.endpoint}/console/lake/editor?store={store_id}")
    editor = browser.find_element(By.ID, "sql")
    editor.clear()
    editor.send_keys(sql)
    follow(browser, By.ID, "run-query")
    assert wait_query_page_done(browser) == "FINISHED"
    query_id = browser.find_element(By.ID, "query-id").text
    assert int(browser.find_element(By.CSS_SELECTOR, "dd[data-member=EventsMatched]").text) == 60
    assert browser.find_element(By.ID, "results-count").text == "60 rows"
    shot(browser, "15-lake-query-results")
    expected = lake_rows(ct, query_id)
    assert len(expected) == 60

    def shown_rows():
        return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")]
    as_lists = [[list(cell.values())[0] for cell in row] for row in expected]
    assert shown_rows() == as_lists[:50]
    follow(browser, By.CSS_SELECTOR, "a[rel=next]")
    assert shown_rows() == as_lists[50:]
    with pytest.raises(NoSuchElementException):
        browser.find_element(By.CSS_SELECTOR, "a[rel=next]")

    # The CSV download has every row, as GetQueryResults gives them.
    browser.find_element(By.ID, "download-results").click()
    downloaded = wait_for(lambda: [p for p in browser.downloads.glob("*.csv")], what="the CSV download")[0]
    wait_for(lambda: not list(browser.downloads.glob("*.crdownload")), what="the download to finish")
    assert downloaded.name == f"query_{query_id}.csv"
    rows = list(csv.reader(io.StringIO(downloaded.read_text())))
    assert rows[0] == ["eventName", "eventTime", "eventID"]
    assert rows[1:] == as_lists

    # The store's query history lists both queries; a query's page is reached from it.
    browser.get(f"{console.endpoint}/console/lake/history?store={store_id}")
    listed = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#queries tbody td a")]
    assert query_id in listed and len(listed) >= 2
    assert listed == [q["QueryId"] for q in ct.list_queries(EventDataStore=arn)["Queries"]]
    shot(browser, "16-lake-history")
    follow(browser, By.LINK_TEXT, query_id)
    assert browser.find_element(By.ID, "query-sql").text == sql

    # A failed query shows its error; the editor keeps a refused statement.
    browser.get(f"{console.endpoint}/console/lake/editor?store={store_id}")
    editor = browser.find_element(By.ID, "sql")
    editor.clear()
    editor.send_keys(f"DELETE FROM {store_id}")
    follow(browser, By.ID, "run-query")
    assert "InvalidQueryStatementException" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert browser.find_element(By.ID, "sql").get_attribute("value") == f"DELETE FROM {store_id}"
    browser.set_window_size(400, 800)
    shot(browser, "17-lake-editor-narrow")


def test_a_running_query_page_refreshes_itself(start_server, browser):
    server = start_server("--query-hold", "600s")
    ct = server.client()
    store_id = ct.create_event_data_store(Name="held", TerminationProtectionEnabled=False)[
        "EventDataStoreArn"].rsplit("/", 1)[1]
    query_id = ct.start_query(QueryStatement=f"SELECT eventID FROM {store_id}")["QueryId"]
    sign_in(browser, server)
    browser.get(f"{server.endpoint}/console/lake/query?id={query_id}&store={store_id}")
    status = browser.find_element(By.CSS_SELECTOR, "#query-status dd[data-member=QueryStatus]").text
    assert status == "QUEUED"
    refresh = browser.find_element(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    assert refresh.get_attribute("content") == "2"
    assert browser.find_element(By.ID, "refresh").get_attribute("href").endswith(
        f"/console/lake/query?id={query_id}&store={store_id}")
    ct.cancel_query(QueryId=query_id)
    assert wait_query_page_done(browser) == "CANCELLED"  # the meta refresh reloaded the page
    assert not browser.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    shot(browser, "18-lake-query-cancelled")


# ----------------------------------------------------------------- Insights


def test_insights_list_chart_and_attributions(start_server, browser, tmp_path):
    from test_insights import burst_until_start, iso

    clock = tmp_path / "clock"
    t0 = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    clock.write_text(iso(t0))
    server = start_server("--delivery-interval", "1s", "--insights-test-clock-file", str(clock))
    server.create_bucket("insights-bucket")
    server.client().create_trail(Name="watched", S3BucketName="insights-bucket")
    started = burst_until_start(server, clock, t0)
    context = started["insightDetails"]["insightContext"]

    sign_in(browser, server)
    follow(browser, By.LINK_TEXT, "Insights")
    row = browser.find_element(By.CSS_SELECTOR, "#insights tbody tr").text
    assert "Start" in row and "ssm.amazonaws.com" in row and "SendCommand" in row and "ApiCallRateInsight" in row
    shot(browser, "19-insights")
    follow(browser, By.CSS_SELECTOR, "#insights tbody td a")
    summary = browser.find_element(By.ID, "insight-summary").text
    assert "SendCommand" in summary and iso(t0) in summary and "(still open)" in summary

    # The chart: the per-minute counts from ListInsightsMetricData, the baseline line.
    metrics = server.client().list_insights_metric_data(
        EventSource="ssm.amazonaws.com", EventName="SendCommand", InsightType="ApiCallRateInsight",
        Period=60, StartTime=t0 - dt.timedelta(minutes=60), EndTime=t0 + dt.timedelta(minutes=60),
        DataType="FillWithZeros")
    series = browser.find_element(By.ID, "chart-series")
    values = [float(v) for v in series.get_attribute("data-values").split(",")]
    assert values == metrics["Values"]
    assert values.count(40) == 2 and len(series.get_attribute("points").split()) == len(values)
    baseline = browser.find_element(By.ID, "chart-baseline")
    assert float(baseline.get_attribute("data-value")) == pytest.approx(
        context["statistics"]["baseline"]["average"], abs=1e-4)
    assert browser.find_element(By.ID, "insight-chart").get_attribute("role") == "img"
    assert browser.find_element(By.ID, "chart-title").get_attribute("textContent").startswith(
        "ssm.amazonaws.com SendCommand")

    # The attributions of the event's insightContext.
    tables = {t.get_attribute("data-attribute"): t for t in browser.find_elements(By.CSS_SELECTOR, "table.attribution")}
    assert set(tables) == {a["attribute"] for a in context["attributions"]}
    user_agent = next(a for a in context["attributions"] if a["attribute"] == "userAgent")
    assert user_agent["insight"][0]["value"] == "burst-agent"
    first = tables["userAgent"].find_element(By.CSS_SELECTOR, "tbody tr").text
    assert first.startswith("burst-agent") and f"{user_agent['insight'][0]['average']:.4f}" in first
    shot(browser, "20-insight-chart")
    browser.set_window_size(400, 800)
    shot(browser, "21-insight-chart-narrow")
