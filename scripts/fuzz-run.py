#!/usr/bin/env python3
"""A fuzzer that runs programs, not only parses them.

Generates small metaq programs (tensor code, grad, models, task families, learners written in
metaq and built in, training, evaluation, checkpoints, files), mutates them (numbers swapped
for extreme values, sizes made huge, lines dropped or repeated, tokens swapped), and runs each
with the metaq binary under a time and memory limit. It also runs `metaq inspect` and `load`
on mutated checkpoints, and task families on mutated CSV and PNG files.

Every run must end by itself with exit status 0 (success), 65 (syntax or check error) or 70
(run-time error): a signal (a trap, a segmentation fault, an abort), another status, or a
run past the time limit is a failure, printed with its input, which is kept under
OUT/failures/.

    scripts/fuzz-run.py METAQ [--seed N] [--programs N] [--files N] [--timeout S] [--out DIR]

CI runs it with a fixed seed and a small budget (scripts/test.sh); a larger budget on demand:
    scripts/fuzz-run.py .build/release/metaq --seed 7 --programs 2000 --files 500
Ends with the line "fuzz: N passed, M failed".
"""
import argparse
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ALLOWED = {0, 65, 70}
statuses = {}

# Values a mutation may put where a number was: ordinary, edge and extreme.
EXTREME_INTS = ["0", "-1", "1", "2", "3", "7", "65536", "2147483648", "9223372036854775807", "-9223372036854775807",
                "99999999999999999999", "1e9", "1.5", "-0.0", "nan", "1e39", "1e-39"]

PROGRAM_PARTS = [
    # tensors and autodiff
    "let a = tensor([[1, 2], [3, 4]])\nprint a @ a\nprint sum(a, [1])\nprint softmax(a)",
    "let w = tensor([1.0, 2.0, 3.0])\nprint grad(fn(v) -> sum(v * v * v), w)\nprint grad(fn(v) -> sum(grad(fn(u) -> sum(u * u), v)), w)",
    "let r = value_and_grad(fn(v) -> mean(exp(v)), tensor([0.5, 1.5]))\nprint r.value",
    "let g = generator(3)\nlet z = randn(g, [4, 3])\nprint reshape(z, [2, 6]).shape\nprint transpose(z).shape",
    "print cross_entropy(tensor([[0.1, 0.2, 0.3]]), [2])\nprint one_hot([0, 2], 3)\nprint where(tensor([1.0, -1.0]) > 0, 1, 0)",
    "print concat([zeros([2, 2]), ones([1, 2])], 0)\nprint take(tensor([[1], [2], [3]]), [2, 0])\nprint slice(ones([4, 3]), 1, 0, 2)",
    "print conv2d(ones([1, 5, 5, 1]), ones([3, 3, 1, 2]), 1, 1).shape\nprint max_pool(ones([1, 4, 4, 2]), 2).shape",
    "let p = < w tensor([1.0, 2.0]) b tensor([0.5]) >\nlet q = p - 0.1 * grad(fn(x) -> sum(x.w * x.w) + sum(x.b), p)\nprint q",
    # models
    "model net = mlp < in 1 hidden [8] out 1 >\nprint net(tensor([[1.0], [2.0]]))\nprint net.params",
    "model net = sequential < in [4] layers [dense < out 6 >, tanh, layernorm < >, residual < body [dense < out 6 >] >, dense < out 2 >] >\nprint net",
    "model cnn = conv4 < size 28 filters 2 out 3 >\nprint cnn",
    "model rnn = sequential < in [3, 2] layers [lstm < hidden 4 >, dense < out 1 >] >\nprint rnn(zeros([2, 3, 2]))",
    # tasks and learners
    "model net = mlp < in 1 hidden [8] out 1 >\ntasks sine = sinusoid < support 5 query 5 >\nlearner m = maml < model net outer < batch 4 > >\nlet log = train m on sine < iters 3 >\nprint log.loss\nlet r = eval m on sine < tasks 4 steps [0, 1] >\nprint r",
    "model net = mlp < in 1 hidden [8] out 1 >\ntasks sine = sinusoid < support 5 query 5 >\nlearner s = metasgd < model net outer < batch 4 > >\nprint meta_step(s, sine)",
    "model net = mlp < in 1 hidden [8] out 1 >\ntasks quad = regression < f fn(x, a) -> a * x * x  a -1..1 support 5 query 5 >\nlearner r = reptile < model net >\ntrain r on quad < iters 2 >",
    "model net = mlp < in 1 hidden [8] out 1 >\ntasks sine = sinusoid < support 5 query 5 >\n"
    "fn adapt(params, extras, support, steps) {\n  var fast = per_task(params, support.tasks)\n  for i in range(steps) { fast = fast - 0.01 * grad(fn(p) -> sum(task_mse(net(support.x, p), support.y)), fast) }\n  return fast\n}\n"
    "fn meta_loss(params, extras, batch) { return task_mse(net(batch.query.x, adapt(params, extras, batch.support, 1)), batch.query.y) }\n"
    "learner c = custom < model net loss meta_loss adapt adapt outer < batch 4 > >\ntrain c on sine < iters 3 >\nlet e = eval c on sine < tasks 4 steps [0, 2] >\nprint e",
    "model net = mlp < in 1 hidden [8] out 1 >\ntasks sine = sinusoid < support 5 query 5 >\nlet b = sample(sine, 3)\nprint b.support.x.shape\nprint net(b.query.x, per_task(net.params, 3)).shape",
    # files
    "model net = mlp < in 1 hidden [4] out 1 >\ntasks sine = sinusoid < support 5 query 5 >\nlearner m = maml < model net outer < batch 2 > >\ntrain m on sine < iters 2 >\nsave m to \"m.mqm\"\nlet back = load(\"m.mqm\")\nprint back",
    "write [1, 2, 3] to \"v.json\"\nwrite [< a 1 b 2 >] to \"v.csv\"",
    # control flow and values
    "var x = []\nfor i in range(50) { x = [x] }\nprint len(str(x))",
    "fn f(n) { if n <= 0 { return 0 } else { return 1 + f(n - 1) } }\nprint f(30)",
    "var i = 0\nwhile i < 10 { i = i + 1 }\nprint i\nlet r = < lr 0.01 steps 5 >\nprint r.lr * r.steps",
    "print range(5, 2)\nprint int(3.7)\nprint float(\"1e-3\")\nprint min([3, 1, 2])\nprint round(3.14159, 2)",
]


