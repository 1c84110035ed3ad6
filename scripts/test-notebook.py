#!/usr/bin/env python3
"""Executes a metaq notebook with nbclient through the installed metaq Jupyter kernel and
checks its outputs: progress, an HTML table, inline SVG plots (a learning curve, an eval
report, a grid of images), an error with its caret, an interrupted training cell after which
the session goes on; then completion and inspection
through the kernel protocol. Run by scripts/test-jupyter.sh (which installs the kernelspec
and sets JUPYTER_PATH). Ends with "jupyter: N passed, M failed"."""
import sys
import xml.etree.ElementTree as ET

import nbformat
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

passes = failures = 0


def check(name, ok, detail=""):
    global passes, failures
    if ok:
        passes += 1
        print("ok   " + name)
    else:
        failures += 1
        print("FAIL " + name + (": " + str(detail)[:800] if detail else ""))


cells = [
    "seed 1\ntasks sine = sinusoid < support 5 query 5 >\nlearner m = maml < model mlp < in 1 hidden [16] out 1 > >",
    "let log = train m on sine < iters 200 log_every 10 >\nprint log.iterations",
    "eval m on sine < tasks 20 steps [0, 1, 5] >",
    "plot log",
    "print nope + 1",
    "train m on sine < iters 100000000 >",
    "print m.iterations > 200",
    ":help plot",
    "let r = eval m on sine < tasks 20 steps [0, 1, 5] >\nplot r",
    "let g = generator(1)\nplot rand(g, [3, 8, 8, 3])",
]
nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
nb.metadata["kernelspec"] = {"name": "metaq", "display_name": "metaq", "language": "metaq"}
client = NotebookClient(nb, kernel_name="metaq", allow_errors=True, interrupt_on_timeout=True,
                        timeout_func=lambda cell: 4 if "100000000" in cell.source else 120)
client.execute()


def texts(cell):
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type in ("display_data", "execute_result"):
            out.append(o.data.get("text/plain", ""))
    return "".join(out)


c = nb.cells
check("a cell declares a learner and prints nothing", c[0].outputs == [], c[0].outputs)
check("training prints its result", "200" in texts(c[1]), texts(c[1]))
check("training shows a progress bar", "train maml [" in texts(c[1]), texts(c[1]))
html = [o.data.get("text/html", "") for o in c[2].outputs if o.output_type == "display_data"]
check("an eval report is an HTML table", any("<table>" in h and "95% CI" in h for h in html), c[2].outputs)
svgs = [o.data.get("image/svg+xml") for o in c[3].outputs if o.output_type == "display_data" and "image/svg+xml" in o.data]
try:
    root = ET.fromstring(svgs[0])
    check("plot shows an inline SVG that parses", root.tag.endswith("svg") and "Training loss" in svgs[0])
except Exception as e:  # noqa: BLE001
    check("plot shows an inline SVG that parses", False, e)
errors = [o for o in c[4].outputs if o.output_type == "error"]
check("an error is shown with its caret", len(errors) == 1 and errors[0].evalue == "undefined name 'nope'"
      and any("^~~~" in line for line in errors[0].traceback), c[4].outputs)
check("the interrupted training cell says where it stopped", "interrupted after" in texts(c[5]), texts(c[5]))
check("the session goes on after the interrupt", texts(c[6]).strip() == "true", texts(c[6]))
check(":help works in a cell", "plot VALUE" in texts(c[7]), texts(c[7]))


def inline_svg(cell):
    svgs = [o.data.get("image/svg+xml") for o in cell.outputs if o.output_type == "display_data" and "image/svg+xml" in o.data]
    return (svgs[0], ET.fromstring(svgs[0])) if len(svgs) == 1 else (None, None)


try:
    text, root = inline_svg(c[8])
    check("an eval report plots inline (score against adaptation steps)",
          root is not None and "after adaptation" in text and "adaptation steps" in text, c[8].outputs)
    text, root = inline_svg(c[9])
    images = [e for e in root.iter() if e.tag.endswith("image")] if root is not None else []
    check("a tensor of images plots inline as a grid of 3 embedded PNGs",
          len(images) == 3 and all(e.get("href", "").startswith("data:image/png;base64,") for e in images), c[9].outputs)
except Exception as e:  # noqa: BLE001
    check("eval report and image plots inline", False, e)

km, kc = start_new_kernel(kernel_name="metaq")
try:
    kc.execute_interactive("tasks sine = sinusoid < support 5 query 5 >", timeout=60)
    reply = kc.complete("train m on si", 13, reply=True, timeout=30)["content"]
    check("completion through the kernel protocol", "sine" in reply["matches"] and reply["cursor_start"] == 11, reply)
    reply = kc.inspect("train m on sine", 2, reply=True, timeout=30)["content"]
    check("inspection through the kernel protocol", reply["found"] and "iters" in reply["data"]["text/plain"], reply)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)

print("jupyter: %d passed, %d failed" % (passes, failures))
sys.exit(1 if failures else 0)
