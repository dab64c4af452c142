"""``evonas`` command line. The only module that prints; everything else logs."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Optional, Sequence

from genome.errors import EvonasError


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class ProgressPrinter:
    """Turns run events into a progress bar (on a terminal) and one line per generation."""

    def __init__(self, stream: Any = sys.stderr):
        self.stream = stream
        self.bar = None
        self.counts: dict[str, Any] = {}
        self.run_dir: Optional[str] = None

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            self.run_dir = event["run_dir"]
            self._line(f"run directory {event['run_dir']}\n{event['data']}; "
                       f"{event['budget']} evaluations on {event['workers']} worker(s)")
            if self.stream.isatty():
                from tqdm import tqdm

                self.bar = tqdm(total=event["budget"], unit="eval", file=self.stream,
                                dynamic_ncols=True, leave=False)
        elif kind == "result":
            self.counts = event
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(best=_fmt(event["best"]), failed=event["failures"],
                                     refresh=False)
        elif kind in ("generation", "window"):
            # generation: that generation's statistics; window (aging, random): the current
            # population's (aging) or all results' (random), after that many evaluations
            c = self.counts
            head = (f"generation {event['generation']:>3}" if kind == "generation"
                    else f"after {event['evaluations']:>5}")
            self._line(f"{head}  best {_fmt(event['best'])}  mean {_fmt(event['mean'])}  "
                       f"failed {event['failures']}  |  evaluations {c.get('evaluations', 0)} "
                       f"(trained {c.get('trained', 0)}, cached {c.get('cache_hits', 0)}, "
                       f"failed {c.get('failures', 0)})  best so far {_fmt(c.get('best'))}")
        elif kind == "final_training":
            self.close()
            self._line(f"retraining the best genome (evaluation {event['index']}) and "
                       f"measuring it on the test split")

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _print_summary(summary: Any) -> None:
    print()
    if summary.best is None:
        print(f"no evaluation succeeded ({summary.failures} failed); see the messages in "
              f"{summary.run_dir}/journal.jsonl")
        return
    best, final = summary.best, summary.final
    genome = summary.best_genome
    rows = [("best genome", genome if best["key"] == genome
             else f"{genome}   (canonical {best['key']})")]
    if final:  # the built-in trainer retrained the best genome and measured it on test
        rows += [
            ("validation accuracy", f"{_fmt(final.get('val_accuracy'))}   "
                                    f"(during search {_fmt(best['fitness'])})"),
            ("test accuracy", _fmt(final.get("test_accuracy"))),
            ("parameters", f"{final.get('params', 0):,}"),
            ("FLOPs per example", f"{final.get('flops', 0):,}"),
        ]
    else:  # a user evaluator: its own metrics
        rows += [(name, _fmt(value) if isinstance(value, float) else str(value))
                 for name, value in best["metrics"].items()]
    rows += [
        ("evaluations", f"{summary.evaluations} ({summary.trained} trained, "
                        f"{summary.cache_hits} cache hits, {summary.failures} failed) "
                        f"in {summary.seconds:.1f} s"),
        ("run directory", str(summary.run_dir)),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def _cmd_run(args: argparse.Namespace) -> int:
    from evolution import load_config, run

    config = load_config(args.config)
    printer = ProgressPrinter()
    try:
        summary = run(config, name=args.name, workers=args.workers, progress=printer)
    except KeyboardInterrupt:
        printer.close()
        where = f" in {printer.run_dir}" if printer.run_dir else ""
        print(f"\nevonas: interrupted; workers stopped. The journal so far is kept{where}.",
              file=sys.stderr)
        return 130
    finally:
        printer.close()
    _print_summary(summary)
    return 0 if summary.best is not None else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evonas", description="Evolutionary neural architecture search.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("run", help="run the search a config file describes",
                            description="Run the search CONFIG describes in runs/<name>/.")
    p.add_argument("config", metavar="CONFIG", help="YAML config file, e.g. runs/digits-genetic.yaml")
    p.add_argument("--name", help="run directory name (default: the config's name, made unique)")
    p.add_argument("--workers", type=int, help="number of pool workers (overrides pool.workers)")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except EvonasError as exc:
        print(f"evonas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nevonas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
