"""The microscope example's CPU over a window, from its own /proc ticks: with no viewer and no
pre-trigger history armed, with one viewer of its main stream, and with history armed (issue
25). Prints one JSON line per case.

    idle.py <base URL> <pid> <seconds>
"""

import json
import os
import sys
import threading
import time
import urllib.request

BASE, PID, SECONDS = sys.argv[1].rstrip("/"), int(sys.argv[2]), float(sys.argv[3])
HZ = os.sysconf("SC_CLK_TCK")


def ticks():
    with open(f"/proc/{PID}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def put(path, value):
    request = urllib.request.Request(BASE + path, data=json.dumps(value).encode(), method="PUT",
                                     headers={"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def measure(case):
    time.sleep(1)  # let the change settle (a paused camera notices within a frame)
    before, start = ticks(), time.monotonic()
    time.sleep(SECONDS)
    used = (ticks() - before) / HZ
    elapsed = time.monotonic() - start
    print(json.dumps({"idle": case, "seconds": round(elapsed, 2), "cpu_percent": round(100 * used / elapsed, 2)}))


def watch(stop):
    with urllib.request.urlopen(BASE + "/camera/mjpeg_stream", timeout=30) as response:
        while not stop.is_set():
            if not response.read(65536):
                break


put("/camera/history_seconds", 0)
measure("no viewer, no history")
stop = threading.Event()
viewer = threading.Thread(target=watch, args=(stop,), daemon=True)
viewer.start()
measure("one viewer")
stop.set()
viewer.join(timeout=5)
put("/camera/history_seconds", 5)
measure("history armed, no viewer")
put("/camera/history_seconds", 0)
