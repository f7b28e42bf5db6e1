"""Headless Chromium for heed's browser tests (selenium + Debian's chromium and chromium-driver).

    from browser import make_driver, assert_no_console_errors
    with make_driver() as driver:
        driver.get("file:///tmp/attention.html")
        ...
        assert_no_console_errors(driver)

make_driver() starts Chromium headless (--headless=new --no-sandbox --disable-gpu) with a fresh
temporary profile that is deleted when the driver quits, and browser console logging on.
assert_no_console_errors() raises AssertionError listing every SEVERE browser console entry
(uncaught exceptions, failed resource loads) logged since the last call.
"""
import os
import shutil
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMEDRIVER = os.environ.get("HEED_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("HEED_CHROMIUM", "/usr/bin/chromium")


class _Driver(webdriver.Chrome):
    """A Chrome driver that removes its temporary profile on quit() and works as a context manager."""

    def __init__(self, profile, **kwargs):
        self._heed_profile = profile
        super().__init__(**kwargs)

    def quit(self):
        try:
            super().quit()
        finally:
            shutil.rmtree(self._heed_profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
        return False


def make_driver(width=1280, height=1000):
    """A headless Chromium driver with a temporary --user-data-dir and browser logs at ALL."""
    if not os.path.exists(CHROMEDRIVER):
        raise RuntimeError(f"chromedriver not found at {CHROMEDRIVER} (apt-get install chromium-driver)")
    profile = tempfile.mkdtemp(prefix="heed-chromium-")
    options = webdriver.ChromeOptions()
    if os.path.exists(CHROMIUM):
        options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", f"--window-size={width},{height}", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return _Driver(profile, service=Service(CHROMEDRIVER), options=options)
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise


def console_errors(driver):
    """The SEVERE browser console entries logged since the last call (the log is drained)."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def assert_no_console_errors(driver):
    errors = console_errors(driver)
    if errors:
        lines = "\n".join(f"  {e.get('level')}: {e.get('message')}" for e in errors)
        raise AssertionError(f"browser console errors:\n{lines}")
