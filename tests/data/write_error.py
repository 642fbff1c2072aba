"""A recording that runs out of room: the microscope runs with a file size limit (ulimit -f,
SIGXFSZ ignored, so writes past it fail with EFBIG as on a full disk). The invocation must end
as `error` saying so and naming the file, and the file must still play.

Usage: write_error.py URL DATA_FOLDER
"""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2

BASE, DATA = sys.argv[1].rstrip("/"), Path(sys.argv[2])
req = urllib.request.Request(f"{BASE}/camera/record_mjpeg_stream", data=json.dumps({"seconds": 60}).encode(),
                             method="POST", headers={"content-type": "application/json"})
invocation = json.loads(urllib.request.urlopen(req, timeout=30).read())
deadline = time.monotonic() + 60
while invocation["status"] in ("pending", "running"):
    assert time.monotonic() < deadline, "the recording never hit the limit"
    time.sleep(0.2)
    invocation = json.loads(urllib.request.urlopen(invocation["href"], timeout=30).read())
assert invocation["status"] == "error", invocation
detail = invocation["error"]["detail"]
avi = next((DATA / "recordings").glob("*.avi"))
assert avi.name in detail and "too large" in detail.lower(), detail
print(f"ok      the full recording ends as error: {detail}")
probe = json.loads(subprocess.run(
    ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
     "stream=nb_read_frames", "-of", "json", str(avi)],
    check=True, capture_output=True, text=True).stdout)["streams"][0]
capture = cv2.VideoCapture(str(avi))
frames = 0
while capture.read()[0]:
    frames += 1
assert int(probe["nb_read_frames"]) >= 15 and frames >= 15, (probe, frames)
print(f"ok      the partial file ({avi.stat().st_size} bytes) plays: ffprobe reads "
      f"{probe['nb_read_frames']} frames, OpenCV {frames}")
