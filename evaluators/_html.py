"""The report as one self-contained HTML page: every suite's leaderboard with the metrics
explained, chance levels, paired comparisons, the failure-mode catalog, failures, and every
figure embedded. No script, no external file: the page opens anywhere and prints as it shows."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from planted import __version__
from planted.evaluators._metrics import metric_info
from planted.evaluators.tasks import TASKS

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { margin-top: 1.4em; } table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; } td.best { font-weight: 700; }
td.chance { color: #888; } .note { color: #555; font-size: 12px; } .fail { color: #a00; }
dl.glossary dt { font-weight: 600; float: left; clear: left; width: 14em; } dl.glossary dd { margin-left: 14.5em; }
.figures { display: flex; flex-wrap: wrap; gap: 14px; } figure { margin: 0; max-width: 100%; }
figure img { max-width: 560px; max-height: 520px; border: 1px solid #eee; } figcaption { font-size: 12px; color: #555; }
nav a { margin-right: 1em; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _anchor(suite: str, version: str) -> str:
    return "s-" + "".join(c if c.isalnum() else "-" for c in f"{suite}-{version}")


def html_page(results: Sequence, figures: Sequence[Path], *, store_name: str = "") -> str:
    """The page's HTML for ``results`` (every suite version in them) and the figure files."""
    from planted.evaluators.report import _groups, _notes, _rows, catalog, paired, variance

    groups = _groups(results)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>planted report</title>"
             f"<style>{_STYLE}</style></head><body>",
             "<h1>planted report</h1>",
             f"<p class='note'>planted {_e(__version__)}; {len(results)} cells"
             + (f" from {_e(store_name)}" if store_name else "") + ". Every number below is read from the results "
             "store: the report builds and trains nothing.</p>",
             "<nav>" + "".join(f"<a href='#{_anchor(g.suite, g.version)}'>{_e(g.suite)}</a>" for g in groups) + "</nav>"]
    used_figures: set[Path] = set()
    for g in groups:
        names, rows = _rows(g.cells, None)
        tasks = sorted({r.task for r in g.cells})
        seeds = sorted({r.seed for r in g.cells})
        parts.append(f"<h2 id='{_anchor(g.suite, g.version)}'>suite {_e(g.suite)} <small>v{_e(g.version)}</small></h2>")
        for t in tasks:
            if t in TASKS:
                parts.append(f"<p><b>{_e(t)}</b>: {_e(TASKS[t].description)}.</p>")
        parts.append("<dl class='glossary'>" + "".join(
            f"<dt>{_e(m)} {metric_info(m).arrow}</dt><dd>{_e(metric_info(m).meaning[0].upper() + metric_info(m).meaning[1:])}."
            + (" Higher is better." if metric_info(m).higher else " Lower is better." if metric_info(m).higher is False else "")
            + "</dd>" for m in names) + "</dl>")
        headline = TASKS[tasks[0]].headline if len(tasks) == 1 and tasks[0] in TASKS else names[0]
        parts.append(_leaderboard_table(g, names, rows, headline))
        parts.append("".join(f"<p class='note'>{_e(n[0].upper() + n[1:])}.</p>" for n in _notes(g, len(seeds))))
        parts.append(_paired_table(g, rows, headline, paired))
        parts.append(_variance_table(variance(g.cells, headline), headline))
        if any(TASKS[t].catalog for t in tasks if t in TASKS):
            try:
                parts.append("<h3>Failure-mode catalog (edge AUROC)</h3>" + _markdown_table(catalog(g.cells)))
            except ValueError:
                pass
        failed = [r for r in g.cells if r.status != "ok"]
        if failed:
            parts.append("<h3>Failed cells</h3><ul>" + "".join(
                f"<li class='fail'>{_e(r.toy)} · {_e(r.method)} · seed {r.seed}: {_e(r.error)}</li>" for r in failed)
                + "</ul><p class='note'>`planted bench --retry-failed` runs them again; `--debug` prints their "
                "tracebacks.</p>")
        mine = [f for f in figures if _belongs(f, g.suite) and f not in used_figures]
        used_figures.update(mine)
        parts.append(_figures(mine))
    rest = [f for f in figures if f not in used_figures]
    if rest:
        parts.append("<h2>Other figures</h2>" + _figures(rest))
    parts.append("</body></html>")
    return "\n".join(parts)


def _belongs(path: Path, suite: str) -> bool:
    stem = path.stem
    return f"-{suite}-" in f"-{stem}-" or stem.startswith(f"{suite}-")


