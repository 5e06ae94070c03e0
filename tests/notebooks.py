#!/usr/bin/env python3
"""Executes every notebook headlessly with the "Rust (circuitscope)" evcxr kernel and checks it.

Per notebook: the outputs listed below by MIME type and count, no error output, and nothing on
stderr that reads like a panic or a compile error (evcxr reports a panicking cell as a normal
end, so its stderr is read). Executed copies go to $NOTEBOOK_OUT (default: target/notebooks).

Needs: pip install nbclient nbformat; `circuitscope kernel install`.
"""
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPECT = {
    "01-autodiff": {"image/svg+xml": 1, "text/html": 1},
    "02-multitask-graph": {"image/svg+xml": 4, "text/html": 6},
    "03-network-embedding": {"image/svg+xml": 1, "text/html": 3},
    "04-digits": {"image/svg+xml": 1, "text/html": 2},
    "05-pytorch-run": {"image/svg+xml": 3, "text/html": 1},
}
BAD_STDERR = ("panicked", "error[", "error:", "Error:")


def check(name, want, out_dir):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="circuitscope",
        timeout=int(os.environ.get("NOTEBOOK_CELL_TIMEOUT", "2400")),
        startup_timeout=600,
        allow_errors=True,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    t0 = time.time()
    client.execute()
    seconds = time.time() - t0
    nbformat.write(nb, out_dir / f"{name}.ipynb")
    problems = []
    got = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            kind = o.get("output_type")
            if kind == "error":
                problems.append(
                    f"cell {i}: {o.get('ename')}: {o.get('evalue')}\n" + "\n".join(o.get("traceback", []))
                )
            elif kind == "stream" and o.get("name") == "stderr":
                text = o.get("text", "")
                if any(b in text for b in BAD_STDERR):
                    problems.append(f"cell {i}: stderr: {text.strip()}")
            elif kind in ("display_data", "execute_result"):
                for mime in o.get("data", {}):
                    if mime != "text/plain":
                        got[mime] = got.get(mime, 0) + 1
    for mime, n in want.items():
        if got.get(mime, 0) != n:
            problems.append(f"{mime}: {got.get(mime, 0)} outputs, expected {n}")
    for mime in got:
        if mime not in want:
            problems.append(f"{mime}: {got[mime]} unexpected outputs")
    return seconds, got, problems


def main():
    out_dir = pathlib.Path(os.environ.get("NOTEBOOK_OUT", ROOT / "target" / "notebooks"))
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:] or list(EXPECT)
    failed = False
    for name in names:
        seconds, got, problems = check(name, EXPECT[name], out_dir)
        status = "ok" if not problems else "FAILED"
        print(f"notebook {name}: {status} in {seconds:.0f} s, outputs {got}", flush=True)
        for p in problems:
            print(f"  {p}", flush=True)
        failed |= bool(problems)
    if failed:
        print(f"executed notebooks are in {out_dir}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
