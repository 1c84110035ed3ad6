#!/usr/bin/env bash
# Load time of an 'images' dataset of generated JPEGs: the first load (decode, resize, write
# the cache file), the second (map the cache file), and a load with 'cache false' (decode
# every time), each the wall time of a whole `metaq run` (process start included).
#   benchmarks/image-cache.sh [CLASSES] [PER_CLASS] [WIDTH] [HEIGHT] [SIZE]
# defaults: 40 classes of 100 JPEGs of 320 x 240, loaded at 84 x 84 x 3. The dataset and the
# cache are written under out/bench-image-cache/ (removed first). The second load reads the
# cache file from the page cache (it was just written); a load after a reboot reads it from disk.
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=${METAQ:-.build/release/metaq}
classes=${1:-40} per_class=${2:-100} width=${3:-320} height=${4:-240} size=${5:-84}
root=out/bench-image-cache
rm -rf "$root"
mkdir -p "$root/data"
echo "generating $((classes * per_class)) JPEGs of $width x $height in $classes class folders"
python3 - "$root/data" "$classes" "$per_class" "$width" "$height" <<'PY'
import ctypes, ctypes.util, os, sys
import numpy as np
root, classes, per_class, w, h = sys.argv[1], *map(int, sys.argv[2:])
# libturbojpeg (the library metaq decodes with) encodes, through ctypes.
tj = ctypes.CDLL(ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0")
tj.tjInitCompress.restype = ctypes.c_void_p
tj.tjCompress2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                           ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ulong), ctypes.c_int, ctypes.c_int, ctypes.c_int]
tj.tjFree.argtypes = [ctypes.c_void_p]
handle = tj.tjInitCompress()
TJPF_RGB, TJSAMP_420 = 0, 2
def jpeg(image):
    buffer, size = ctypes.c_void_p(), ctypes.c_ulong()
    data = np.ascontiguousarray(image)
    assert tj.tjCompress2(handle, data.ctypes.data, w, 0, h, TJPF_RGB, ctypes.byref(buffer), ctypes.byref(size), TJSAMP_420, 90, 0) == 0
    out = ctypes.string_at(buffer, size.value)
    tj.tjFree(buffer)
    return out
rng = np.random.default_rng(0)
ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
for c in range(classes):
    folder = os.path.join(root, "n%08d" % c)
    os.makedirs(folder)
    for i in range(per_class):
        # Smooth colour gradients with some noise: JPEG sizes like a photo's, not like noise.
        r0, g0, b0, fx, fy = rng.random(5)
        noise = rng.integers(0, 24, size=(h, w), dtype=np.int32)
        planes = [255 * r0 * xs / w, 255 * g0 * ys / h, 255 * b0 * (xs * fx + ys * fy) / (w + h)]
        image = np.stack([(p.astype(np.int32) + noise) & 255 for p in planes], axis=-1).astype(np.uint8)
        with open(os.path.join(folder, "%05d.jpg" % i), "wb") as f:
            f.write(jpeg(image))
PY
du -sh "$root/data"
cat > "$root/load.mq" <<MQ
tasks t = images < root "$root/data" size $size channels 3 ways 5 support 1 query 1 KEYS >
print t
MQ
TIMEFORMAT=%R
run() {  # run LABEL KEYS: one timed load
    sed "s|KEYS|$2|" "$root/load.mq" > "$root/run.mq"
    local seconds
    seconds=$( { time "$metaq" run "$root/run.mq" > "$root/out.txt"; } 2>&1 )
    echo "$1: $seconds s  ($(cat "$root/out.txt"))"
}
run "first load (decode, write cache)" ""
run "second load (map cache)" ""
run "third load (map cache)" ""
run "no cache (cache false)" "cache false"
ls -l "$root/data/.metaq-cache"