def _leaderboard_table(group, names, rows, headline: str) -> str:
    best: dict[str, float] = {}
    info = metric_info(headline)
    for (toy, _), _, sm in rows:
        s = sm.get(headline)
        if s is not None:
            better = (lambda a, b: a > b) if info.higher is not False else (lambda a, b: a < b)
            if toy not in best or better(s.mean, best[toy]):
                best[toy] = s.mean
    chance = metric_info(headline).chance
    head = ("<tr><th class='name'>toy</th><th class='name'>method</th><th>seeds</th>"
            + "".join(f"<th>{_e(m)} {metric_info(m).arrow}</th>" for m in names)
            + (f"<th>chance {_e(headline)}</th>" if chance else "") + "</tr>")
    body = []
    for (toy, method), (ok, total), sm in rows:
        cells = []
        for m in names:
            s = sm.get(m)
            if s is None:
                cells.append("<td>–</td>")
                continue
            cls = " class='best'" if m == headline and best.get(toy) == s.mean else ""
            cells.append(f"<td{cls}>{s.mean:.3f} ± {(s.high - s.low) / 2:.3f}</td>")
        chance_cell = ""
        if chance:
            value = chance([c for c in group.cells if c.toy == toy and c.method == method])
            chance_cell = f"<td class='chance'>{value:.3f}</td>" if value is not None else "<td class='chance'>–</td>"
        star = "*" if method in group.extra_methods else ""
        fail = "" if ok == total else " class='fail'"
        body.append(f"<tr><td class='name'>{_e(toy)}</td><td class='name'>{_e(method)}{star}</td>"
                    f"<td{fail}>{ok}/{total}</td>{''.join(cells)}{chance_cell}</tr>")
    return f"<table class='leaderboard'>{head}{''.join(body)}</table>"


def _paired_table(group, rows, headline: str, paired) -> str:
    """Per toy, the method leading on the headline metric against each other method."""
    info = metric_info(headline)
    leaders: dict[str, str] = {}
    for (toy, method), _, sm in rows:  # rows are sorted best first within a toy
        if toy not in leaders and sm.get(headline) is not None:
            leaders[toy] = method
    lines = []
    for toy, leader in sorted(leaders.items()):
        for (t, method), _, sm in rows:
            if t != toy or method == leader or sm.get(headline) is None:
                continue
            for p in paired([c for c in group.cells if c.toy == toy], headline, leader, method):
                pv = "n < 5" if p.p_value is None and p.n < 5 else ("–" if p.p_value is None else f"{p.p_value:.3g}")
                lines.append(f"<tr><td class='name'>{_e(toy)}</td><td class='name'>{_e(leader)} − {_e(method)}</td>"
                             f"<td>{p.n}</td><td>{p.mean:+.3f}</td><td>[{p.low:+.3f}, {p.high:+.3f}]</td><td>{pv}</td></tr>")
    if not lines:
        return ""
    direction = "higher" if info.higher is not False else "lower"
    return (f"<h3>Paired comparisons on {_e(headline)}</h3><p class='note'>Per toy, the leader against each other "
            f"method on the same seeds ({direction} is better): the mean difference, its 95% paired-bootstrap "
            "interval, and the Wilcoxon signed-rank p-value (from 5 seeds).</p>"
            "<table><tr><th class='name'>toy</th><th class='name'>leader − method</th><th>seeds</th><th>mean</th>"
            f"<th>95% interval</th><th>p</th></tr>{''.join(lines)}</table>")


def _variance_table(entries, headline: str) -> str:
    if not entries:
        return ""
    lines = "".join(f"<tr><td class='name'>{_e(v.toy)}</td><td class='name'>{_e(v.method)}</td><td>{v.toy_seeds} × "
                    f"{v.method_seeds}</td><td>{v.data:.3f}</td><td>{v.method_sd:.3f}</td></tr>" for v in entries)
    return (f"<h3>Where the variance of {_e(headline)} comes from</h3><p class='note'>Standard deviation across toy "
            "seeds of their means (data: toys drawn anew) and within a toy seed across method seeds (the method's own "
            "randomness).</p><table><tr><th class='name'>toy</th><th class='name'>method</th><th>toy × method seeds"
            f"</th><th>data SD</th><th>method SD</th></tr>{lines}</table>")


def _markdown_table(text: str) -> str:
    """A Markdown table (``report.catalog``) as HTML; the lines after it as a note."""
    lines = [line for line in text.splitlines() if line.strip()]
    table = [line for line in lines if line.startswith("|")]
    notes = [line for line in lines if not line.startswith("|")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    out = "<table><tr>" + "".join(f"<th{' class=name' if i == 0 else ''}>{_e(c)}</th>" for i, c in enumerate(head)) + "</tr>"
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out += "<tr>" + "".join(f"<td{' class=name' if i == 0 else ''}>{_e(c)}</td>" for i, c in enumerate(cells)) + "</tr>"
    return out + "</table>" + "".join(f"<p class='note'>{_e(n)}</p>" for n in notes)


def _figures(paths: Sequence[Path]) -> str:
    images = [p for p in paths if p.suffix == ".png" and p.is_file()]
    if not images:
        return ""
    out = []
    for p in sorted(images):
        data = base64.b64encode(p.read_bytes()).decode()
        out.append(f"<figure><img alt='{_e(p.stem)}' src='data:image/png;base64,{data}'>"
                   f"<figcaption>{_e(p.name)} (also .svg, .pdf)</figcaption></figure>")
    return "<div class='figures'>" + "".join(out) + "</div>"


__all__ = ["html_page"]
