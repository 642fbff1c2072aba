"""The events benchmark's peer: labthings-fastapi 0.3.0 notifying websocket observers of a
property set at a fixed rate (its only observation path; it has no events).

The property `tick` is set to {"seq": N, "t": <ns since 1970>} RATE times a second from a
thread, as a driver would; observers send addPropertyObservation and get propertyStatus.

Usage: BENCH_RATE=1000 python peer_events.py PORT
"""

import os
import sys
import threading
import time

import labthings_fastapi as lt
import uvicorn

RATE = float(os.environ.get("BENCH_RATE", "1000"))


class Ticker(lt.Thing):
    tick: dict = lt.property(default={"seq": -1, "t": 0})

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(target=self._produce, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *args):
        self._running = False
        self._thread.join()

    def _produce(self):
        interval = 1.0 / RATE
        start = time.monotonic()
        seq = 0
        while self._running:
            delay = start + seq * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.tick = {"seq": seq, "t": time.time_ns()}
            seq += 1


if __name__ == "__main__":
    server = lt.ThingServer.from_things({"ticker": Ticker})
    uvicorn.run(server.app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
