#!/usr/bin/env python3
"""The live page in a real browser: the browser test of tests/browser.sh.

Opens `ser-infer serve`'s page in headless Chromium (through chromedriver) whose fake microphone
plays a generated recording, presses Start, waits for windows, presses Stop, and checks:
  - `#ser-timeline` holds windows with labels from the checkpoint's set;
  - they equal `ser-infer stream` on the very PCM the page sent (`serCaptured()`), labels and
    confidences to 3 decimals, window edges exactly: the page sends the capture at the audio
    context's own rate, untouched (never 16 kHz, which would drop the band above 8 kHz the model
    hears), and the server windows what arrives, so comparing on what was sent aligns them;
  - the file tab's segments equal `/v1/timeline`'s for the same file.
Screenshots go to OUT_DIR.

    python3 tests/browser_check.py URL CHECKPOINT SER_INFER MIC.wav FILE.wav OUT_DIR
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def windows(driver, container):
    return driver.execute_script(
        "return [...document.getElementById(arguments[0]).children].map(c => ({...c.dataset}))", container)


def wait_for(what, predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def same_windows(got, expected, what):
    assert len(got) == len(expected), f"{what}: {len(got)} windows, expected {len(expected)}"
    for g, e in zip(got, expected):
        assert abs(float(g["start"]) - e["start_s"]) < 1e-6 and abs(float(g["end"]) - e["end_s"]) < 1e-6, (what, g, e)
        if e["silent"]:
            assert g["label"] == "", (what, g, e)
        else:
            assert g["label"] == e["label"], (what, g, e)
            assert round(float(g["confidence"]), 3) == round(e["confidence"], 3), (what, g, e)


def main():
    url, checkpoint, ser_infer, mic, file_wav, out = sys.argv[1:7]
    # SER_TEST_KEY: the server wants this API key; the page must ask for it, then work as without.
    key = os.environ.get("SER_TEST_KEY")
    auth = {"authorization": f"Bearer {key}"} if key else {}
    os.makedirs(out, exist_ok=True)
    model = json.load(urllib.request.urlopen(urllib.request.Request(url + "/v1/model", headers=auth)))
    labels = set(model["labels"])
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}%noloop", "--autoplay-policy=no-user-gesture-required",
                "--window-size=1100,900"]:
        options.add_argument(arg)
    binary = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if os.path.exists(binary):
        options.binary_location = binary
    driver = webdriver.Chrome(options=options, service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))
    try:
        driver.get(url + "/")
        if key:
            wait_for("the page to ask for a key", lambda: driver.find_element(By.ID, "ser-key-form").is_displayed(), 20)
            driver.find_element(By.ID, "ser-key").send_keys(key)
            driver.find_element(By.ID, "ser-key-use").click()
        wait_for("the model to load", lambda: "classes" in driver.find_element(By.ID, "ser-model").text, 20)
        assert driver.execute_script("return document.body.dataset.state") == "idle"
        driver.find_element(By.ID, "ser-start").click()
        wait_for("state listening", lambda: driver.execute_script("return document.body.dataset.state") == "listening"
                 or driver.execute_script("return document.body.dataset.state") == "error", 20)
        state = driver.execute_script("return document.body.dataset.state")
        assert state == "listening", driver.find_element(By.ID, "ser-error").text
        # The recording lasts about 19 s: windows of ~4 s every ~2 s, a silent one among them.
        wait_for("seven windows", lambda: len(windows(driver, "ser-timeline")) >= 7, 90)
        driver.find_element(By.ID, "ser-start").click()  # Stop: the server sends the last window
        time.sleep(2.0)
        driver.save_screenshot(os.path.join(out, "live.png"))
        got = windows(driver, "ser-timeline")
        assert all(w["label"] in labels or w["label"] == "" for w in got), got
        assert any(w["label"] for w in got), f"no window was classified: {got}"
        assert any(w["label"] == "" for w in got), f"no silent window among {got}"
        pcm = base64.b64decode(driver.execute_script("return serCaptured()"))
        rate = driver.execute_script("return serSendRate()")
        analysis = model["features_config"]["sample_rate"]
        assert isinstance(rate, (int, float)) and rate >= analysis, \
            f"the page sent at {rate} Hz: below the model's analysis rate {analysis} Hz, a band it hears is lost"
        stream = subprocess.run([ser_infer, "-q", "stream", "--checkpoint", checkpoint, "--raw", "f32le",
                                 "--sample-rate", str(rate)], input=pcm, capture_output=True, check=True)
        expected = [json.loads(line) for line in stream.stdout.decode().splitlines() if line.strip()]
        same_windows(got, expected, "live tab vs ser-infer stream on the PCM sent")
        print(f"ok   live tab: {len(got)} windows from the fake microphone, sent at {rate} Hz (the model "
              f"analyses at {analysis} Hz), equal ser-infer stream's ({sum(1 for w in got if w['label'])} "
              f"classified); screenshot {out}/live.png")

        driver.find_element(By.ID, "tab-file").click()
        driver.find_element(By.ID, "ser-file").send_keys(os.path.abspath(file_wav))
        wait_for("the file's segments", lambda: len(windows(driver, "ser-file-timeline")) > 0, 60)
        got = windows(driver, "ser-file-timeline")
        request = urllib.request.Request(url + "/v1/timeline", data=open(file_wav, "rb").read(),
                                         headers={"content-type": "audio/wav", **auth})
        expected = json.load(urllib.request.urlopen(request))["segments"]
        same_windows(got, expected, "file tab vs /v1/timeline")
        rows = driver.find_elements(By.CSS_SELECTOR, "#ser-segments tbody tr")
        assert len(rows) == len(expected)
        assert driver.find_element(By.ID, "ser-csv").get_attribute("href").startswith("blob:")
        driver.save_screenshot(os.path.join(out, "file.png"))
        print(f"ok   file tab: {len(got)} segments of {os.path.basename(file_wav)} equal /v1/timeline's; "
              f"screenshot {out}/file.png")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
