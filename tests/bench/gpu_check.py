"""What evonas does on a CUDA machine, printed in one run (see gpu_check.sh; not run by CI).

    PYTHONPATH=$PWD .venv/bin/python tests/bench/gpu_check.py [--quick]

1. the devices torch finds (name, compute capability, memory, bf16);
2. the local pool with 1, 2, 4 and 8 slots on one GPU: evaluations per minute and GPU busy %
   (NVML through torch.cuda.utilization, else nvidia-smi, sampled every 0.2 s);
3. the trainer's step time with AMP (evaluation.amp: auto) against fp32, and the host syncs
   it makes (torch.cuda.set_sync_debug_mode counts them: a few per epoch, none per step);
4. a decoded model against its flat torch.fx twin, same trainer, same settings;
5. a short search on CIFAR-10 (downloaded when the machine can, else synthetic data of its
   shape) that ends with a result.

Everything is sized to finish within 5 minutes on one recent GPU; nothing is installed.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from evolution.config import config_from_dict  # noqa: E402
from evolution.loop import derive_seed, run  # noqa: E402
from evolution.pool import LocalPool  # noqa: E402
from evolution.pool.slots import resolve_slots  # noqa: E402
from evolution.worker import make_task  # noqa: E402
from genome import BinaryGenome  # noqa: E402
from training import build_model, load_dataset  # noqa: E402
from training.data import on_device  # noqa: E402
from training.trainer import amp_dtype, seed_everything, train  # noqa: E402

SHAPE = {"samples": 4096, "num_classes": 10, "image_size": 32, "channels": 3}
SYNTHETIC = {"dataset": "synthetic", "synthetic": SHAPE}
STAGES, CHANNELS = (3, 4), (32, 64)
DEVICE = "cuda:0"


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


class Busy:
    """Samples the GPU's utilisation (percent busy) every ``period`` seconds while active."""

    def __init__(self, period: float = 0.2):
        self.period, self.samples, self._stop = period, [], threading.Event()
        self._read = self._reader()

    @staticmethod
    def _reader():
        try:
            torch.cuda.utilization(0)
            return lambda: torch.cuda.utilization(0)
        except Exception:  # no pynvml: ask nvidia-smi
            if shutil.which("nvidia-smi") is None:
                return None
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
            command = ["nvidia-smi", f"--id={visible}", "--query-gpu=utilization.gpu",
                       "--format=csv,noheader,nounits"]
            return lambda: float(subprocess.run(command, capture_output=True, text=True,
                                                timeout=5).stdout.strip() or "nan")

    def __enter__(self):
        def loop():
            while not self._stop.wait(self.period):
                try:
                    self.samples.append(float(self._read()))
                except Exception:
                    pass
        if self._read is not None:
            self._thread = threading.Thread(target=loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    @property
    def percent(self) -> str:
        return f"{statistics.mean(self.samples):.0f}%" if self.samples else "n/a"


def devices() -> None:
    section("devices")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
          f"{torch.backends.cudnn.version()}, CUDA_VISIBLE_DEVICES="
          f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}")
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check needs one (the CPU paths are tested by "
                         "tests/test_gpu_path.py and tests/bench/bench_trainer.py)")
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"cuda:{i}  {p.name}, compute {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} "
              f"GiB, {p.multi_processor_count} SMs")
    print(f"bf16 supported: {torch.cuda.is_bf16_supported()}; evaluation.amp auto -> "
          f"{amp_dtype('auto', 'cuda:0')}")


def genomes(n: int) -> list[BinaryGenome]:
    rng, out, keys = random.Random(0), [], set()
    while len(out) < n:
        g = BinaryGenome.random(STAGES, rng)
        if g.key() not in keys:
            keys.add(g.key())
            out.append(g)
    return out


def pool_rows(evaluations: int, epochs: int, slot_counts=(1, 2, 4, 8)) -> None:
    size = SHAPE["image_size"]
    section(f"local pool on {DEVICE}: {evaluations} distinct Genetic-CNN {STAGES} "
            f"channels {CHANNELS}, synthetic {SHAPE['channels']}x{size}x{size} x "
            f"{SHAPE['samples']}, {epochs} epoch(s)")
    config = config_from_dict({"search": {"stages": list(STAGES), "channels": list(CHANNELS)},
                               "data": SYNTHETIC, "evaluation": {"epochs": epochs}})
    space = config.model_space(load_dataset(config.data.model_dump(mode="json")))
    todo = [make_task(config, space, index=i, seed=derive_seed(0, i), genome=g.to_dict())
            for i, g in enumerate(genomes(evaluations + 8))]
    print(f"{'slots':>5} {'start s':>8} {'wall s':>7} {'evals/min':>9} {'GPU busy':>8} "
          f"{'failed':>6}")
    for slots in slot_counts:
        start = time.perf_counter()
        with LocalPool(slots=resolve_slots([DEVICE], 1, slots_per_gpu=slots),
                       start_timeout=120) as pool:
            pool.wait_ready()
            ready = time.perf_counter() - start
            warm = todo[evaluations:evaluations + slots]  # each worker loads data, warms up
            for task in warm:
                pool.submit(task)
            while pool.running:
                pool.wait()
            pending, results = list(todo[:evaluations]), []
            with Busy() as busy:
                began = time.perf_counter()
                while pending or pool.running:
                    while pending and pool.free:
                        pool.submit(pending.pop(0))
                    results += pool.wait()
                wall = time.perf_counter() - began
        failed = [r for r in results if r["status"] != "ok"]
        print(f"{slots:>5} {ready:>8.1f} {wall:>7.1f} {60 * len(results) / wall:>9.1f} "
              f"{busy.percent:>8} {len(failed):>6}", flush=True)
        for r in failed[:2]:
            print(f"      failed: {r.get('message')}")


