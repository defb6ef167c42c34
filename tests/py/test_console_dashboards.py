"""The console's Lake dashboards in real headless Chromium (the fixtures of test_console.py):
create a dashboard with one widget of each view, refresh it from the keyboard, and see each
widget drawn from its query's rows; a managed dashboard refreshed for a store; a custom
dashboard filled from a managed one; no access without a session and no refresh without the
CSRF token. Screenshots go to target/test-artifacts/console/.
"""

from __future__ import annotations

import json

import requests
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import wait_for
from test_console import browser, console, csrf_of, follow, http_sign_in, lake_rows, shot, sign_in  # noqa: F401

RANGE = "eventTime >= '?' AND eventTime <= '?'"
CALLS = ("ListTrails", "DescribeTrails", "GetEventSelectors")


def make_store(ct, name: str) -> str:
    """An event data store with ListTrails ×6, DescribeTrails ×3 and GetEventSelectors ×1
    (calls of this test) in it; returns its id."""
    arn = ct.create_event_data_store(Name=name, RetentionPeriod=30)["EventDataStoreArn"]
    store_id = arn.rsplit("/", 1)[1]
    ct.create_trail(Name="dash-trail", S3BucketName="console-bucket")
    for name, times in zip(CALLS, (6, 3, 1)):
        for _ in range(times):
            if name == "ListTrails":
                ct.list_trails()
            elif name == "DescribeTrails":
                ct.describe_trails()
            else:
                ct.get_event_selectors(TrailName="dash-trail")
    names = ", ".join(f"'{n}'" for n in CALLS)
    sql = f"SELECT COUNT(*) AS n FROM {store_id} WHERE eventName IN ({names})"

    def written():
        query_id = ct.start_query(QueryStatement=sql)["QueryId"]
        wait_for(lambda: ct.describe_query(QueryId=query_id)["QueryStatus"] in ("FINISHED", "FAILED"),
                 what="the probe query")
        rows = lake_rows(ct, query_id)
        return rows and rows[0][0]["n"] == "10"
    wait_for(written, interval=1, what="the test's 10 calls in the event data store")
    return store_id


def widgets_of(store_id: str) -> list[dict]:
    names = ", ".join(f"'{n}'" for n in CALLS)
    counts = (f"SELECT eventName, COUNT(*) AS calls FROM {store_id} WHERE {RANGE} AND eventName IN ({names}) "
              "GROUP BY eventName ORDER BY calls DESC")
    return [
        {"QueryStatement": counts, "QueryParameters": ["$StartTime$", "$EndTime$"],
         "ViewProperties": {"View": "BarChart", "Title": "Calls by API", "XAxisColumn": "eventName",
                            "YAxisColumn": "calls"}},
        {"QueryStatement": counts, "QueryParameters": ["$StartTime$", "$EndTime$"],
         "ViewProperties": {"View": "PieChart", "Title": "Share of calls", "LabelColumn": "eventName",
                            "ValueColumn": "calls"}},
        {"QueryStatement": f"SELECT date_trunc('?', eventTime) AS period, COUNT(*) AS calls FROM {store_id} "
                           f"WHERE {RANGE} GROUP BY date_trunc('?', eventTime) ORDER BY period",
         "QueryParameters": ["$Period$", "$StartTime$", "$EndTime$", "$Period$"],
         "ViewProperties": {"View": "LineChart", "Title": "Events per period", "XAxisColumn": "period",
                            "YAxisColumn": "calls"}},
        {"QueryStatement": f"SELECT eventName, eventTime FROM {store_id} WHERE {RANGE} AND eventName = 'ListTrails' "
                           "ORDER BY eventTime",
         "QueryParameters": ["$StartTime$", "$EndTime$"],
         "ViewProperties": {"View": "Table", "Title": "ListTrails calls"}},
    ]


def wait_refreshed(driver) -> str:
    """Waits (the page reloads itself while widget queries run) until every widget's query
    of the shown refresh is done; returns the refresh id."""
    def done():
        try:
            status = driver.find_element(By.ID, "refresh-status")
            finished, total = status.get_attribute("data-finished"), status.get_attribute("data-widgets")
            return finished == total and driver.current_url.split("refresh=")[-1]
        except (NoSuchElementException, StaleElementReferenceException, WebDriverException):
            return None
    return wait_for(done, what="the dashboard's widget queries to finish")


