import json
import subprocess

import numpy as np
import pytest

from planted.evaluators import cli


def test_bench_then_report(tmp_path, capsys):
    store = str(tmp_path / "s.sqlite")
    assert cli.main(["bench", "--suite", "quick", "--method", "pca", "--method", "ica", "--seeds", "1", "--store", store]) == 0
    text = capsys.readouterr().out
    assert "6 cells" in text and "mmcs" in text and "sparse-r2" in text and "hierarchy-r3" in text and "tms-20-5" in text
    assert cli.main(["report", "--store", store, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["suites"][0]["rows"]
    toy_names = ("sparse-r2", "hierarchy-r3", "tms-20-5")
    assert {(r["toy"], r["method"]) for r in rows} == {(t, m) for t in toy_names for m in ("pca", "ica")}
    out = tmp_path / "report"
    assert cli.main(["report", "--store", store, "--out", str(out)]) == 0
    assert (out / "leaderboard.tex").is_file() and (out / "quick-leaderboard-mmcs.png").is_file()
    assert (out / "report.html").is_file()


def test_make_and_score(tmp_path, capsys):
    folder = tmp_path / "toy"
    assert cli.main(["make", "sharkey2022", "--out", str(folder)]) == 0
    capsys.readouterr()
    np.savez(tmp_path / "pred.npz", directions=np.eye(256, dtype=np.float32))
    assert cli.main(["score", str(folder), str(tmp_path / "pred.npz")]) == 0
    printed = json.loads(capsys.readouterr().out)
    scores = printed["scores"]["features"]
    assert 0 <= scores["mmcs"] <= 1
    assert printed["toy"]["preset"] == "sharkey2022" and len(printed["toy"]["toy_id"]) == 64
    assert 0 < printed["chance"]["features"]["mmcs"] < scores["mmcs"]
    np.savez(tmp_path / "bad.npz", directions=np.eye(3, dtype=np.float32))
    assert cli.main(["score", str(folder), str(tmp_path / "bad.npz")]) == 2
    assert "'directions' must be a float array (n_latents, 256)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bench", "--suite", "quik"], "unknown suite 'quik'; did you mean quick"),
        (["bench", "--method", "sae-rel", "--store", "{tmp}/x.sqlite"], "unknown method 'sae-rel'; did you mean sae-relu"),
        (["bench", "--seeds", "0"], "--seeds must be at least 1"),
        (["make", "sharky2022", "--out", "{tmp}/m"], "unknown preset or family 'sharky2022'; did you mean sharkey2022"),
        (["report", "--store", "{tmp}/none.sqlite"], "no results store there"),
    ],
)
def test_errors_are_one_line_with_the_nearest_names(argv, match, capsys, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_presets_and_suites_are_listed(capsys):
    assert cli.main(["presets"]) == 0 and "sharkey2022" in capsys.readouterr().out
    assert cli.main(["suites"]) == 0
    out = capsys.readouterr().out
    assert "quick" in out and "standard" in out and "features-sweep" in out


def test_console_script_runs():
    proc = subprocess.run(["planted", "presets"], capture_output=True, text=True)
    assert proc.returncode == 0 and "synth16k" in proc.stdout


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bench", "--sede", "3"], "did you mean --seeds"),
        (["bnch"], "did you mean bench?"),
        (["bench", "--format", "jsn"], "did you mean json?"),
    ],
)
def test_unknown_commands_and_options_suggest_the_nearest(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_version_and_no_prefix_matching(capsys):
    from planted import __version__

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"planted {__version__}"
    with pytest.raises(SystemExit):
        cli.main(["bench", "--suit", "quick"])  # not silently read as --suite
    assert "unrecognized arguments: --suit quick; did you mean --suite" in capsys.readouterr().err


def test_suggestions_come_from_the_subcommand_used(capsys):
    with pytest.raises(SystemExit):
        cli.main(["report", "--sede", "2"])
    err = capsys.readouterr().err
    assert "did you mean" in err and "--seeds" not in err  # --seeds belongs to bench, not report


@pytest.mark.parametrize("command", sorted(cli._COMMANDS))
def test_every_subcommand_has_a_description_and_examples(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"planted {command}" in text.split("examples:")[1]


def test_user_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    store = tmp_path / "s.sqlite"
    assert cli.main(["bench", "--suite", "quick", "--method", "pca", "--seeds", "1", "--store", str(store)]) == 0
    capsys.readouterr()
    assert cli.main(["report", "--store", str(store), "--out", str(blocker / "report")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("planted: error: ") and err.count("\n") == 1 and "a-file" in err
    # A reader that leaves early (`planted suites | head -1`) gets no BrokenPipeError.
    proc = subprocess.run("planted suites | head -1; exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_a_method_module_in_the_current_folder_can_be_named(tmp_path, monkeypatch):
    """The ``planted`` script, unlike ``python -m``, does not put the current folder on the path."""
    (tmp_path / "here_methods.py").write_text(
        "from planted.evaluators._methods import pca_method\n\ndef half(x, *, seed):\n"
        "    return pca_method(x, seed=seed, components=0.5)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(["planted", "bench", "--suite", "quick", "--add-method", "here_methods:half", "--method", "pca",
                           "--seeds", "1", "--store", str(tmp_path / "s.sqlite")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("here_methods:half* ") == 3 and proc.stdout.count(" pca ") == 3
    assert "run beside the suite's grid (--add-method or --method): here_methods:half" in proc.stdout
    proc = subprocess.run(["planted", "bench", "--method", "nowhere:fn", "--store", str(tmp_path / "s.sqlite")],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "in the current folder, on PYTHONPATH, or installed" in proc.stderr


def test_the_api_reference_is_built_from_the_docstrings(tmp_path, capsys):
    pytest.importorskip("pdoc")
    assert cli.main(["docs", "--out", str(tmp_path / "api")]) == 0
    pages = {p.relative_to(tmp_path / "api").as_posix() for p in (tmp_path / "api").rglob("*.html")}
    assert {"index.html", "planted.html", "planted/toys.html", "planted/methods.html", "planted/evaluators.html",
            "planted/groundtruth.html"} <= pages
    toys_page = (tmp_path / "api" / "planted" / "toys.html").read_text()
    assert "sparse_features" in toys_page and "Number of planted features" in toys_page
    assert "score_features" in (tmp_path / "api" / "planted" / "evaluators.html").read_text()


def test_verbosity_goes_before_or_after_the_command():
    parser = cli._parser()
    for argv in (["-q", "bench"], ["bench", "-q"]):
        assert parser.parse_args(argv).quiet is True
    assert parser.parse_args(["report", "-vv"]).verbose == 2 and parser.parse_args(["report"]).quiet is False


def test_a_signal_while_the_runner_is_still_being_imported_is_a_plain_interrupt(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "planted.evaluators.runner", types.ModuleType("planted.evaluators.runner"))
    with pytest.raises(KeyboardInterrupt):  # not an AttributeError from the half-imported module
        cli._terminate(2, None)


def test_a_signal_the_shell_ignores_stays_ignored_and_handlers_are_restored(monkeypatch, capsys):
    import signal

    seen = {}

    def command(args):
        seen["int"], seen["term"] = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        return 0

    monkeypatch.setitem(cli._COMMANDS, "presets", command)
    before = signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job started with & by a script
    try:
        assert cli.main(["presets"]) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen["int"] is signal.SIG_IGN and seen["term"] is cli._terminate
    assert signal.getsignal(signal.SIGTERM) is before
