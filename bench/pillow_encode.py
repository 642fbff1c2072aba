"""Pillow's JPEG encoder (libjpeg-turbo) on the frames bench_pipeline offered, at the same
quality: the per-frame cost to compare ours with. Gray16 is windowed to 8 bits with numpy first
(the same window, 0..4095), and YUYV made into a YCbCr image (its chroma repeated for each
pixel of a pair), as a Python camera loop would."""

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
gray8 = np.fromfile(f"{folder}/gray8.raw", dtype=np.uint8).reshape(HEIGHT, WIDTH)
gray16 = np.fromfile(f"{folder}/gray16.raw", dtype="<u2").reshape(HEIGHT, WIDTH)
yuyv = np.fromfile(f"{folder}/yuyv.raw", dtype=np.uint8).reshape(HEIGHT, WIDTH // 2, 4)


def save(image):
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY)
    return out


def encode_rgb():
    return save(Image.fromarray(rgb, "RGB"))


def encode_gray8():
    return save(Image.fromarray(gray8, "L"))


def encode_gray16():
    window = (np.clip(gray16, 0, 4095).astype(np.float32) * (255.0 / 4095.0) + 0.5).astype(np.uint8)
    return save(Image.fromarray(window, "L"))


def encode_yuyv():
    ycbcr = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    ycbcr[:, 0::2, 0] = yuyv[:, :, 0]
    ycbcr[:, 1::2, 0] = yuyv[:, :, 2]
    ycbcr[:, :, 1] = np.repeat(yuyv[:, :, 1], 2, axis=1)
    ycbcr[:, :, 2] = np.repeat(yuyv[:, :, 3], 2, axis=1)
    return save(Image.fromarray(ycbcr, "YCbCr"))


for label, encode in [("rgb8", encode_rgb), ("gray8", encode_gray8), ("gray16", encode_gray16),
                      ("yuyv", encode_yuyv)]:
    encode()  # warm up
    start_cpu, start = time.process_time(), time.perf_counter()
    for _ in range(frames):
        encode()
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
    print(json.dumps({"run": label, "peer": f"Pillow {PIL.__version__}",
                      "cpu_ms_per_frame": 1000 * cpu / frames, "wall_ms_per_frame": 1000 * wall / frames}))
