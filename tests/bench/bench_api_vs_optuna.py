"""The same search written with Optuna and with evonas' Python API (tests/bench/side_by_side/):
an MLP on the digits, its solver, momentum (only for sgd), width (log int) and L2 penalty (log
float) searched, 30 trials on 2 workers (Optuna: 2 threads, TPE; evonas: 2 spawned processes,
aging evolution), resumable storage in both, one BLAS thread per evaluation. Prints, side by
side, each script's lines (code lines: neither blank nor comments), wall time and best
validation accuracy.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_api_vs_optuna.py   # needs optuna
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent / "side_by_side"
ROOT = HERE.parents[2]


THREADS = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
"""One BLAS thread per evaluation in both (evonas' workers set it themselves; Optuna's
n_jobs=2 threads would otherwise each start a BLAS thread per core)."""


def code_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.strip().startswith("#"))


def main() -> None:
    rows = []
    for name in ("optuna_mlp.py", "evonas_mlp.py"):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, str(HERE / name)], cwd=tmp, text=True,
                                  capture_output=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT), **THREADS})
            seconds = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"{name} failed:\n{done.stderr[-2000:]}")
        best = float(re.findall(r"\d\.\d+", done.stdout.splitlines()[-1])[0])
        rows.append((name, code_lines(HERE / name), seconds, best))
    print(f"{'script':16s} {'lines':>5s} {'seconds':>8s} {'best val acc':>12s}")
    for name, lines, seconds, best in rows:
        print(f"{name:16s} {lines:5d} {seconds:8.1f} {best:12.4f}")


if __name__ == "__main__":
    main()
