"""
The page `allennlp serve` shows at `/` (allennlp_multitask/serving/static/index.html), in a real headless
Chromium (Debian's `chromium` and `chromium-driver`, driven by Selenium) against a real `allennlp serve`
process: the task list comes from the server, a prediction round-trips and shows each head's label or
tags, and an empty text shows the server's own error message.
"""

import os
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from allennlp.predictors import Predictor
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.commands.servers import Server

pytestmark = [pytest.mark.slow, pytest.mark.subprocess, pytest.mark.once]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
NO_OUTPUTS = {"model.include_backbone_outputs": False}


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium through Debian's chromedriver (so that selenium-manager never downloads a driver)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        message = f"{missing} missing: apt-get install chromium chromium-driver (.ci/run does, as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1000"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(conll_example_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`allennlp serve` on the CoNLL example (two taggers and a classifier), from a directory of its own."""
    server = Server(conll_example_run / "model.tar.gz", tmp_path_factory.mktemp("serve"))
    yield server
    server.stop()


def predicted(archive: Path, inputs: Dict[str, Any]) -> Dict[str, Any]:
    """What AllenNLP's predictor API gives for the input, as `allennlp predict` writes it."""
    predictor = Predictor.from_path(str(archive), predictor_name="multitask", overrides=NO_OUTPUTS)
    return predictor.predict_json(inputs)


def error_of(server: Server, inputs: Dict[str, Any]) -> str:
    status, answer = server.request("/predict", inputs)
    assert 400 <= status < 500
    return answer["error"]


def submit(browser: WebDriver, task: str, text: str, keyboard: bool = False) -> None:
    """Picks the task, types the text into its input, and predicts: with the button, or Ctrl+Enter."""
    Select(browser.find_element(By.ID, "task")).select_by_value(task)
    (box,) = browser.find_elements(By.CSS_SELECTOR, "#inputs textarea")
    box.clear()
    box.send_keys(text)
    if keyboard:
        box.send_keys(Keys.CONTROL, Keys.ENTER)
    else:
        browser.find_element(By.ID, "predict").click()
    form = browser.find_element(By.ID, "form")
    WebDriverWait(browser, 30).until(lambda _: form.get_attribute("aria-busy") == "false")


def head_titles(browser: WebDriver) -> List[str]:
    return [card.find_element(By.TAG_NAME, "h2").text for card in browser.find_elements(By.CSS_SELECTOR, ".head")]


def shown_tags(browser: WebDriver, head: str) -> List[str]:
    return [tag.text for tag in browser.find_elements(By.CSS_SELECTOR, f'.head[data-head="{head}"] .tag')]


def test_page_lists_the_tasks_predicts_and_shows_the_servers_errors(
    browser: WebDriver, server: Server, conll_example_run: Path, tmp_path: Path
):
    browser.get(f"{server.url}/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#task option"))
    options = [option.get_attribute("value") for option in browser.find_elements(By.CSS_SELECTOR, "#task option")]
    assert options == list(server.request("/tasks")[1]["tasks"])

    archive = conll_example_run / "model.tar.gz"
    sentence = "the match ended in a draw"
    submit(browser, "topic", sentence)
    expected = predicted(archive, {"task": "topic", "sentence": sentence})
    assert head_titles(browser) == [f"topic: {expected['topic_label']}"]
    shown_rows = browser.find_elements(By.CSS_SELECTOR, '.head[data-head="topic"] tbody tr')
    assert len(shown_rows) == len(expected["topic_probs"])
    top = f"{100 * max(expected['topic_probs']):.1f}%"
    assert browser.find_element(By.CSS_SELECTOR, ".head tr.top").text.split() == [expected["topic_label"], top]
    # Every row is named: the labels the server lists for the head, each once.
    names = server.request("/tasks")[1]["tasks"]["topic"]["labels"]["topic"]
    assert sorted(row.find_element(By.TAG_NAME, "td").text for row in shown_rows) == sorted(names)

    tokens = ["Maria", "Garcia", "visited", "Ajax"]
    submit(browser, "conll", " ".join(tokens), keyboard=True)
    expected = predicted(archive, {"task": "conll", "tokens": tokens})
    assert head_titles(browser) == ["pos", "ner"]
    assert shown_tags(browser, "pos") == expected["pos_tags"]
    assert shown_tags(browser, "ner") == expected["ner_tags"]
    browser.save_screenshot(str(tmp_path / "prediction.png"))

    submit(browser, "topic", "")
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed() and not browser.find_element(By.ID, "results").is_displayed()
    assert error.text == error_of(server, {"task": "topic", "sentence": ""})
    browser.save_screenshot(str(tmp_path / "error.png"))
