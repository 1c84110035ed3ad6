#!/usr/bin/env python3
"""Regenerates the data-loading test fixtures next to this script.

    python3 make_fixtures.py

Writes (deterministically, from a fixed seed):
  omniglot/<alphabet>/<character>/<NNNN_MM>.png
      2 alphabets x 3 characters x 4 drawings, 20x20 1-bit grayscale like Omniglot:
      black strokes on white. Each character is a thick line through the centre at its
      own angle; each drawing jitters angle and position and flips a few noise pixels,
      so a classifier can learn the six classes. omniglot/README.txt must be ignored.
  grid/Digits/grid/0001_01.png
      a 3x3 8-bit image with rows 25 50 75 / 100 125 150 / 175 200 225, for exact
      decoding and rotation checks.
  corrupt/Greek/character01/
      0001_01.png (valid) and 0001_02.png (cut off inside its IDAT chunk).
  csv/*.csv
      a good table (quotes, escaped quotes, CRLF, blank line, whitespace), a ragged one
      whose bad row comes after a quoted line break, a non-numeric one, an empty file and
      a header-only file.

Only the Python standard library and numpy are used; the PNG bytes are written by hand.
"""

import os
import struct
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def png_bytes(pixels, bit_depth):
    """Encodes a 2-D uint8 array as a grayscale PNG (color type 0, no interlace).

    With bit_depth 1 the array holds 0 (black) and 1 (white); with 8 it holds 0...255.
    """
    height, width = pixels.shape
    if bit_depth == 1:
        rows = [np.packbits(row.astype(np.uint8)).tobytes() for row in pixels]
    else:
        rows = [row.astype(np.uint8).tobytes() for row in pixels]
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (None) on every row

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write(relative_path, data):
    path = os.path.join(HERE, relative_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)


def stroke_image(angle_degrees, rng, size=20):
    """A white image with a black line of half-width 1 through the (jittered) centre."""
    angle = np.radians(angle_degrees + rng.uniform(-6, 6))
    cx, cy = (size - 1) / 2 + rng.uniform(-1, 1, size=2)
    ys, xs = np.mgrid[0:size, 0:size]
    dx, dy = xs - cx, ys - cy
    across = np.abs(-np.sin(angle) * dx + np.cos(angle) * dy)
    along = np.abs(np.cos(angle) * dx + np.sin(angle) * dy)
    image = np.ones((size, size), dtype=np.uint8)
    image[(across <= 1.0) & (along <= 7.5)] = 0
    for y, x in rng.integers(0, size, size=(3, 2)):
        image[y, x] ^= 1
    return image


def make_omniglot(rng):
    alphabets = {"Greek": [0, 30, 60], "Latin": [90, 120, 150]}
    character_id = 0
    for alphabet, angles in alphabets.items():
        for number, angle in enumerate(angles, start=1):
            character_id += 1
            for drawing in range(1, 5):
                name = f"omniglot/{alphabet}/character{number:02d}/{character_id:04d}_{drawing:02d}.png"
                write(name, png_bytes(stroke_image(angle, rng), bit_depth=1))
    write("omniglot/README.txt", b"Not an image: the loader must skip files at alphabet level.\n")


def make_grid():
    grid = np.arange(1, 10, dtype=np.uint8).reshape(3, 3) * 25
    write("grid/Digits/grid/0001_01.png", png_bytes(grid, bit_depth=8))


def make_corrupt(rng):
    valid = png_bytes(stroke_image(45, rng), bit_depth=1)
    write("corrupt/Greek/character01/0001_01.png", valid)
    idat = valid.index(b"IDAT")
    write("corrupt/Greek/character01/0001_02.png", valid[:idat + 10])


def make_csv():
    write("csv/tasks.csv", (
        'task, x1 , x2 ,y\r\n'
        '"sine, A",0.5,1,0.25\r\n'
        'sine B,-1.5e0,+2,3\r\n'
        '\r\n'
        '"sine, A", 1 ,.5,-0.75\r\n'
        '"say ""hi""",2,3E1,4.\r\n'
        ' "sine, A" ,"7", "8" ,9\r\n').encode())
    write("csv/ragged.csv", (
        "task,a,b,y\n"
        "t,1,2,3\n"
        '"two\nlines",1,2,3\n'
        "t,1,2\n").encode())
    write("csv/non-numeric.csv", (
        "task,x,y\n"
        "t,1,2\n"
        "t,2,abc\n").encode())
    write("csv/empty.csv", b"")
    write("csv/header-only.csv", b"task,x,y\n")


if __name__ == "__main__":
    rng = np.random.default_rng(20240611)
    make_omniglot(rng)
    make_grid()
    make_corrupt(rng)
    make_csv()
