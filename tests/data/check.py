"""The data a scientist keeps, read back by the tools scientists use.

Usage: check.py URL DATA_FOLDER

- capture_array: numpy loads the .npy and tifffile reads the TIFF, equal to each other, 16-bit;
  its axis names, unit and metadata are in the output and in the TIFF (tifffile);
- capture: Pillow reads the instrument's state from the JPEG's comment, equal to the output's;
- a recording: ffprobe and OpenCV read the AVI, with as many frames as its CSV index lists;
- a property's history: pandas and numpy read its CSV download, equal to its JSON.
"""

import io
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy
import pandas
import tifffile
from PIL import Image

BASE, DATA = sys.argv[1].rstrip("/"), Path(sys.argv[2])
passed = failed = 0


def check(name, test):
    global passed, failed
    try:
        test()
        passed += 1
        print(f"ok      {name}")
    except Exception as error:  # noqa: BLE001 - reported, then counted
        failed += 1
        print(f"FAILED  {name}\n{error!r}")


def request(path, body=None, method=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path if path.startswith("/") else path, data=data,
                                 method=method, headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=60) as response:
        return response.read(), response.headers


def invoke(path, body=None):
    invocation = json.loads(request(path, body if body is not None else {}, "POST")[0])
    while invocation["status"] in ("pending", "running"):
        time.sleep(0.2)
        invocation = json.loads(request(invocation["href"])[0])
    return invocation


def arrays():
    invocation = invoke("/camera/capture_array")
    assert invocation["status"] == "completed", invocation
    output = invocation["output"]
    npy, headers = request(output["href"])
    assert headers["content-type"] == "application/x-npy", headers
    array = numpy.load(io.BytesIO(npy))
    tiff, headers = request(output["href"], headers={"accept": "image/tiff"})
    assert headers["content-type"] == "image/tiff", headers
    image = tifffile.imread(io.BytesIO(tiff))
    assert array.dtype == numpy.uint16 and image.dtype == numpy.uint16, (array.dtype, image.dtype)
    assert array.shape == (480, 640) == tuple(output["shape"]), array.shape
    assert numpy.array_equal(array, image), "the TIFF and the .npy differ"
    assert array.max() > 255, "16-bit values"
    # What the numbers mean: in the output (what a ThingClient reads) and in the TIFF.
    assert output["axes"] == ["y", "x"] and output["unit"] == "counts", output
    assert set(output["metadata"]) == {"exposure_ms", "gain", "sensor_temperature_c"}, output
    with tifffile.TiffFile(io.BytesIO(tiff)) as tif:
        kept = tif.shaped_metadata[0]
    assert kept["axes"] == ["y", "x"] and kept["unit"] == "counts", kept
    assert kept["metadata"] == output["metadata"], (kept, output["metadata"])
    assert list(kept["shape"]) == [480, 640], kept


def snapshot():
    invocation = invoke("/camera/capture")
    assert invocation["status"] == "completed", invocation
    jpeg, _ = request(invocation["output"]["href"])
    comment = Image.open(io.BytesIO(jpeg)).info["comment"]
    stored = json.loads(comment.removeprefix(b"labthings-snapshot "))
    assert stored == invocation["output"]["metadata"], (stored, invocation["output"]["metadata"])
    assert "position" in stored["things"]["stage"], stored


def recording():
    # The pre-trigger second needs its history armed (the camera encodes nothing unwatched
    # otherwise), and a second of frames held.
    request("/camera/history_seconds", method="PUT", body=2)
    time.sleep(1.5)
    invocation = invoke("/camera/record_mjpeg_stream", {"seconds": 2, "max_fps": 10, "pre_seconds": 1})
    assert invocation["status"] == "completed", invocation
    video, headers = request(invocation["output"]["href"])
    assert headers["content-type"] == "video/x-msvideo", headers
    recordings = DATA / "recordings"
    avi = max(recordings.glob("*.avi"), key=lambda p: p.stat().st_mtime)
    assert avi.read_bytes() == video, "served as written"
    rows = avi.with_suffix(".csv").read_text().splitlines()[1:]
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(avi)],
        check=True, capture_output=True, text=True).stdout)["streams"][0]
    assert probe["codec_name"] == "mjpeg" and (probe["width"], probe["height"]) == (640, 480), probe
    assert int(probe["nb_read_frames"]) == len(rows), (probe, len(rows))
    capture = cv2.VideoCapture(str(avi))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (480, 640, 3), frame.shape
        frames += 1
    assert frames == len(rows), (frames, len(rows))
    assert 29 <= frames <= 31, frames
    print(f"        ffprobe and OpenCV read {frames} frames, as the index lists")


def history():
    # The simulated sensor temperature changes ten times a second: wait for a few samples.
    time.sleep(1.5)
    body, headers = request("/camera/sensor_temperature/history?format=csv")
    assert headers["content-type"] == "text/csv; charset=utf-8", headers
    assert "sensor_temperature_history.csv" in headers["content-disposition"], headers
    frame = pandas.read_csv(io.BytesIO(body), parse_dates=["timestamp"])
    assert list(frame.columns) == ["timestamp", "sensor_temperature [°C]"], frame.columns
    assert len(frame) >= 5, frame
    assert str(frame["timestamp"].dt.tz) == "UTC", frame.dtypes
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique
    assert frame["sensor_temperature [°C]"].dtype == numpy.float64, frame.dtypes
    values = numpy.loadtxt(io.BytesIO(body), delimiter=",", skiprows=1, usecols=1, encoding="utf-8")
    assert numpy.array_equal(values, frame["sensor_temperature [°C]"].to_numpy())
    # The JSON form has the same samples (read after, so perhaps a few more).
    samples = json.loads(request("/camera/sensor_temperature/history")[0])["samples"]
    assert [s["value"] for s in samples[:len(values)]] == values.tolist()
    print(f"        pandas and numpy read {len(frame)} samples, equal to the JSON")


check("numpy loads the .npy and tifffile the TIFF of a 16-bit array, equal", arrays)
check("Pillow reads the instrument's state from a capture's JPEG comment", snapshot)
check("ffprobe and OpenCV read a recording, frame for frame with its index", recording)
check("pandas and numpy read a property's history as CSV", history)
print(f"data: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
