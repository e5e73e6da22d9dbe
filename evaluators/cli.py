"""The ``planted`` command line: bench, report, make, score, presets, suites.

Each command imports what it needs when it runs, so ``planted --help`` and the numpy-only
commands (``score`` of a features file, ``presets``) never import JAX."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from planted import __version__, toys
from planted.evaluators._private import SECRET_ENV
from planted.evaluators.store import DEFAULT_STORE, FORMATS, TamperingDetected
from planted.groundtruth import nearest, suggest


class _Parser(argparse.ArgumentParser):
    """argparse without prefix matching (``--suit`` is not ``--suite``), with examples shown as
    written, and with the nearest valid command or option of the right subcommand suggested."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        suggestion = ""
        choice = re.search(r"invalid choice: '([^']*)'", message)
        unknown = re.search(r"unrecognized arguments: (.*)", message)
        if choice:
            candidates = [c for a in self._actions if isinstance(a, argparse._SubParsersAction) for c in a.choices]
            candidates += [c for a in self._actions if a.choices and not isinstance(a, argparse._SubParsersAction) for c in a.choices]
            suggestion = _closest(choice.group(1), candidates)
        elif unknown:
            options = _options_of(self, getattr(self, "argv", None) or [])
            for word in unknown.group(1).split():
                if word.startswith("-") and (suggestion := _closest(word.split("=")[0], options)):
                    break
        if suggestion:
            message += f"; did you mean {suggestion}?"
        self.exit(2, f"{self.prog}: error: {message}\n")


def _closest(word: str, candidates) -> str:
    return " or ".join(suggest(word, candidates, n=2, cutoff=0.5))


