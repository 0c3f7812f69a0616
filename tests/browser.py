"""A headless Chromium driven by selenium, for the /ui page's browser test and its screenshots
(scripts/ui_screenshots.py): Debian's chromium and chromium-driver, which
scripts/install-chromium.sh installs (`make test` runs it); selenium is given the driver's path,
so its manager downloads nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def _found(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(f"none of {names} is installed: run scripts/install-chromium.sh "
                       "(apt-get install chromium chromium-driver)")


@contextlib.contextmanager
def chromium(width: int = 1500, height: int = 1000,
             downloads: str | None = None) -> Iterator[webdriver.Chrome]:
    """`downloads`: where the page's downloads go."""
    options = webdriver.ChromeOptions()
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                                  "download.prompt_for_download": False})
    options.binary_location = _found("chromium", "chromium-browser")
    for arg in ("--headless=new", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    if os.geteuid() == 0:  # Chromium refuses to run as root inside its sandbox (CI, containers)
        options.add_argument("--no-sandbox")
    driver = webdriver.Chrome(options=options, service=Service(_found("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: webdriver.Chrome, url: str, timeout_s: float = 30) -> None:
    """The /ui page, loaded and its form filled from the server's config."""
    driver.get(f"{url}/ui")
    WebDriverWait(driver, timeout_s).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#model option")
        and d.find_elements(By.CSS_SELECTOR, "#verifiers input"))


def fill(driver: webdriver.Chrome, *, prompt: str, strategy: str, seed: int | None = None,
         budget: int | None = None, extra: str = "", verifiers: dict[str, float] | None = None,
         max_tokens: int | None = None) -> None:
    def set_value(element_id: str, value) -> None:
        element = driver.find_element(By.ID, element_id)
        element.clear()
        if value is not None and value != "":
            element.send_keys(str(value))

    set_value("prompt", prompt)
    Select(driver.find_element(By.ID, "strategy")).select_by_value(strategy)
    set_value("seed", seed)
    if budget is not None:
        set_value("budget", budget)
    if max_tokens is not None:
        set_value("max-tokens", max_tokens)
    set_value("extra", extra)
    if verifiers is not None:
        for element in driver.find_elements(By.CSS_SELECTOR, "#verifiers input"):
            name = element.get_attribute("data-verifier")
            element.clear()
            if name in verifiers:
                element.send_keys(str(verifiers[name]))


def status(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.ID, "status").text


def drawn_nodes(driver: webdriver.Chrome) -> list:
    return driver.find_elements(By.CSS_SELECTOR, "#tree g.node")
