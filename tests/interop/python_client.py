"""labthings-fastapi 0.3.0's own ThingClient drives our microscope example, unmodified.

Usage: python python_client.py http://127.0.0.1:PORT
Prints one line per check and a closing "N passed, N failed" line; exits 1 on any failure.
"""

import json
import sys
import threading
import time
import traceback
import urllib.request

import labthings_fastapi as lt
from labthings_fastapi.exceptions import (
    ClientPropertyError,
    InvocationCancelledError,
    ServerActionError,
)

BASE = sys.argv[1].rstrip("/")
results = []


def check(name):
    def run(test):
        try:
            test()
            results.append(True)
            print(f"ok      {name}")
        except Exception:  # noqa: BLE001 - report every failure, then go on
            results.append(False)
            print(f"FAILED  {name}")
            traceback.print_exc()
        return test

    return run


stage = lt.ThingClient.from_url(f"{BASE}/stage/")
camera = lt.ThingClient.from_url(f"{BASE}/camera/")


@check("reads a property")
def _():
    assert stage.position == [0, 0, 0], stage.position
    assert camera.exposure_ms == 10.0, camera.exposure_ms


@check("writes a property and reads it back")
def _():
    stage.position = [10, 20, 0]
    assert stage.position == [10, 20, 0], stage.position
    camera.exposure_ms = 20.0
    assert camera.exposure_ms == 20.0


@check("a bad value is a clear error naming the rule")
def _():
    try:
        camera.exposure_ms = 0.01
    except ClientPropertyError as error:
        assert "at least 0.1" in str(error), error
    else:
        raise AssertionError("no error for 0.01")
    assert camera.exposure_ms == 20.0


@check("writing a read-only property is a clear error from the server")
def _():
    try:
        camera.set_property("frames_captured", 5)
    except ClientPropertyError as error:
        assert "read-only" in str(error), error
    else:
        raise AssertionError("no error for a read-only property")


@check("an action with arguments returns its output")
def _():
    position = stage.move_relative(x=5, y=-5)
    assert position == [15, 15, 0], position
    assert stage.position == [15, 15, 0]


@check("a failing action raises ServerActionError with the message")
def _():
    try:
        stage.move_to(x=10**9, y=0, z=0)
    except ServerActionError as error:
        assert "outside the stage's travel" in str(error), error
        assert "[String]" not in str(error), f"a title that reads badly: {error}"
    else:
        raise AssertionError("no error from a failing action")


@check("an action cancelled by another client raises InvocationCancelledError")
def _():
    raised = []

    def home():
        try:
            stage.home()
        except InvocationCancelledError as error:  # a BaseException, not an Exception
            raised.append(error)
        except BaseException as error:  # noqa: BLE001 - reported below
            raised.append(error)

    caller = threading.Thread(target=home)
    caller.start()
    running = None
    for _ in range(100):
        with urllib.request.urlopen(f"{BASE}/stage/home") as response:
            invocations = json.load(response)
        running = next((i for i in invocations if i["status"] == "running"), None)
        if running:
            break
        time.sleep(0.05)
    assert running, "home() never started"
    cancel = urllib.request.Request(running["href"], method="DELETE")
    with urllib.request.urlopen(cancel) as response:
        assert response.status == 204, response.status
    caller.join(timeout=30)
    assert raised and isinstance(raised[0], InvocationCancelledError), raised


@check("a blob output arrives as a JPEG")
def _():
    blob = camera.capture()
    data = blob.content
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", data[:8]
    assert blob.media_type == "image/jpeg"


passed, failed = results.count(True), results.count(False)
print(f"python ThingClient: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