def _options_of(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """The options of the subcommand named in ``argv`` (with the top level's), or of ``parser``."""
    options = [o for a in parser._actions for o in a.option_strings]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = next((w for w in argv if w in action.choices), None)
            if chosen is not None:
                options += [o for a in action.choices[chosen]._actions for o in a.option_strings]
    return sorted(set(options))


def _command(sub, name: str, summary: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary, a description and examples in its ``--help``, and
    -v/-q after it as before it (``planted bench -q`` as ``planted -q bench``)."""
    command = sub.add_parser(name, help=summary, description=f"{summary}.\n\n{description}",
                             epilog="examples:\n" + examples)
    command.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="say more (-vv: debugging detail)")
    command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                         help="only warnings and errors; no progress")
    return command


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="planted",
        description="Toy networks and synthetic data with planted ground truth, and scores of interpretability "
        "methods against it.",
        epilog="examples:\n  planted bench --suite quick\n  planted report --out report/\n"
        "  planted make sharkey2022 --out toy/ && planted score toy/ pred.npz\n\n"
        "`planted COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"planted {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: debugging detail)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    bench = _command(
        sub, "bench", "run a benchmark suite (resumable) and print its leaderboard",
        "Runs every cell (toy x method x seed) of a suite that the results store does not hold yet,\n"
        "stores each as it finishes, and prints the leaderboard of the whole grid. A run killed at any\n"
        "moment resumes where it stopped. Methods that are not planted's own run in a process of\n"
        "their own that sees only the artifact.",
        "  planted bench --suite quick\n"
        "  planted bench --suite quick --method pca --method sae-topk --seeds 1\n"
        "  planted bench --suite quick --add-method mymodule:my_method   # the suite's methods and yours\n"
        "  planted bench --suite standard --workers 2\n")
    bench.add_argument("--suite", default="quick", help="suite name (default: %(default)s; `planted suites` lists them)")
    bench.add_argument("--method", action="append", dest="methods", metavar="METHOD",
                       help="run only this method: a built-in name or package.module:function (repeatable; "
                       "default: the suite's; a module in the current folder can be named)")
    bench.add_argument("--add-method", action="append", dest="added", metavar="METHOD",
                       help="run this method beside the suite's (or --method's) methods (repeatable)")
    bench.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..N-1 (default: the suite's)")
    bench.add_argument("--method-seeds", type=int, default=None,
                       help="seed the methods apart from the toys: each toy seed runs with method seeds 0..N-1, so the "
                       "report separates data variance from a method's own (default: a method gets its toy's seed)")
    bench.add_argument("--store", default=str(DEFAULT_STORE), help="SQLite results store (default: %(default)s)")
    bench.add_argument("--workers", type=int, default=1, help="local processes running cells at once")
    bench.add_argument("--backend", default="local", help="local (default) or ray")
    bench.add_argument("--address", default=None, help="with --backend ray: the cluster address (default: a local instance)")
    bench.add_argument("--retry-failed", action="store_true", help="run again the cells stored as failed")
    bench.add_argument("--force", action="store_true",
                       help="run every cell again, whatever the store holds (cells whose method's code changed "
                       "are rerun anyway)")
    bench.add_argument("--debug", action="store_true", help="print the full traceback of every failed cell")
    bench.add_argument("--isolate", choices=("auto", "all", "none"), default="auto",
                       help="run methods in their own process, seeing only the artifact: auto (default: every "
                       "method not planted's own), all, or none")
    bench.add_argument("--secret-file", default=None,
                       help=f"the private split: derive toy seeds from the secret in this file (or ${SECRET_ENV})")
    bench.add_argument("--format", choices=FORMATS, default="text")

    rep = _command(
        sub, "report", "leaderboard, tables and figures from a results store",
        "Reads the store (it never builds or trains a toy) and prints one leaderboard per suite and\n"
        "version; --out also writes Markdown, CSV, LaTeX and JSON tables and the figures.",
        "  planted report\n  planted report --suite quick --format markdown\n  planted report --out report/\n")
    rep.add_argument("--store", default=str(DEFAULT_STORE), help="SQLite results store (default: %(default)s)")
    rep.add_argument("--suite", default=None, help="only this suite (default: every suite in the store)")
    rep.add_argument("--version", default=None, dest="suite_version", help="only this suite version")
    rep.add_argument("--out", default=None, help="write Markdown, CSV, LaTeX, JSON tables and PNG figures here")
    rep.add_argument("--format", choices=FORMATS, default="text")
    rep.add_argument("--debug", action="store_true", help="print the full traceback of every failed cell")

    make = _command(
        sub, "make", "write a toy's artifact (never its truth) plus a sealed truth file",
        "For methods written in any framework: artifact.npz holds only what a method may see,\n"
        "artifact.json says what to predict and in which format, and the truth is saved apart.",
        "  planted make sharkey2022 --out toy/ --n-samples 5000\n"
        "  planted make planted_mlp --out circuit/ --set n_inputs=10 --set saturation=true\n"
        "  planted make chalearn2014 --out recording/ --set duration=60\n"
        "  planted make sharkey2022 --out hidden/ --secret-file secret.txt   # the private split\n"
        "  planted make comparison:ladder --out views/   # a suite's problem of several toys\n"
        "  planted make superposition --out record/ --set snapshot_every=30 --task dynamics\n")
    make.add_argument("preset", help="a preset (`planted presets`), a family (sparse_features, superposition, "
                      "planted_mlp, connectome, rasp_transformer ...) or SUITE:TOY, a suite's problem of several toys "
                      "(comparison:ladder, layers:compiled, damage:noise)")
    make.add_argument("--out", required=True, help="the folder to write (created)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--n-samples", type=int, default=None, help="the config's n_samples (features and circuit toys)")
    make.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                      help="change a config field (repeatable; VALUE read as JSON: 2000, 0.5, true, \"zipf\" or zipf)")
    make.add_argument("--secret-file", default=None,
                      help="the private split: derive the toy's seed from the secret in this file; artifact.json then "
                      "records no seed, id or config, and the truth goes to a separate folder")
    make.add_argument("--task", action="append", default=None, dest="tasks",
                      help="export only this task (repeatable; default: every task the toy serves, less those whose "
                      "artifact would reveal another's truth)")
    make.add_argument("--truth-out", default=None,
                      help="where the truth goes (default: OUT/truth.sealed; with --secret-file, OUT.truth beside OUT)")

    score = _command(
        sub, "score", "score a predictions .npz against a folder written by `planted make`",
        "Checks the predictions file against the format artifact.json promises, then prints the\n"
        "scores as JSON.",
        "  planted score toy/ pred.npz\n  planted score toy/ my_sae/   # a SAELens checkpoint folder\n"
        "  planted score toy/ pred.npz --store results/planted.sqlite --method mine\n"
        "  planted score hidden/ pred.npz --truth hidden.truth/\n")
    score.add_argument("folder", help="a folder written by `planted make`")
    score.add_argument("predictions", help="an .npz with 'directions' (optionally 'codes', 'decoder_bias' and an encoder: "
                       "'W_enc', 'b_enc', 'threshold' or 'k'), or a SAELens checkpoint folder")
    score.add_argument("--truth", default=None, help="the truth folder of a private split (default: FOLDER/truth.sealed)")
    score.add_argument("--store", default=None,
                       help="also add the scores to this results store (suite make:PRESET), for `planted report`")
    score.add_argument("--method", default=None, help="the method's name in the store (default: the predictions' file name)")

    docs = _command(
        sub, "docs", "write the API reference (HTML) from the docstrings",
        "Renders every public module of planted with pdoc (the `docs` extra).",
        "  planted docs --out docs/api\n")
    docs.add_argument("--out", default="docs/api", help="the folder to write (default: %(default)s)")

    _command(sub, "presets", "list the toy presets", "Each preset is a named config citing its paper.",
             "  planted presets\n")
    _command(sub, "suites", "list the benchmark suites", "Each suite with its version and what it holds.",
             "  planted suites\n")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``planted`` command line on ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    parser.argv = argv
    # Ctrl-C and SIGTERM stop a run; a signal the shell set to be ignored (a job started with &) stays so
    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    try:
        args = parser.parse_args(argv)
        _logging(args)
        return _COMMANDS[args.command](args)
    except ValueError as exc:
        print(f"planted: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    except TamperingDetected as exc:  # the store was changed by another process during the run
        print(f"planted: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 3
    except BrokenPipeError:  # `planted report | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # an unwritable --out, a full disk, a folder where a file should be
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"planted: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM; a run says what it saved
        print(f"planted: {exc or 'interrupted'}", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = hook


def _unraisable(default):
    """A hook for exceptions Python cannot raise (in a ``__del__``, a garbage-collector callback) that
    drops the KeyboardInterrupt of Ctrl-C or SIGTERM landing there: the run stops at its next cell
    anyway (see ``_terminate``), and a traceback would only hide the line saying what was saved."""

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            default(unraisable)

    return hook


def _terminate(signum, frame) -> None:
    """Ctrl-C and SIGTERM stop a run: the cells finished so far are already saved. The run is also
    told to stop, so it stops at the next cell even where the KeyboardInterrupt lands in code that
    swallows it (a garbage-collector callback of jax, a ``__del__``)."""
    runner = sys.modules.get("planted.evaluators.runner")  # never import in a handler: only a run needs telling
    request = getattr(runner, "_request_stop", None)  # absent while the runner is still being imported
    if request is not None:
        request()
    raise KeyboardInterrupt


def _logging(args) -> None:
    """Messages of the ``planted`` logger on stderr: info by default, -v for debugging detail, -q for
    warnings only (and no progress)."""
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    logger = logging.getLogger("planted")
    logger.setLevel(level)
    if not any(getattr(h, "_planted", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("planted: %(message)s"))
        handler._planted = True
        logger.addHandler(handler)
        logger.propagate = False


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
    _importable_here(list(args.methods or []) + list(args.added or []))
    methods = args.methods
    if args.added:
        methods = [m.name for m in SUITES[args.suite].methods] if methods is None else methods
        methods = list(methods) + [m for m in args.added if m not in methods]
    results = run(args.suite, methods=methods, seeds=seeds, store=args.store, workers=args.workers,
                  backend=args.backend, address=args.address, retry_failed=args.retry_failed,
                  isolate={"auto": None, "all": True, "none": False}[args.isolate], secret=_secret(args),
                  force=args.force, progress=False if getattr(args, "quiet", False) else None,
                  method_seeds=None if args.method_seeds is None else range(_positive(args.method_seeds, "--method-seeds")))
    if args.format == "text":
        print(f"suite {args.suite} v{results[0].suite_version if results else '?'}: {len(results)} cells, store {args.store}")
    print(report.leaderboard(results, fmt=args.format))
    _failures(results, args.debug, rerun=f"planted bench --suite {args.suite} ... --retry-failed")
    return 0 if all(r.status == "ok" for r in results) else 1


def _positive(value: int, name: str) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def _failures(results, debug: bool, rerun: str) -> None:
    """On stderr: how many cells failed and how to rerun them, and their tracebacks with --debug."""
    failed = [r for r in results if r.status != "ok"]
    if not failed:
        return
    if debug:
        for r in failed:
            print(f"--- {r.suite} {r.toy} {r.method} seed {r.seed}\n{r.traceback or r.error}", file=sys.stderr)
    else:
        print(f"{len(failed)} cell(s) failed: `{rerun}` runs them again; --debug prints their tracebacks",
              file=sys.stderr)


def _importable_here(references: Sequence[str]) -> None:
    """Let ``module:function`` references name a module in the current folder, as ``python -m``
    would (the ``planted`` script does not put it on the path). It goes last on the path, so it
    never shadows an installed module; spawned workers and method processes inherit the path."""
    if any(":" in r for r in references) and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())


def _report(args) -> int:
    from planted.evaluators import report
    from planted.evaluators.store import Store

    if not Path(args.store).is_file():
        raise ValueError(f"{args.store}: no results store there; run `planted bench --store {args.store}` first")
    with Store(args.store) as store:
        results = store.results(suite=args.suite, suite_version=args.suite_version)
        if not results:
            raise ValueError(f"{args.store}: no results for suite {args.suite!r}"
                             + (f" version {args.suite_version}" if args.suite_version else ""))
        if args.out:
            import matplotlib

            matplotlib.use("Agg")  # a command-line run writes files; it never opens a window
            for path in report.write_report(results, args.out, store=store):
                print(path, file=sys.stderr)
    groups = sorted({(r.suite, r.suite_version) for r in results})
    if args.format == "text" and len(groups) == 1:
        print(f"suite {groups[0][0]} v{groups[0][1]}: {len(results)} cells")
    print(report.leaderboard(results, fmt=args.format))
    _failures(results, args.debug, rerun="planted bench --suite SUITE --retry-failed")
    return 0


def _make(args) -> int:
    from planted.evaluators import external

    secret = Path(args.secret_file) if args.secret_file else None
    overrides = _settings(args.settings)
    if args.n_samples is not None:
        overrides["n_samples"] = args.n_samples
    folder = external.make(args.preset, args.out, seed=args.seed, secret=secret, truth_out=args.truth_out,
                           tasks=args.tasks, **overrides)
    truth = args.truth_out or (folder.with_name(folder.name + ".truth") if secret else folder / external.TRUTH)
    print(f"wrote {folder / external.ARTIFACT}, {folder / external.ARTIFACT_INFO} and {truth}/")
    return 0


def _settings(pairs: Sequence[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs as config overrides, each VALUE read as JSON where it is JSON (a list
    becomes a tuple, as configs hold them) and as a string otherwise."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def _score(args) -> int:
    from planted.evaluators import external

    print(json.dumps(external.score_report(args.folder, args.predictions, truth=args.truth), indent=1, sort_keys=True))
    if args.store:
        rows = external.score_to_store(args.folder, args.predictions, args.store, method=args.method, truth=args.truth)
        print(f"added {rows[0].method} ({', '.join(r.task for r in rows)}) to suite {rows[0].suite} "
              f"v{rows[0].suite_version} in {args.store}", file=sys.stderr)
    return 0


# The modules of the API reference: the namespace and its four packages (with their public submodules).
API_MODULES = ("planted", "planted.groundtruth", "planted.toys", "planted.methods", "planted.evaluators")


def _docs(args) -> int:
    try:
        import pdoc
    except ImportError:
        raise ValueError("the API reference needs pdoc: pip install 'planted[docs]'") from None
    import warnings

    out = Path(args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pdoc's notes on annotations it cannot resolve
        pdoc.pdoc(*API_MODULES, output_directory=out)
    print(f"wrote {out / 'index.html'} and {sum(1 for _ in out.rglob('*.html'))} pages")
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


_COMMANDS = {"bench": _bench, "report": _report, "make": _make, "score": _score, "docs": _docs, "presets": _presets,
             "suites": _suites}


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = [
    "main",
]