def full_shot(driver, name: str) -> None:
    """A screenshot of the whole page (the window made as tall as the page meanwhile)."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    driver.set_window_size(width, max(height, driver.execute_script("return document.documentElement.scrollHeight") + 140))
    shot(driver, name)
    driver.set_window_size(width, height)


def widget_rows(ct, alias: str, refresh_id: str) -> list[list[tuple[str, str]]]:
    described = ct.describe_query(QueryAlias=alias, RefreshId=refresh_id)
    assert described["QueryStatus"] == "FINISHED", described
    return [[next(iter(cell.items())) for cell in row] for row in lake_rows(ct, described["QueryId"])]


def tab_to(driver, element_id: str, limit: int = 60) -> None:
    """Presses Tab from the top of the page until `element_id` has the focus."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.switch_to.active_element.get_attribute("id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_dashboard_with_each_view_refreshed_from_the_keyboard(console, browser):
    ct = console.client()
    store_id = make_store(ct, "dash-store")
    sign_in(browser, console)
    follow(browser, By.LINK_TEXT, "Dashboards")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Dashboards"
    rows = browser.find_elements(By.CSS_SELECTOR, "#dashboards tbody tr")
    managed = [r.text for r in rows if "MANAGED" in r.text]
    for name in ("AWSCloudTrail-Overview", "AWSCloudTrail-SecurityMonitoring", "AWSCloudTrail-IAMActivity",
                 "AWSCloudTrail-ErrorAnalysis", "AWSCloudTrail-UserActivity"):
        assert any(name in r for r in managed), (name, managed)
    shot(browser, "20-dashboards-list")

    # Create: a bad widget list is answered with the API's error and the form kept.
    follow(browser, By.ID, "create-dashboard")
    browser.find_element(By.ID, "dashboard-name").send_keys("console-dash")
    browser.find_element(By.ID, "widgets").send_keys('[{"QueryStatement": "SELECT 1 FROM nowhere"}]')
    follow(browser, By.ID, "create-dashboard-submit")
    assert browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert browser.find_element(By.ID, "dashboard-name").get_attribute("value") == "console-dash"
    area = browser.find_element(By.ID, "widgets")
    area.clear()
    area.send_keys(json.dumps(widgets_of(store_id)))
    follow(browser, By.ID, "create-dashboard-submit")
    assert "Dashboard created." in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    dashboard = ct.get_dashboard(DashboardId="console-dash")
    assert dashboard["Type"] == "CUSTOM" and len(dashboard["Widgets"]) == 4
    row = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#dashboards tbody tr") if "console-dash" in r.text][0]
    assert "CUSTOM" in row and "CREATED" in row and "Never" in row

    follow(browser, By.LINK_TEXT, "console-dash")
    assert "Not refreshed yet" in browser.find_element(By.ID, "main").text
    Select(browser.find_element(By.ID, "refresh-period")).select_by_value("minute")
    shot(browser, "21-dashboard-before-refresh")
    # The Refresh button is reached with Tab and pressed with Enter.
    tab_to(browser, "refresh-dashboard")
    before = browser.find_element(By.TAG_NAME, "html").id
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: browser.find_element(By.TAG_NAME, "html").id != before, what="the refreshed page")
    refresh_id = wait_refreshed(browser)
    assert ct.get_dashboard(DashboardId="console-dash")["LastRefreshId"] == refresh_id
    full_shot(browser, "22-dashboard-refreshed")

    bars = widget_rows(ct, "widget-1", refresh_id)
    assert sorted((dict(r)["eventName"], dict(r)["calls"]) for r in bars) == [
        ("DescribeTrails", "3"), ("GetEventSelectors", "1"), ("ListTrails", "6")]
    shown = browser.find_elements(By.CSS_SELECTOR, "#widget-1-chart rect.bar")
    assert [(b.get_attribute("data-label"), b.get_attribute("data-value")) for b in shown] == [
        (dict(r)["eventName"], dict(r)["calls"]) for r in bars]
    slices = browser.find_elements(By.CSS_SELECTOR, "#widget-2-chart path.slice")
    assert len(slices) == len(widget_rows(ct, "widget-2", refresh_id)) == 3
    points = widget_rows(ct, "widget-3", refresh_id)
    assert points and all(dict(r)["period"] for r in points)
    circles = browser.find_elements(By.CSS_SELECTOR, "#widget-3-chart circle.point")
    assert [c.get_attribute("data-value") for c in circles] == [dict(r)["calls"] for r in points]
    table = widget_rows(ct, "widget-4", refresh_id)
    assert len(table) == 6
    assert len(browser.find_elements(By.CSS_SELECTOR, "#widget-4-table tbody tr")) == 6
    assert not browser.find_elements(By.CSS_SELECTOR, "#widget-4 svg")
    # Each chart's data is also a table (for screen readers), and each chart is labelled.
    for alias in ("widget-1", "widget-2", "widget-3"):
        chart = browser.find_element(By.ID, f"{alias}-chart")
        assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-labelledby")
        assert browser.find_elements(By.CSS_SELECTOR, f"#{alias}-table tbody tr")
    browser.set_window_size(480, 900)
    full_shot(browser, "23-dashboard-narrow")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.set_window_size(1280, 800)

    # A managed dashboard, refreshed for the store.
    browser.get(f"{console.endpoint}/console/dashboards/view?name=AWSCloudTrail-Overview")
    Select(browser.find_element(By.ID, "refresh-store")).select_by_value(store_id)
    follow(browser, By.ID, "refresh-dashboard")
    overview_refresh = wait_refreshed(browser)
    sources = widget_rows(ct, "widget-2", overview_refresh)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#widget-2-chart rect.bar")) == len(sources) > 0
    assert browser.find_elements(By.CSS_SELECTOR, "#widget-1-chart circle.point")
    full_shot(browser, "24-managed-dashboard-refreshed")

    # A custom dashboard filled from a managed one, for the store.
    browser.get(f"{console.endpoint}/console/dashboards/new")
    Select(browser.find_element(By.ID, "template")).select_by_value("AWSCloudTrail-ErrorAnalysis")
    Select(browser.find_element(By.ID, "template-store")).select_by_value(store_id)
    follow(browser, By.ID, "use-template")
    widgets = json.loads(browser.find_element(By.ID, "widgets").get_attribute("value"))
    assert len(widgets) == 3 and all(store_id in w["QueryParameters"] for w in widgets)
    browser.find_element(By.ID, "dashboard-name").send_keys("errors-copy")
    follow(browser, By.ID, "create-dashboard-submit")
    copy = ct.get_dashboard(DashboardId="errors-copy")
    assert copy["Type"] == "CUSTOM" and [w["ViewProperties"]["View"] for w in copy["Widgets"]] == [
        "LineChart", "PieChart", "Table"]
    shot(browser, "25-dashboards-after-copy")


