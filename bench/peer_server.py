"""The benchmark's peer: labthings-fastapi 0.3.0 serving one MJPEG stream.

It streams the same pre-encoded frames as our server, stamped the same way (a JPEG comment
segment `LTBENCH:<push time ns>:<frame length>;` inserted just before `add_frame`), at
/camera/mjpeg_stream.

Usage: BENCH_FRAMES=DIR BENCH_FPS=30|max python peer_server.py PORT
"""

import glob
import os
import sys
import threading
import time

import labthings_fastapi as lt
import uvicorn

FRAMES_DIR = os.environ["BENCH_FRAMES"]
FPS = os.environ.get("BENCH_FPS", "30")
PAYLOAD_LEN = 8 + 20 + 1 + 10 + 1


def stamp(frame: bytes, pushed_ns: int) -> bytes:
    total = len(frame) + 4 + PAYLOAD_LEN
    payload = b"LTBENCH:%020d:%010d;" % (pushed_ns, total)
    return b"\xff\xd8\xff\xfe" + (PAYLOAD_LEN + 2).to_bytes(2, "big") + payload + frame[2:]


class BenchCamera(lt.Thing):
    mjpeg_stream = lt.outputs.MJPEGStreamDescriptor()

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(target=self._produce, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *args):
        self._running = False
        self._thread.join()

    def _produce(self):
        paths = sorted(glob.glob(os.path.join(FRAMES_DIR, "*.jpg")))
        frames = [open(path, "rb").read() for path in paths]
        interval = None if FPS == "max" else 1.0 / float(FPS)
        start = time.monotonic()
        n = 0
        while self._running:
            if interval is not None:
                delay = start + n * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.mjpeg_stream.add_frame(stamp(frames[n % len(frames)], time.time_ns()))
            n += 1
            if interval is None:
                time.sleep(0)


if __name__ == "__main__":
    server = lt.ThingServer.from_things({"camera": BenchCamera})
    uvicorn.run(server.app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
