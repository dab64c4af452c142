"""``evonas`` command line. The only module that prints; everything else logs."""
from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
from typing import Any, Optional, Sequence

from genome.errors import EvonasError, ResourceError


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class ProgressPrinter:
    """Turns run events into a progress bar (on a terminal) and one line per generation."""

    def __init__(self, stream: Any = sys.stderr):
        self.stream = stream
        self.bar = None
        self.counts: dict[str, Any] = {}
        self.run_dir: Optional[str] = None
        self.done = "trained"  # what an evaluation did: a user evaluator "evaluated"

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            self.run_dir = event["run_dir"]
            self.done = "evaluated" if event.get("evaluator") else "trained"
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
                                     running=event.get("running"),
                                     busy=f"{event.get('utilization', 0):.0%}", refresh=False)
        elif kind in ("generation", "window"):
            # generation: that generation's statistics; window (aging, random): the current
            # population's (aging) or all results' (random), after that many evaluations
            c = self.counts
            head = (f"generation {event['generation']:>3}" if kind == "generation"
                    else f"after {event['evaluations']:>5}")
            group = f"best {_fmt(event['best'])}  mean {_fmt(event['mean'])}"
            if "hypervolume" in event:  # several objectives: the run's front so far
                group = f"front {event['front']:>3}  hypervolume {event['hypervolume']:.5g}"
            infeasible = (f", infeasible {c['infeasible']} ({c.get('skipped', 0)} not trained)"
                          if c.get("infeasible") else "")
            pruned = (f", pruned {c['pruned']}, {c.get('epochs', 0)} epochs"
                      if c.get("pruned") else "")
            self._line(f"{head}  {group}  failed {event.get('failures', 0)}  |  evaluations "
                       f"{c.get('evaluations', 0)} ({self.done} {c.get('trained', 0)}, cached "
                       f"{c.get('cache_hits', 0)}{infeasible}{pruned}, failed "
                       f"{c.get('failures', 0)})"
                       + ("" if "hypervolume" in event
                          else f"  best so far {_fmt(c.get('best'))}"))
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
        from collections import Counter

        from evolution.record import RunRecord
        from evolution.results import user_frames

        failed = RunRecord(summary.run_dir).not_ok
        common, count = Counter(r.get("message", "") for r in failed).most_common(1)[0] \
            if failed else ("", 0)
        example = next((r for r in failed if r.get("message") == common), {})
        print(f"no evaluation succeeded ({summary.failures} failed); the most common failure "
              f"({count} of {len(failed)}): {common}")
        frames = user_frames(example.get("traceback") or "")
        if frames:
            print(f"in your code:\n{frames}")
        print(f"every message is in {summary.run_dir}/journal.jsonl")
        return
    if summary.front:
        _print_front(summary)
    best, final = summary.best, summary.final
    genome = summary.best_genome
    rows = [("best genome", genome if best["key"] == genome
             else f"{genome}   (canonical {best['key']})")]
    if final:  # the built-in trainer retrained the best genome and measured it on test
        primary = summary.primary
        rows += [
            (f"validation {primary}", f"{_fmt(final.get('val_' + primary))}   (during search "
                                      f"{_fmt(best['metrics'].get('val_' + primary))})"),
            (f"test {primary}", _fmt(final.get("test_" + primary))),
            ("parameters", f"{final.get('params', 0):,}"),
            ("FLOPs per example", f"{final.get('flops', 0):,}"),
        ]
    else:  # a user evaluator: its own metrics
        rows += [(name, _fmt(value) if isinstance(value, float) else str(value))
                 for name, value in best["metrics"].items()]
    done = "evaluated by the evaluator" if summary.evaluator else "trained"
    spent = f"in {summary.seconds:.1f} s"
    if summary.total_seconds is not None and summary.total_seconds > summary.seconds + 0.05:
        spent += f" ({summary.total_seconds:.1f} s over all of the run's sessions)"
    infeasible = (f"{summary.infeasible} infeasible ({summary.skipped} not trained), "
                  if summary.infeasible else "")
    if summary.pruned:  # multi-fidelity
        infeasible += f"{summary.pruned} pruned at a rung, "
    rows += [
        ("evaluations", f"{summary.evaluations} ({summary.trained} {done}, "
                        f"{summary.cache_hits} cache hits, {infeasible}{summary.failures} "
                        f"failed) {spent}"),
        ("run directory", str(summary.run_dir)),
    ]
    if summary.epochs and not summary.evaluator:
        rows.insert(-1, ("training epochs", f"{summary.epochs:,} (every rung included)"))
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def front_table(front: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[str]:
    """The lines of a Pareto front's table: evaluation, objective values, genome."""
    from genome import genome_from_dict

    widths = [max(10, len(m)) for m in metrics]
    lines = ["  evaluation  " + "  ".join(f"{m:>{w}}" for m, w in zip(metrics, widths))
             + "  genome"]
    for member in front:
        values = "  ".join(f"{v:>{w}.6g}" for v, w in zip(member["values"], widths))
        lines.append(f"  {member['index']:>10}  {values}  "
                     f"{genome_from_dict(member['genome']).to_string()}")
    return lines


def _print_front(summary: Any) -> None:
    from evolution.record import RunRecord

    metrics = [o.metric for o in RunRecord(summary.run_dir).config.objectives]
    reference = ", ".join(f"{m} {v:.6g}" for m, v in zip(metrics, summary.reference))
    gain = ""
    if summary.initial_hypervolume:
        gain = (f"; the initial population's front: {summary.initial_hypervolume:.6g}, "
                f"{summary.hypervolume / summary.initial_hypervolume - 1:+.1%}")
    print(f"Pareto front: {len(summary.front)} architectures, hypervolume "
          f"{summary.hypervolume:.6g}{gain}\n(reference point: {reference})")
    print("\n".join(front_table(summary.front, metrics)))
    print(f"\nbelow: the front's best in {metrics[0]}; `evonas export --pareto` exports them "
          f"all\n")


def _search(start: Any) -> int:
    """Run ``start(progress)`` (a new or resumed search) with progress output, then print the
    summary; Ctrl-C stops the workers and says how to continue; a full disk or a read-only
    folder says the journal is intact and how to continue."""
    printer = ProgressPrinter()
    try:
        summary = start(printer)
    except KeyboardInterrupt:
        printer.close()
        if printer.run_dir:
            print(f"\nevonas: interrupted; workers stopped, the journal is kept. Continue "
                  f"with:\n  evonas resume {printer.run_dir}", file=sys.stderr)
        else:
            print("\nevonas: interrupted before the run started; nothing was written",
                  file=sys.stderr)
        return 130
    except OSError as exc:
        printer.close()
        raise ResourceError(os_error_message(exc, printer.run_dir)) from exc
    finally:
        printer.close()
    _print_summary(summary)
    return 0 if summary.best is not None else 1


def os_error_message(exc: OSError, run_dir: Optional[str] = None) -> str:
    """One line for an operating-system error: what happened, to which file, what to do."""
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"the disk is full{where}"
    elif exc.errno == errno.EFBIG:
        what = f"a file grew past the size limit (ulimit -f){where}"
    elif exc.errno in (errno.EROFS,):
        what = f"the file system is read-only{where}"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = f"permission denied{where}"
    else:
        what = f"{exc.strerror or exc}{where}"
    if run_dir:
        return (f"{what}. The journal keeps every result recorded until now; fix this and "
                f"continue with `evonas resume {run_dir}`")
    return f"{what}; nothing was run"


def _cmd_run(args: argparse.Namespace) -> int:
    from evolution import load_config, run

    config = load_config(args.config)
    return _search(lambda progress: run(config, name=args.name, workers=args.workers,
                                        progress=progress, resume=args.resume))


def _budget_flags() -> dict[str, list[str]]:
    """Each strategy budget key (a ``resume`` flag) and the strategies it belongs to."""
    from evolution.strategies import STRATEGIES

    flags: dict[str, list[str]] = {}
    for name, strategy in STRATEGIES.items():
        flags.setdefault(strategy.budget_key, []).append(name)
    return flags


def _cmd_resume(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from evolution import resume
    from evolution.record import RunRecord
    from evolution.strategies import STRATEGIES

    given = {key: getattr(args, f"extend_{key}") for key in _budget_flags()
             if getattr(args, f"extend_{key}") is not None}
    extend = None
    if given:
        (key, extend), = given.items()
        strategy = RunRecord(args.run_dir).config.strategy.name
        own = STRATEGIES[strategy].budget_key
        if key != own:
            names = _budget_flags()[key]
            owners = ", ".join(names[:-1]) + " and " * (len(names) > 1) + names[-1]
            parser.error(f"--{key} is for {owners} runs, but "
                         f"{args.run_dir} runs {strategy}, whose budget is strategy.{own}: "
                         f"extend it with --{own} N")
    return _search(lambda progress: resume(args.run_dir, extend=extend, workers=args.workers,
                                           progress=progress))


def _cmd_status(args: argparse.Namespace) -> int:
    from evolution.status import run_status

    st = run_status(args.run_dir)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(st["statuses"].items())) or "none"
    if not st["in_flight"]:
        pending = ""
    elif st["state"].startswith("running"):
        pending = f", {st['in_flight']} in flight"
    else:  # asked before the stop, never finished: a resume runs them again
        pending = f", {st['in_flight']} interrupted (evonas resume runs them again)"
    print(f"run directory  {st['run_dir']}\n"
          f"state          {st['state']}\n"
          f"progress       {st['trained']}/{st['budget']} trained, {st['completed']} "
          f"evaluations{pending}, {st['cache_hits']} cache hits (free)\n"
          f"budget         {st['strategy']}: strategy.{st['budget_key']} = "
          f"{st['budget_value']} ({st['budget']} architectures); run longer with "
          f"`evonas resume {st['run_dir']} --{st['budget_key']} N`\n"
          f"objectives     {', '.join(st['objectives'])}\n"
          + (f"constraints    {st['constraints']}\n" if st["constraints"] else "") +
          (f"fidelity       {st['fidelity']}\n" if st["fidelity"] else "") +
          "".join(f"  rung {r['epochs']:>4}     {r['reached']} reached, {r['promoted']} "
                  f"promoted, {r['pruned']} pruned; rank correlation with the final value "
                  f"{_fmt(r['spearman'], 2)} "
                  f"({r['pairs']} finished)\n" for r in st.get("rungs") or []
                  if r['promoted'] is not None) +
          f"results        {statuses}\n"
          + (f"epochs         {st['epochs']:,} trained{st['epochs_budget']}\n"
             if st["epochs"] else "") +
          f"time spent     {st['seconds']:.1f} s in {st['sessions']} session(s), each from its "
          f"start (workers, data) to its last event (final training included)")
    if st["test_accuracy"] is not None:
        print(f"test accuracy  {_fmt(st['test_accuracy'])} (best genome, retrained)")
    names = [o.split(" ", 1)[1] for o in st["objectives"]]
    if st["front"]:
        measured = (f", hypervolume {st['hypervolume']:.6g} (reference point: "
                    + ", ".join(f"{m} {v:.6g}" for m, v in zip(names, st["reference"])) + ")"
                    if st["hypervolume"] is not None else "")
        print(f"\nPareto front: {len(st['front'])} architectures{measured}")
        print("\n".join(front_table(st["front"], names)))
    elif st["best"]:
        width = max(8, *map(len, names))
        print(f"\n{'rank':>4} {'index':>6} " + " ".join(f"{n:>{width}}" for n in names)
              + f" {'params':>10}  genome")
        for rank, b in enumerate(st["best"], 1):
            params = f"{b['params']:,}" if b["params"] is not None else "-"
            values = " ".join(f"{_fmt(v):>{width}}" for v in b["values"])
            print(f"{rank:>4} {b['index']:>6} {values} {params:>10}  {b['genome']}")
    return 0


def _cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from evolution.export import export_genome, export_run

    if args.genome is not None:
        if args.run_dir or not (args.config and args.out):
            parser.error("export --genome needs --config and --out, and no RUN_DIR")
        print(export_genome(args.genome, args.config, args.out, formats=args.formats))
        return 0
    if not args.run_dir:
        parser.error("export needs a RUN_DIR, or --genome with --config and --out")
    if args.config or args.out:
        parser.error(f"{'--config' if args.config else '--out'} is for export --genome; a run's "
                     f"export always goes to RUN_DIR/export (here {args.run_dir}/export)")

    def progress(event: dict[str, Any]) -> None:
        if event["event"] == "export_train":
            print(f"training rank {event.get('rank', '?')}: {event.get('genome', '')}",
                  file=sys.stderr, flush=True)

    if args.pareto and args.top != 1:
        parser.error("export --pareto exports the whole front; leave out --top")
    for path in export_run(args.run_dir, top=args.top, retrain_epochs=args.retrain_epochs,
                           formats=args.formats, progress=progress, pareto=args.pareto):
        print(path)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from evolution.report import show

    for path in show(args.target, args.out):
        print(path)
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evonas")
    except PackageNotFoundError:  # a checkout that was not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evonas", description="Evolutionary neural architecture search.")
    parser.add_argument("--version", action="version", version=f"evonas {_version()}")
    verbose = argparse.ArgumentParser(add_help=False)  # -v before or after the command
    verbose.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                         help="log more (-v info, -vv debug)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[verbose], **kwargs)

    p = command("run", help="run the search a config file describes",
                description="Run the search CONFIG describes in runs/<name>/.")
    p.add_argument("config", metavar="CONFIG", help="YAML config file, e.g. runs/digits-genetic.yaml")
    p.add_argument("--name", help="run directory name (default: the config's name, made unique)")
    p.add_argument("--workers", type=int, help="number of pool workers (overrides pool.workers)")
    p.add_argument("--resume", action="store_true",
                   help="continue runs_dir/NAME if it exists (same config), else start it")
    p.set_defaults(func=_cmd_run)

    p = command("resume", help="continue a stopped run",
                description="Continue a stopped run where it stopped, or extend a finished one "
                            "by raising its strategy's budget key.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory, e.g. runs/my-search")
    p.add_argument("--workers", type=int, help="number of pool workers (overrides pool.workers)")
    extend = p.add_mutually_exclusive_group()
    for key, names in _budget_flags().items():
        extend.add_argument(f"--{key}", type=int, metavar="N", dest=f"extend_{key}",
                            help=f"{', '.join(names)}: set strategy.{key} to N to run longer")
    p.set_defaults(func=lambda args, parser=p: _cmd_resume(args, parser))

    p = command("status", help="progress, best genomes and state of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=_cmd_status)

    p = command(
        "export", help="export the best genomes as PyTorch (weights, torch.export), ONNX and "
             "TorchScript models",
        description="Write RUN_DIR/export/<rank>/ for the best genomes of a run, or (with "
                    "--genome) an untrained model of one genome.")
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?", help="the run directory")
    p.add_argument("--top", type=int, default=1, metavar="K", help="export the K best (1)")
    p.add_argument("--pareto", action="store_true",
                   help="export every member of the run's Pareto front (several objectives)")
    p.add_argument("--retrain-epochs", type=int, metavar="E",
                   help="train each from scratch on train + validation data for E epochs")
    p.add_argument("--formats", nargs="+", default=["weights", "pt2", "onnx", "torchscript"],
                   metavar="FORMAT", help="weights, pt2, onnx, torchscript (legacy) "
                                          "(default: all)")
    p.add_argument("--genome", metavar="GENOME",
                   help="a genome string or JSON file: export an untrained model of it")
    p.add_argument("--config", metavar="CONFIG", help="with --genome: the search's config")
    p.add_argument("--out", metavar="DIR", help="with --genome: the output folder")
    p.set_defaults(func=lambda args, parser=p: _cmd_export(args, parser))

    p = command(
        "show", help="plot a run (RUN_DIR/report/) or draw a genome (PNG and DOT)",
        description="With a run directory: write its figures and report.md into "
                    "RUN_DIR/report/. With a genome string or JSON file: draw the "
                    "architecture as genome.png and genome.dot.")
    p.add_argument("target", metavar="GENOME|RUN_DIR",
                   help="a run directory, a genome string, or a JSON file with a genome")
    p.add_argument("--out", metavar="DIR", help="where the drawing or the report goes "
                   "(default: . for a genome, RUN_DIR/report for a run)")
    p.set_defaults(func=_cmd_show)
    return parser


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    signal.signal(signal.SIGTERM, _terminate)  # a scheduler's stop: shut down like Ctrl-C
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except EvonasError as exc:
        _error(str(exc))
        return exc.exit_code
    except BrokenPipeError:  # `evonas status RUN | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # a typo or garbage on the command line
            _error(f"a name on the command line is too long to be a file ({exc.strerror})")
            return 2
        _error(os_error_message(exc))
        return 3
    except MemoryError:
        _error("out of memory; close other programs or lower the sizes in the config")
        return 3
    except RecursionError:
        _error("the input is nested too deeply to read")
        return 2
    except KeyboardInterrupt:
        print("\nevonas: interrupted", file=sys.stderr)
        return 130


MAX_MESSAGE = 4000
"""Characters of an error message printed: input quoted in a message stays bounded."""


def _error(message: str) -> None:
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]} ... ({len(message) - MAX_MESSAGE:,} more characters)"
    print(f"evonas: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