def step_time(model, x, y, settings, steps) -> float:
    """Milliseconds per training step of ``train`` (the GPU synchronised before and after)."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    train(model, x, y, settings, 0, dataset="synthetic")
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1e3


def trainer_rows(rounds: int) -> None:
    data = on_device(load_dataset(SYNTHETIC), DEVICE)
    x, y = data.x_train, data.y_train
    settings = {"epochs": 2, "batch_size": 128}
    steps = settings["epochs"] * -(-len(y) // settings["batch_size"])
    genome = BinaryGenome.from_string("1-01_1-01-001")
    space = {"channels": list(CHANNELS), "in_channels": 3, "num_classes": 10}

    def fresh():
        seed_everything(0)
        return build_model(genome, space).to(DEVICE)

    section(f"trainer step time on {DEVICE} (Genetic-CNN {genome} channels {CHANNELS}, batch "
            f"{settings['batch_size']}, {steps} steps; median of {rounds}, ms per step)")
    variants = {
        "fp32 (amp: off)": lambda: step_time(fresh(), x, y, {**settings, "amp": "off"}, steps),
        f"AMP ({amp_dtype('auto', DEVICE)})": lambda: step_time(fresh(), x, y, settings,
                                                                  steps),
        "AMP + crop/flip": lambda: step_time(fresh(), x, y,
                                             {**settings, "random_crop": 4, "flip": True},
                                             steps),
        "decoded (AMP)": lambda: step_time(fresh(), x, y, settings, steps),
        "flat fx twin (AMP)": lambda: step_time(torch.fx.symbolic_trace(fresh()), x, y,
                                                settings, steps),
    }
    for fn in variants.values():
        fn()  # warm up: cuDNN autotuning, allocator
    times = {k: [] for k in variants}
    for _ in range(rounds):
        for k, fn in variants.items():
            times[k].append(fn())
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in variants:
        print(f"{k:24} {med[k]:8.3f} ms  ({min(times[k]):.3f}..{max(times[k]):.3f})")
    amp_key = next(k for k in variants if k.startswith("AMP ("))
    print(f"AMP speed-up over fp32: {med['fp32 (amp: off)'] / med[amp_key]:.2f}x; "
          f"decoded / fx twin: {med['decoded (AMP)'] / med['flat fx twin (AMP)']:.3f}")

    with warnings.catch_warnings(record=True) as caught:  # count the host syncs
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(fresh(), x, y, settings, 0, dataset="synthetic")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    print(f"host syncs while training {steps} steps over {settings['epochs']} epochs: {syncs} "
          f"(check_every 50 plus each epoch's end; 0 per step)")


def cifar_or_synthetic(root: str) -> dict:
    """CIFAR-10 when it is cached or can be downloaded within 30 seconds, else synthetic."""
    probe = ("from training import load_dataset; "
             f"load_dataset({{'dataset': 'cifar10', 'root': {root!r}}})")
    try:
        done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, timeout=30,
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        if done.returncode == 0:
            return {"dataset": "cifar10", "root": root, "train_size": 5000}
        reason = (done.stderr.strip().splitlines() or ["?"])[-1]
    except subprocess.TimeoutExpired:
        reason = "no download within 30 seconds"
    print(f"CIFAR-10 not available ({reason[:160]}); synthetic data of its shape instead")
    return {"dataset": "synthetic", "synthetic": {**SHAPE, "samples": 8000}}


def search(root: str, evaluations: int) -> None:
    data = cifar_or_synthetic(root)
    section(f"short search on {data['dataset']} (aging evolution, {evaluations} evaluations, "
            f"2 slots on {DEVICE})")
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_dict({
            "name": "gpu-check", "runs_dir": tmp, "seed": 0,
            "search": {"stages": list(STAGES), "channels": list(CHANNELS)},
            "strategy": {"name": "aging", "population": 6, "sample": 3,
                         "cycles": evaluations - 6},
            "data": data, "evaluation": {"epochs": 2, "batch_size": 128},
            # threads: the final retraining of the best runs in this process, on the CPU
            "pool": {"devices": [DEVICE], "slots_per_gpu": 2,
                     "threads_per_worker": min(8, os.cpu_count() or 1)}})
        start = time.perf_counter()
        summary = run(config)
        wall = time.perf_counter() - start
        print(f"{summary.evaluations} evaluations ({summary.trained} trained, "
              f"{summary.failures} failed) in {wall:.1f} s")
        if summary.best is None:
            print("no successful evaluation: see the journal's messages")
            return
        print(f"best genome {summary.best_genome}: validation accuracy "
              f"{summary.best['metrics']['val_accuracy']:.4f}, test accuracy "
              f"{(summary.final or {}).get('test_accuracy', float('nan')):.4f}, "
              f"ran on {summary.best.get('device')} (GPU {summary.best.get('gpu')})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer evaluations and rounds")
    parser.add_argument("--root", default=os.path.expanduser("~/.cache/evonas/data"))
    args = parser.parse_args()
    start = time.perf_counter()
    devices()
    pool_rows(evaluations=8 if args.quick else 12, epochs=1)
    trainer_rows(rounds=3 if args.quick else 5)
    search(args.root, evaluations=8 if args.quick else 10)
    print(f"\ngpu_check done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
