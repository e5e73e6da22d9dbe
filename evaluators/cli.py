"""The ``planted`` command line: bench, report, make, score, presets, suites.

Each command imports what it needs when it runs, so ``planted --help`` and the numpy-only
commands (``score`` of a features file, ``presets``) never import JAX."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from planted import toys
from planted.evaluators._private import SECRET_ENV
from planted.evaluators.store import DEFAULT_STORE, FORMATS, TamperingDetected
from planted.groundtruth import nearest, suggest


class _Parser(argparse.ArgumentParser):
    """argparse, with the nearest valid command or option suggested for an unknown one."""

    def error(self, message: str):
        suggestion = ""
        choice = re.search(r"invalid choice: '([^']*)'", message)
        unknown = re.search(r"unrecognized arguments: (.*)", message)
        if choice:
            candidates = [c for a in self._actions if isinstance(a, argparse._SubParsersAction) for c in a.choices]
            candidates += [c for a in self._actions if a.choices and not isinstance(a, argparse._SubParsersAction) for c in a.choices]
            suggestion = _closest(choice.group(1), candidates)
        elif unknown:
            options = _all_options(self)
            for word in unknown.group(1).split():
                if word.startswith("-") and (suggestion := _closest(word.split("=")[0], options)):
                    break
        if suggestion:
            message += f"; did you mean {suggestion}?"
        self.exit(2, f"{self.prog}: error: {message}\n")


def _closest(word: str, candidates) -> str:
    return " or ".join(suggest(word, candidates, n=2, cutoff=0.5))


def _all_options(parser: argparse.ArgumentParser) -> list[str]:
    options = []
    for action in parser._actions:
        options += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options += _all_options(sub)
    return sorted(set(options))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="planted", description="Toy networks with planted ground truth, and scores.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    bench = sub.add_parser("bench", help="run a benchmark suite (resumable) and print its leaderboard")
    bench.add_argument("--suite", default="quick", help="suite name (default: %(default)s; `planted suites` lists them)")
    bench.add_argument("--method", action="append", dest="methods",
                       help="a built-in method name or package.module:function (repeatable; default: the suite's)")
    bench.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..N-1 (default: the suite's)")
    bench.add_argument("--store", default=str(DEFAULT_STORE), help="SQLite results store (default: %(default)s)")
    bench.add_argument("--workers", type=int, default=1, help="local processes running cells at once")
    bench.add_argument("--backend", default="local", help="local (default) or ray")
    bench.add_argument("--address", default=None, help="with --backend ray: the cluster address (default: a local instance)")
    bench.add_argument("--retry-failed", action="store_true", help="run again the cells stored as failed")
    bench.add_argument("--isolate", choices=("auto", "all", "none"), default="auto",
                       help="run methods in their own process, seeing only the artifact: auto (default: every "
                       "method not planted's own), all, or none")
    bench.add_argument("--secret-file", default=None,
                       help=f"the private split: derive toy seeds from the secret in this file (or ${SECRET_ENV})")
    bench.add_argument("--format", choices=FORMATS, default="text")

    rep = sub.add_parser("report", help="leaderboard, tables and figures from a results store")
    rep.add_argument("--store", default=str(DEFAULT_STORE))
    rep.add_argument("--suite", default=None, help="only this suite (default: every suite in the store)")
    rep.add_argument("--version", default=None, help="only this suite version")
    rep.add_argument("--out", default=None, help="write Markdown, CSV, LaTeX, JSON tables and PNG figures here")
    rep.add_argument("--format", choices=FORMATS, default="text")

    make = sub.add_parser("make", help="write a toy's artifact (never its truth) plus a sealed truth file")
    make.add_argument("preset", help="preset name (see `planted presets`)")
    make.add_argument("--out", required=True)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--secret-file", default=None,
                      help="the private split: derive the toy's seed from the secret in this file; artifact.json then "
                      "records no seed, id or config, and the truth goes to a separate folder")
    make.add_argument("--truth-out", default=None,
                      help="where the truth goes (default: OUT/truth.sealed; with --secret-file, OUT.truth beside OUT)")

    score = sub.add_parser("score", help="score a predictions .npz against a folder written by `planted make`")
    score.add_argument("folder")
    score.add_argument("predictions")
    score.add_argument("--truth", default=None, help="the truth folder of a private split (default: FOLDER/truth.sealed)")

    sub.add_parser("presets", help="list the toy presets")
    sub.add_parser("suites", help="list the benchmark suites")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ValueError as exc:
        print(f"planted: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    except TamperingDetected as exc:  # the store was changed by another process during the run
        print(f"planted: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 3


def _secret(args) -> bytes | Path | None:
    """The private split's secret: ``--secret-file``, else ``$PLANTED_SECRET`` (then removed from the
    environment, so no process started later inherits it), else None."""
    from planted.evaluators import _private

    if getattr(args, "secret_file", None):
        _private.read_secret(args.secret_file)  # a bad file fails now, with its name
        return Path(args.secret_file)
    value = os.environ.pop(SECRET_ENV, None)
    return None if value is None else _private.secret_bytes(value)


def _bench(args) -> int:
    from planted.evaluators import report
    from planted.evaluators.runner import run

    from planted.evaluators.suites import SUITES

    if args.suite not in SUITES:
        raise nearest(args.suite, SUITES, "suite")
    seeds = None
    if args.seeds is not None:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
        seeds = range(args.seeds)
    results = run(args.suite, methods=args.methods, seeds=seeds, store=args.store, workers=args.workers,
                  backend=args.backend, address=args.address, retry_failed=args.retry_failed,
                  isolate={"auto": None, "all": True, "none": False}[args.isolate], secret=_secret(args))
    if args.format == "text":
        print(f"suite {args.suite} v{results[0].suite_version if results else '?'}: {len(results)} cells, store {args.store}")
    print(report.leaderboard(results, fmt=args.format))
    return 0 if all(r.status == "ok" for r in results) else 1


def _report(args) -> int:
    from planted.evaluators import report
    from planted.evaluators.store import Store

    if not Path(args.store).is_file():
        raise ValueError(f"{args.store}: no results store there; run `planted bench --store {args.store}` first")
    with Store(args.store) as store:
        results = store.results(suite=args.suite, suite_version=args.version)
        if not results:
            raise ValueError(f"{args.store}: no results for suite {args.suite!r}" + (f" version {args.version}" if args.version else ""))
        if args.out:
            import matplotlib

            matplotlib.use("Agg")  # a command-line run writes files; it never opens a window
            for path in report.write_report(results, args.out, store=store):
                print(path, file=sys.stderr)
    groups = sorted({(r.suite, r.suite_version) for r in results})
    for suite, version in groups:
        subset = [r for r in results if (r.suite, r.suite_version) == (suite, version)]
        if args.format == "text":
            print(f"suite {suite} v{version}: {len(subset)} cells")
        print(report.leaderboard(subset, fmt=args.format))
    return 0


def _make(args) -> int:
    from planted.evaluators import external

    toys.presets()  # names are checked by make with the nearest ones suggested
    secret = Path(args.secret_file) if args.secret_file else None
    folder = external.make(args.preset, args.out, seed=args.seed, secret=secret, truth_out=args.truth_out)
    truth = args.truth_out or (folder.with_name(folder.name + ".truth") if secret else folder / external.TRUTH)
    print(f"wrote {folder / external.ARTIFACT}, {folder / external.ARTIFACT_INFO} and {truth}/")
    return 0


def _score(args) -> int:
    from planted.evaluators import external

    print(json.dumps(external.score(args.folder, args.predictions, truth=args.truth), indent=1, sort_keys=True))
    return 0


def _presets(args) -> int:
    for name, description in toys.presets().items():
        print(f"{name:14s} {description}")
    return 0


def _suites(args) -> int:
    from planted.evaluators.suites import SUITES

    for name, suite in SUITES.items():
        print(f"{name:15s} v{suite.version}  {suite.description}")
    return 0


_COMMANDS = {"bench": _bench, "report": _report, "make": _make, "score": _score, "presets": _presets, "suites": _suites}


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = [
    "main",
]
