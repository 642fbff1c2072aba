"""The webcam example against the simulated V4L2 device (see run.sh): what a user of a real USB
camera relies on, checked over HTTP and against the device's own record of its state."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

WEBCAM, WORK = sys.argv[1], sys.argv[2]
DEVICE = os.path.join(WORK, "video0")
FRAMES = os.path.join(WORK, "frames")
STATE = os.path.join(WORK, "state")


def make_frames():
    """Three distinct 640x480 JPEGs: the device serves them in turn in MJPG mode."""
    os.makedirs(FRAMES)
    frames = []
    for i in range(3):
        image = Image.new("RGB", (640, 480), (60 * i, 120, 200 - 50 * i))
        path = os.path.join(FRAMES, f"{i}.jpg")
        image.save(path, quality=80 + i)
        frames.append(open(path, "rb").read())
    assert len(set(frames)) == 3
    return frames


def state():
    """The device's record: its controls' values, whether it streams, frames delivered."""
    text = open(STATE).read()
    controls = dict(re.findall(r"control (.+)=(-?\d+)", text))
    values = dict(re.findall(r"^(streaming|frames_served)=(\d+)$", text, re.M))
    fmt = re.search(r"^format=(.+)$", text, re.M).group(1)
    return {k: int(v) for k, v in controls.items()}, int(values["streaming"]), int(values["frames_served"]), fmt


def request(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            raw = response.read()
            return response.status, response.headers.get("Content-Type", ""), raw
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def get(path):
    status, _, raw = request("GET", path)
    assert status == 200, (path, status, raw)
    return json.loads(raw)


def put(path, value):
    status, content_type, raw = request("PUT", path, value)
    return status, (json.loads(raw) if raw and "json" in content_type else None)


def wait_for(what, condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


def read_parts(count):
    """The first `count` JPEG parts of the stream, as a viewer receives them."""
    response = urllib.request.urlopen(URL + "/camera/mjpeg_stream", timeout=10)
    boundary = re.search(r"boundary=(\S+)", response.headers["Content-Type"]).group(1).encode()
    parts, buffer = [], b""
    while len(parts) < count:
        chunk = response.read1(65536)
        assert chunk, "the stream ended"
        buffer += chunk
        while True:
            start = buffer.find(b"--" + boundary)
            header_end = buffer.find(b"\r\n\r\n", start)
            if start < 0 or header_end < 0:
                break
            headers = buffer[start:header_end].decode("latin-1")
            length = int(re.search(r"Content-Length: (\d+)", headers, re.I).group(1))
            body_start = header_end + 4
            if len(buffer) < body_start + length:
                break
            parts.append(buffer[body_start:body_start + length])
            buffer = buffer[body_start + length:]
    response.close()
    return parts


frames = make_frames()
open(DEVICE, "w").close()
config = os.path.join(WORK, "config.json")
with open(config, "w") as f:
    json.dump({"things": {"camera": {"class": "v4l2_camera",
                                     "kwargs": {"device": DEVICE, "idle_seconds": 1}}}}, f)
env = dict(os.environ, LD_PRELOAD=os.path.join(WORK, "fakecam.so"), FAKECAM_DEVICE=DEVICE,
           FAKECAM_FRAMES=FRAMES, FAKECAM_STATE=STATE, RUST_LOG="info")
log = open(os.path.join(WORK, "log"), "w+")
server = subprocess.Popen([WEBCAM, "--config", config, "--port", "0"], cwd=WORK, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
try:
    URL = None
    for _ in range(200):
        log.seek(0)
        found = re.search(r"serving on (http://[0-9.:]+)", log.read())
        if found:
            URL = found.group(1)
            break
        time.sleep(0.05)
    assert URL, "the webcam example did not start"

    # Formats, sizes and rates, as the device lists them; H264 (not served) left out.
    modes = get("/camera/modes")
    assert modes == [
        {"format": "MJPG", "width": 640, "height": 480, "fps": 30.0},
        {"format": "MJPG", "width": 640, "height": 480, "fps": 15.0},
        {"format": "MJPG", "width": 320, "height": 240, "fps": 30.0},
        {"format": "YUYV", "width": 320, "height": 240, "fps": 15.0},
    ], modes
    assert get("/camera/mode") == modes[0], "the default is MJPEG, largest, fastest"
    assert get("/camera/card") == "LabThings test camera"
    print("ok: modes listed, MJPG 640x480 at 30 fps chosen")

    # The controls, as properties with the device's ranges, in the TD.
    td = get("/camera/")
    props = td["properties"]
    assert props["brightness"]["type"] == "integer"
    assert (props["brightness"]["minimum"], props["brightness"]["maximum"]) == (0, 255)
    assert "default 128" in props["brightness"]["description"]
    assert props["contrast"]["multipleOf"] == 5
    assert props["white_balance_automatic"]["type"] == "boolean"
    assert "1: Manual Mode, 3: Aperture Priority Mode" in props["auto_exposure"]["description"]
    assert (props["exposure_time_absolute"]["minimum"], props["exposure_time_absolute"]["maximum"]) == (3, 2047)
    assert "do_white_balance" not in props and "user_controls" not in props, list(props)
    assert get("/camera/brightness") == 128 and get("/camera/white_balance_automatic") is True
    print("ok: controls are properties with the device's ranges, defaults and menus")

    # Nothing streams before anyone watches.
    time.sleep(0.5)
    _, streaming, served, _ = state()
    assert (streaming, served) == (0, 0), (streaming, served)
    assert get("/camera/streaming") is False
    print("ok: the device does not stream while nobody watches")

    # MJPEG from the device, byte for byte, in the device's order.
    parts = read_parts(12)
    indexes = [frames.index(p) for p in parts]  # ValueError if any part was altered
    assert all((b - a) % 3 == 1 for a, b in zip(indexes, indexes[1:])), indexes
    print(f"ok: 12 stream parts are the device's JPEGs byte for byte, in order {indexes}")

    # Streaming stops idle_seconds (1 s) after the last viewer.
    wait_for("streaming stops after the viewer leaves", lambda: state()[1] == 0, 4)
    assert get("/camera/streaming") is False
    print("ok: streaming stopped after the viewer left")

    # Controls go to the device; bad values and refusals are clear 4xx.
    assert put("/camera/brightness", 200)[0] == 204
    assert state()[0]["Brightness"] == 200
    status, problem = put("/camera/brightness", 300)
    assert status == 422 and "brightness" in json.dumps(problem), (status, problem)
    status, problem = put("/camera/contrast", 52)
    assert status == 422 and "multiple" in problem["detail"], (status, problem)
    status, problem = put("/camera/exposure_time_absolute", 900)
    assert status == 409 and "refused" in problem["detail"], (status, problem)
    assert get("/camera/exposure_time_absolute") == 250, "a refused value is not kept"
    assert put("/camera/auto_exposure", 1)[0] == 204
    assert put("/camera/exposure_time_absolute", 900)[0] == 204
    assert put("/camera/white_balance_automatic", False)[0] == 204
    controls = state()[0]
    assert (controls["Exposure Time, Absolute"], controls["White Balance, Automatic"]) == (900, 0), controls
    print("ok: control writes reach the device; out of range 422, refused 409 with the reason")

    # YUYV: through the frame pipeline.
    status, problem = put("/camera/mode", {"format": "YUYV", "width": 640, "height": 480, "fps": 15})
    assert status == 422 and "YUYV 320x240 at 15 fps" in problem["detail"], (status, problem)
    assert put("/camera/mode", modes[3])[0] == 204
    status, content_type, jpeg = request("GET", "/camera/mjpeg_stream/snapshot")
    assert status == 200 and content_type == "image/jpeg", (status, content_type)
    image = Image.open(io.BytesIO(jpeg))
    assert image.size == (320, 240), image.size
    grey = np.asarray(image.convert("L"), dtype=float)
    expected = np.tile(255.0 * np.arange(320) / 319, (240, 1))
    error = np.abs(grey - expected).mean()
    assert error < 4, f"mean error {error:.1f}"
    assert state()[3] == "YUYV 320x240 15"
    print(f"ok: YUYV 320x240 encoded by the pipeline (mean error {error:.2f} grey levels)")

    # Unplug and replug: noticed, recovered, controls set again.
    os.remove(DEVICE)
    wait_for("connected goes false", lambda: get("/camera/connected") is False, 3)
    status, problem = put("/camera/brightness", 90)
    assert status == 503 and "unplugged" in problem["detail"], (status, problem)
    open(DEVICE, "w").close()
    wait_for("connected goes true", lambda: get("/camera/connected") is True, 3)
    controls = state()[0]
    assert controls["Brightness"] == 200 and controls["Exposure Time, Absolute"] == 900, controls
    parts = read_parts(2)
    assert Image.open(io.BytesIO(parts[-1])).size == (320, 240)
    print("ok: unplug noticed (connected false, writes 503), replug recovered with the controls set again")

    # A clean stop releases the device.
    server.send_signal(signal.SIGTERM)
    assert server.wait(10) == 0
    assert state()[1] == 0
    print("ok: SIGTERM stops the server, the device is released")
except BaseException:
    log.seek(0)
    sys.stderr.write(log.read()[-4000:])
    raise
finally:
    if server.poll() is None:
        server.kill()
