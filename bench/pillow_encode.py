"""Pillow's JPEG encoder (libjpeg-turbo) on the frames bench_pipeline offered, at the same
quality: the per-frame cost to compare ours with. Gray16 is windowed to 8 bits with numpy first
(the same window, 0..4095), as a Python camera loop would."""

import io
import json
import sys
import time

import numpy as np
import PIL
from PIL import Image

folder, frames = sys.argv[1], int(sys.argv[2])
WIDTH, HEIGHT, QUALITY = 1920, 1080, 85
rgb = np.fromfile(f"{folder}/rgb8.raw", dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)
gray16 = np.fromfile(f"{folder}/gray16.raw", dtype="<u2").reshape(HEIGHT, WIDTH)


def encode_rgb():
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, "JPEG", quality=QUALITY)
    return out


def encode_gray16():
    window = (np.clip(gray16, 0, 4095).astype(np.float32) * (255.0 / 4095.0) + 0.5).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(window, "L").save(out, "JPEG", quality=QUALITY)
    return out


for label, encode in [("rgb8", encode_rgb), ("gray16", encode_gray16)]:
    encode()  # warm up
    start_cpu, start = time.process_time(), time.perf_counter()
    for _ in range(frames):
        encode()
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
    print(json.dumps({"run": label, "peer": f"Pillow {PIL.__version__}",
                      "cpu_ms_per_frame": 1000 * cpu / frames, "wall_ms_per_frame": 1000 * wall / frames}))