def test_dashboards_need_a_session_and_refresh_needs_the_csrf_token(console):
    ct = console.client()
    ct.create_dashboard(Name="guarded")
    base = console.endpoint
    for path in ("/console/dashboards", "/console/dashboards/new", "/console/dashboards/view?name=guarded"):
        answer = requests.get(base + path, allow_redirects=False, timeout=30)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/signin", path
    for path in ("/console/dashboards/refresh", "/console/dashboards/new", "/console/dashboards/delete"):
        answer = requests.post(base + path, data={"name": "guarded", "Name": "x", "csrf": "x"},
                               allow_redirects=False, timeout=30)
        assert answer.status_code == 401, path
    session = http_sign_in(console)
    token = csrf_of(session, console)
    for path in ("/console/dashboards/refresh", "/console/dashboards/delete"):
        for csrf in (None, "", "0" * len(token)):
            data = {"name": "guarded", **({} if csrf is None else {"csrf": csrf})}
            answer = session.post(base + path, data=data, allow_redirects=False, timeout=30)
            assert answer.status_code == 403, (path, csrf)
    dashboard = ct.get_dashboard(DashboardId="guarded")
    assert "LastRefreshId" not in dashboard
    answer = session.post(f"{base}/console/dashboards/refresh", data={"name": "guarded", "csrf": token},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303 and "refresh=" in answer.headers["location"]
    assert ct.get_dashboard(DashboardId="guarded")["LastRefreshId"] == answer.headers["location"].split("refresh=")[1]
    # The page of an unknown dashboard shows the API's error.
    page = session.get(f"{base}/console/dashboards/view?name=nope", timeout=30)
    assert "ResourceNotFoundException" in page.text
