"""The ``planted`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

import toys
from evaluators.bench import SUITES, leaderboard, nearest, run_suite


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="planted", description="Toy networks with planted ground truth, and scores.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run a benchmark suite and print its leaderboard")
    bench.add_argument("--suite", default="quick", help=f"suite name ({', '.join(SUITES)})")
    bench.add_argument("--method", action="append", dest="methods", help="run only this method (repeatable)")
    bench.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the suite's)")
    bench.add_argument("--out", default=None, help="also write every cell as JSON to this file")
    sub.add_parser("presets", help="list the toy presets")
    suites = sub.add_parser("suites", help="list the benchmark suites")
    suites.set_defaults(command="suites")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "presets":
            for name, description in toys.presets().items():
                print(f"{name:14s} {description}")
            return 0
        if args.command == "suites":
            for name, suite in SUITES.items():
                print(f"{name:10s} v{suite.version}  {suite.description}")
            return 0
        if args.suite not in SUITES:
            raise nearest(args.suite, SUITES, "suite")
        seeds = None
        if args.seeds is not None:
            if args.seeds < 1:
                raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
            seeds = range(args.seeds)
        results = run_suite(args.suite, method_names=args.methods, seeds=seeds)
    except ValueError as exc:
        print(f"planted: error: {exc}", file=sys.stderr)
        return 2
    suite = SUITES[args.suite]
    print(f"suite {suite.name} v{suite.version}: {len(results)} cells")
    print(leaderboard(results))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump([dataclasses.asdict(r) for r in results], fh, indent=1)
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
