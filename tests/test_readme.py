"""Every Python example of the README runs as printed, in order, in one session, and every number
it shows is the number it computes.

A block runs as written, except where an HTML comment just before it says otherwise (invisible on
the rendered page, visible here):

    <!-- test: replace 'n_samples=50_000' with 'n_samples=5_000' -->   a smaller size for the suite

A line ending in ``# -> 1.000`` shows a value: the test evaluates the line and requires it to equal
the number at the number of decimals shown; ``# -> ~0.6`` requires it within 0.1. Blocks run in a
fresh folder (files they write stay there) in a separate process.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"((?:<!-- test: [^\n]*-->\n)*)```python\n(.*?)```", re.S)
_REPLACE = re.compile(r"replace '([^']*)' with '([^']*)'")
_SHOWN = re.compile(r"^(?P<code>[^#\n]*[^#\s])\s*#\s*->\s*(?P<want>~?-?[0-9.]+)(?P<rest>.*)$")


def blocks() -> list[tuple[int, str]]:
    """(line number, code as the test runs it) of every ``python`` block, in order."""
    text = README.read_text()
    out = []
    for match in _BLOCK.finditer(text):
        code = match.group(2)
        for old, new in _REPLACE.findall(match.group(1)):
            assert old in code, f"README line {text[:match.start()].count(chr(10)) + 1}: {old!r} is not in the block"
            code = code.replace(old, new)
        out.append((text[: match.start(2)].count("\n") + 1, code))
    return out


def _instrumented(line: int, code: str) -> str:
    """The block with each ``# -> value`` line turned into a check of that value."""
    lines = []
    for i, source in enumerate(code.splitlines()):
        shown = _SHOWN.match(source)
        if shown and "=" not in shown["code"].replace("==", ""):
            indent = source[: len(source) - len(source.lstrip())]
            lines.append(f"{indent}_shown({shown['code'].strip()}, {shown['want']!r}, {line + i})")
        else:
            lines.append(source)
    return "\n".join(lines)


_PRELUDE = textwrap.dedent('''
    import math, sys
    def _shown(value, want, line):
        approx = want.startswith("~")
        target = float(want.lstrip("~"))
        value = float(value)
        if approx:
            ok = abs(value - target) <= 0.1
        else:
            decimals = len(want.split(".")[1]) if "." in want else 0
            ok = round(value, decimals) == target
        if not ok:
            raise AssertionError(f"README line {line}: shows {want}, computes {value!r}")
        print(f"README line {line}: {value:.4g} (shows {want})", file=sys.stderr)
''')


def test_the_readme_has_python_examples_and_shown_values():
    found = blocks()
    assert len(found) >= 8
    assert sum(bool(_SHOWN.match(line)) for _, code in found for line in code.splitlines()) >= 3


@pytest.mark.slow
def test_every_readme_example_runs_as_printed(tmp_path):
    script = [_PRELUDE]
    for line, code in blocks():
        script.append(f"print('--- README line {line}', file=sys.stderr)\n" + _instrumented(line, code))
    path = tmp_path / "readme_examples.py"
    path.write_text("\n\n".join(script))
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    shown = [line for line in proc.stderr.splitlines() if line.startswith("README line")]
    print("\n".join(shown))
    assert proc.returncode == 0, proc.stderr[-4000:]
