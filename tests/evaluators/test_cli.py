import json
import subprocess
import sys

import pytest

from evaluators import cli
from evaluators.bench import SUITES, run_suite


def test_bench_prints_a_leaderboard_and_writes_cells(tmp_path, capsys):
    out = tmp_path / "cells.json"
    code = cli.main(["bench", "--suite", "quick", "--method", "pca", "--method", "ica", "--seeds", "1", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "suite quick v1: 4 cells" in text
    assert "mmcs" in text and "sparse-r2" in text and "hierarchy-r3" in text
    cells = json.loads(out.read_text())
    assert len(cells) == 4 and {c["method"] for c in cells} == {"pca", "ica"}
    assert all(c["status"] == "ok" and 0 <= c["scores"]["mmcs"] <= 1 for c in cells)


def test_failing_method_is_recorded_and_the_suite_goes_on():
    def broken(x, seed):
        raise RuntimeError("boom")

    results = run_suite("quick", method_names=["pca", "broken"], seeds=[0], extra_methods={"broken": broken})
    status = {(r.toy, r.method): r.status for r in results}
    assert status[("sparse-r2", "broken")] == "failed" and status[("sparse-r2", "pca")] == "ok"
    assert any("RuntimeError: boom" in r.error for r in results)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["bench", "--suite", "quik"], "unknown suite 'quik'; did you mean quick?"),
        (["bench", "--method", "sae-rel"], "unknown method 'sae-rel'; did you mean sae-relu"),
        (["bench", "--seeds", "0"], "--seeds must be at least 1"),
    ],
)
def test_unknown_names_get_one_line_with_the_nearest(argv, match, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_presets_and_suites_are_listed(capsys):
    assert cli.main(["presets"]) == 0 and "sharkey2022" in capsys.readouterr().out
    assert cli.main(["suites"]) == 0 and "quick" in capsys.readouterr().out
    assert set(SUITES) >= {"quick"}


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "evaluators.cli", "presets"], capture_output=True, text=True)
    assert proc.returncode == 0 and "synth16k" in proc.stdout