def generate(rng):
    """A program of a few parts, then mutated."""
    parts = rng.sample(PROGRAM_PARTS, rng.randint(1, 3))
    text = "seed %d\n" % rng.randint(0, 99) + "\n".join(parts) + "\n"
    return mutate(text, rng)


def mutate(text, rng):
    kind = rng.random()
    lines = text.split("\n")
    if kind < 0.25:
        return text
    if kind < 0.6:
        # Swap some numbers for edge values (sizes become huge, counts negative, NaN...).
        out = []
        for line in lines:
            if any(word in line for word in ("while", "range(", "iters", "for ", "var i", "adapt(")):
                # Loop counts made huge would make programs long by design, not hang.
                out.append(line)
                continue
            tokens = line.split(" ")
            for i, tok in enumerate(tokens):
                stripped = tok.strip("[](),<>")
                if stripped and stripped.replace(".", "", 1).lstrip("-").isdigit() and rng.random() < 0.3:
                    tokens[i] = tok.replace(stripped, rng.choice(EXTREME_INTS), 1)
            out.append(" ".join(tokens))
        return "\n".join(out)
    if kind < 0.75:
        # Drop, repeat or swap lines.
        if len(lines) > 2:
            i = rng.randrange(len(lines))
            op = rng.random()
            if op < 0.4:
                del lines[i]
            elif op < 0.7:
                lines.insert(i, lines[i])
            else:
                j = rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if kind < 0.9:
        # Cut the text at a random point, or splice a random token in.
        cut = rng.randrange(len(text) + 1)
        if rng.random() < 0.5:
            return text[:cut]
        token = rng.choice(["(", ")", "[", "]", "<", ">", "{", "}", ",", "@", "-", "..", "\"", "fn", "grad", "nan", "0", "-1"])
        return text[:cut] + token + text[cut:]
    # Byte-level noise.
    data = bytearray(text.encode())
    for _ in range(rng.randint(1, 4)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return data.decode("utf-8", errors="replace")


def limit_resources(memory_bytes):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run(metaq, args, cwd, timeout, memory, allowed=ALLOWED):
    env = dict(os.environ, METAQ_HISTORY="", METAQ_THREADS="1")
    try:
        p = subprocess.run([metaq] + args, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           preexec_fn=limit_resources(memory), env=env)
    except subprocess.TimeoutExpired:
        return "timed out after %ss" % timeout, b""
    statuses[p.returncode] = statuses.get(p.returncode, 0) + 1
    if p.returncode in allowed:
        return None, p.stderr
    if p.returncode < 0:
        return "killed by signal %d" % -p.returncode, p.stderr
    return "exit status %d" % p.returncode, p.stderr


def png(width, height, rows):
    """A grayscale 8-bit PNG."""
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def flip(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        if op < 0.6 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op < 0.8:
            data = data[:rng.randrange(len(data) + 1)]
        else:
            i = rng.randrange(len(data) + 1)
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("metaq")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--programs", type=int, default=120)
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--memory-gib", type=float, default=16)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    metaq = os.path.abspath(a.metaq)
    rng = random.Random(a.seed)
    memory = int(a.memory_gib * 2**30)
    work = tempfile.mkdtemp(prefix="metaq-fuzz-")
    out = a.out or os.path.join(work, "kept")
    failures, passes, endless = 0, 0, 0

    def failed(what, text, why, stderr, suffix):
        nonlocal failures
        failures += 1
        os.makedirs(os.path.join(out, "failures"), exist_ok=True)
        path = os.path.join(out, "failures", "%s-%d%s" % (what, failures, suffix))
        with open(path, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        print("FAIL %s: %s (input kept in %s)" % (what, why, path))
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        for line in tail:
            print("     " + line)

    try:
        for n in range(a.programs):
            text = generate(rng)
            case = os.path.join(work, "p%d" % n)
            os.makedirs(case)
            with open(os.path.join(case, "f.mq"), "w") as f:
                f.write(text)
            why, stderr = run(metaq, ["run", "f.mq"], case, a.timeout, memory)
            if why and why.startswith("timed out") and "while" in text:
                # A mutation can make a while loop endless (i = -i + 1): long by design.
                endless += 1
                passes += 1
            elif why:
                failed("program", text, why, stderr, ".mq")
            else:
                passes += 1
            shutil.rmtree(case, ignore_errors=True)

        # A valid checkpoint, a CSV task table and a small image folder to mutate.
        base = os.path.join(work, "base")
        os.makedirs(base)
        with open(os.path.join(base, "make.mq"), "w") as f:
            f.write("seed 1\nmodel net = mlp < in 1 hidden [4] out 1 >\ntasks sine = sinusoid < support 5 query 5 >\n"
                    "learner m = maml < model net outer < batch 2 > >\ntrain m on sine < iters 2 >\nsave m to \"m.mqm\"\n")
        why, stderr = run(metaq, ["run", "make.mq"], base, a.timeout, memory)
        if why:
            failed("setup", "make.mq", why, stderr, ".txt")
            raise SystemExit(1)
        checkpoint = open(os.path.join(base, "m.mqm"), "rb").read()
        csv_text = "task,x,y\n" + "".join("%d,%f,%f\n" % (t, i / 10, t + i / 7) for t in range(4) for i in range(12))
        image_rows = [[(x * 37 + y * 11) % 256 for x in range(8)] for y in range(8)]
        image = png(8, 8, image_rows)

        for n in range(a.files):
            case = os.path.join(work, "f%d" % n)
            os.makedirs(case)
            which = n % 3
            if which == 0:
                data = flip(checkpoint, rng)
                with open(os.path.join(case, "c.mqm"), "wb") as f:
                    f.write(data)
                with open(os.path.join(case, "f.mq"), "w") as f:
                    f.write("let m = load(\"c.mqm\")\nprint m\n")
                # inspect reports a damaged file with the command line's failure status, 1.
                for args, allowed in ((["inspect", "c.mqm"], ALLOWED | {1}), (["run", "f.mq"], ALLOWED)):
                    why, stderr = run(metaq, args, case, a.timeout, memory, allowed)
                    if why:
                        failed("checkpoint", data, why, stderr, ".mqm")
                    else:
                        passes += 1
            elif which == 1:
                data = flip(csv_text.encode(), rng)
                with open(os.path.join(case, "t.csv"), "wb") as f:
                    f.write(data)
                with open(os.path.join(case, "f.mq"), "w") as f:
                    f.write("tasks t = csv < path \"t.csv\" task \"task\" target \"y\" support 4 query 4 >\n"
                            "model net = mlp < in 1 hidden [4] out 1 >\nlearner m = maml < model net outer < batch 2 > >\n"
                            "train m on t < iters 2 >\n")
                why, stderr = run(metaq, ["run", "f.mq"], case, a.timeout, memory)
                if why:
                    failed("csv", data, why, stderr, ".csv")
                else:
                    passes += 1
            else:
                root = os.path.join(case, "alphabet")
                for c in range(3):
                    folder = os.path.join(root, "A", "character%02d" % c)
                    os.makedirs(folder)
                    for k in range(3):
                        data = flip(image, rng) if (c, k) == (1, 1) else image
                        with open(os.path.join(folder, "%d.png" % k), "wb") as f:
                            f.write(data)
                bad = open(os.path.join(root, "A", "character01", "1.png"), "rb").read()
                with open(os.path.join(case, "f.mq"), "w") as f:
                    f.write("tasks t = omniglot < root \"alphabet\" ways 2 support 1 query 1 size 8 >\n"
                            "model net = conv4 < size 16 filters 2 out 2 >\nprint t\n")
                why, stderr = run(metaq, ["run", "f.mq"], case, a.timeout, memory)
                if why:
                    failed("png", bad, why, stderr, ".png")
                else:
                    passes += 1
            shutil.rmtree(case, ignore_errors=True)
    finally:
        if a.out is None and failures == 0:
            shutil.rmtree(work, ignore_errors=True)
    print("exit statuses: " + ", ".join("%d: %d runs" % (k, v) for k, v in sorted(statuses.items()))
          + ("; %d programs with an endless while loop stopped at the time limit" % endless if endless else ""))
    print("fuzz: %d passed, %d failed" % (passes, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
