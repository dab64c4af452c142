"""The built-in trainer's step time against a minimal hand-written loop, and a decoded model
against its flat torch.fx twin, on the CPU, side by side in one run.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_trainer.py [--threads 1] [--rounds 7]

Rows:
- ``trainer`` vs ``hand loop`` on the same decoded model (same seed, data, SGD + cosine
  schedule), without augmentation and with random crop + flip (the hand loop calls the same
  batched augmentation functions: what is compared is the loop around them). Target: the
  trainer within 5% of the hand loop.
- ``decoded`` vs ``fx twin``: the same hand loop on the decoded ``nn.Module`` and on
  ``torch.fx.symbolic_trace`` of it (one flat graph, no Python module nesting). Target: within
  3%.

Every variant is timed in each of ``--rounds`` rounds, the variants interleaved so that load
from other processes hits them alike; the table gives the median ms per training step and the
spread (min..max over rounds), and the ratios of the medians and of the minimums (on a shared
machine the minimum is the round least disturbed by others).
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F

from genome import BinaryGenome, ENCODINGS
from training import build_model, load_dataset
from training.augment import Augment, augmentation_generator
from training.trainer import seed_everything, train

SETTINGS = {"epochs": 1, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
            "schedule": "cosine", "optimizer": "sgd"}
AUGMENT = {"random_crop": 4, "flip": True}


def hand_loop(model, x, y, settings, seed, augment=None):
    """The loop people write: shuffle, (augment,) forward, cross-entropy, step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"],
                                momentum=settings["momentum"],
                                weight_decay=settings["weight_decay"], nesterov=True)
    bs = settings["batch_size"]
    steps = settings["epochs"] * -(-len(y) // bs)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    aug_gen = augmentation_generator(seed, x.device)
    model.train()
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), bs):
            idx = order[i:i + bs]
            batch = x[idx]
            if augment:
                batch = augment(batch, aug_gen)
            loss = F.cross_entropy(model(batch), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()


def fresh(genome, space, seed=0):
    seed_everything(seed)
    return build_model(genome, space)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--image-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset({"dataset": "synthetic", "synthetic": {
        "samples": args.samples, "num_classes": 10, "image_size": args.image_size,
        "channels": 3}})
    x, y = data.x_train, data.y_train
    steps = -(-len(y) // SETTINGS["batch_size"])
    cell_space = ENCODINGS["cell"].search(encoding="cell", blocks=3, cells_per_stack=1,
                                          filters=8)
    models = {
        "Genetic-CNN 1-01_1-01-001, channels 16/32": (
            BinaryGenome.from_string("1-01_1-01-001"),
            {"channels": [16, 32], "in_channels": 3, "num_classes": 10}),
        "cell B=3 N=1 F=8": (
            ENCODINGS["cell"].random(cell_space, random.Random(0)),
            {**cell_space.decoder_space(), "in_channels": 3, "num_classes": 10}),
    }
    augment = Augment.from_settings(AUGMENT)
    size = args.image_size
    print(f"CPU, {torch.get_num_threads()} thread(s), torch {torch.__version__}; synthetic "
          f"{len(y)} x 3x{size}x{size}, batch {SETTINGS['batch_size']}, {steps} steps per "
          f"epoch; ms per step: median of {args.rounds} rounds (min..max); ratios of the "
          f"medians and of the minimums (the least disturbed round)")
    header = (f"{'model':44} {'comparison':22} {'A ms/step':>22} {'B ms/step':>22} "
              f"{'A/B med':>7} {'A/B min':>7}")
    print(header)
    print("-" * len(header))
    for name, (genome, space) in models.items():
        variants = {
            "trainer": lambda: train(fresh(genome, space), x, y, SETTINGS, 0,
                                     dataset="synthetic"),
            "hand": lambda: hand_loop(fresh(genome, space), x, y, SETTINGS, 0),
            "trainer+aug": lambda: train(fresh(genome, space), x, y, {**SETTINGS, **AUGMENT},
                                         0, dataset="synthetic"),
            "hand+aug": lambda: hand_loop(fresh(genome, space), x, y, SETTINGS, 0, augment),
            "decoded": lambda: hand_loop(fresh(genome, space), x, y, SETTINGS, 0),
            "fx twin": lambda: hand_loop(torch.fx.symbolic_trace(fresh(genome, space)),
                                         x, y, SETTINGS, 0),
        }
        for fn in variants.values():  # warm up (allocator, first-call costs)
            fn()
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for key, fn in variants.items():
                times[key].append(timed(fn) / steps * 1e3)

        def cell(key: str) -> str:
            t = times[key]
            return f"{statistics.median(t):7.2f} ({min(t):.2f}..{max(t):.2f})"
        for a, b, label, target in (("trainer", "hand", "trainer / hand loop", 1.05),
                                    ("trainer+aug", "hand+aug", "same, crop+flip", 1.05),
                                    ("decoded", "fx twin", "decoded / fx twin", 1.03)):
            ratio = statistics.median(times[a]) / statistics.median(times[b])
            best = min(times[a]) / min(times[b])
            verdict = ("ok" if max(ratio, best) <= target else
                       "over" if min(ratio, best) > target else "noisy: medians and minimums "
                       "disagree")
            print(f"{name:44} {label:22} {cell(a):>22} {cell(b):>22} {ratio:7.3f} {best:7.3f}"
                  f"  {verdict} (target {target:.2f})")


if __name__ == "__main__":
    main()
