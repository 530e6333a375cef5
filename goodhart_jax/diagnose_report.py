"""Writing a :class:`~goodhart_jax.diagnose.Diagnosis` to a folder: figures, ``numbers.json``,
``manifest.json`` and one self-contained ``report.html``.

Everything is rendered in memory first (figures as PNG bytes, the HTML with them embedded as
base64), then written to a temporary folder inside the destination and moved into place file
by file (``os.replace``), so an error before the last step leaves nothing behind and no file is
ever half-written.

Example:
    >>> import tempfile, pathlib, numpy as np, goodhart_jax as gj
    >>> d = gj.diagnose(np.random.default_rng(0).exponential(size=2_000), fits=("exponential",))
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> numbers = write_report(out, d, source="example")
    >>> numbers["proxy"]["tail"], (out / "report.html").exists()
    ('exponential', True)
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["write_report", "FIGURES"]

#: The figure files written (``best_of_n.png`` only with gold).
FIGURES = ("histogram.png", "qq.png", "tail_index.png", "mean_excess.png", "best_of_n.png")


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(a, (int, float)) for a in v):
        return f"[{_fmt(v[0])}, {_fmt(v[1])}]"
    return html.escape(str(v))


def _tail_rows(part: dict) -> str:
    keys = [("tail", "class"), ("how_sure", "how sure"), ("reason", "rule"), ("n", "n"),
            ("k", "k (points above the threshold)"), ("threshold", "threshold"),
            ("xi", "xi (GPD, peaks over threshold)"), ("xi_ci", "xi 95% CI"),
            ("hill", "Hill xi at the double-bootstrap k"), ("hill_ci", "Hill 95% CI"),
            ("hill_k", "double-bootstrap k"), ("moments", "moment estimator of xi"),
            ("moments_ci", "moments 95% CI"), ("c", "Weibull-tail c"), ("c_ci", "c 95% CI")]
    return "".join(f"<tr><td>{label}</td><td>{_fmt(part.get(key))}</td></tr>" for key, label in keys)


def _html(diag, numbers: dict, figures: dict) -> str:
    parts = []
    for name in ("proxy", "value", "error"):
        if numbers.get(name):
            title = {"proxy": "proxy U", "value": "gold value V", "error": "error X = U - V"}[name]
            parts.append(f"<h3>{title}</h3><table>{_tail_rows(numbers[name])}</table>")
    extra = []
    if numbers.get("independence"):
        ind = numbers["independence"]
        extra.append("<h3>independence in the tail</h3><table>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(ind[k])}</td></tr>"
            for k in ("spearman", "spearman_ci", "spearman_if_independent",
                      "spearman_if_independent_range", "p_value", "tail_dependence",
                      "tail_dependence_ci", "tail_dependence_if_independent",
                      "independence_rejected")) + "</table>")
    if numbers.get("regime"):
        r = numbers["regime"]
        extra.append("<h3>predicted regime</h3><table>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(r[k])}</td></tr>"
            for k in ("regime", "limit", "reason", "sure", "note")) + "</table>")
    if numbers.get("best_of_n"):
        b = numbers["best_of_n"]
        rows = [("best n", b.get("n_star")), ("interval", b.get("n_star_interval")),
                ("summary", b.get("n_star_summary"))]
        if b.get("gao_fit"):
            rows += [(f"Gao fit {k}", b["gao_fit"][k]) for k in ("alpha", "beta", "peak_n", "rms")]
        extra.append("<h3>best-of-n</h3><table>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in rows) + "</table>")
    notes = "".join(f"<li>{html.escape(s)}</li>" for s in numbers.get("notes", []))
    imgs = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(data).decode()}" '
        f'alt="{html.escape(name)}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, data in figures.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>goodhart-jax diagnose</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}}
.verdict{{font-size:1.15em;background:#f3f3f3;border-left:5px solid #c33;padding:0.8em}}
table{{border-collapse:collapse;margin:0.5em 0}}td{{border:1px solid #ccc;padding:3px 8px}}
img{{max-width:100%}}</style></head><body>
<h1>Diagnosis of {html.escape(str(numbers.get("source", "")))}</h1>
<p class="verdict" id="verdict">{html.escape(diag.verdict)}</p>
<ul>{notes}</ul>
<h2>numbers</h2>{''.join(parts)}{''.join(extra)}
<p>Rules and references: docs/diagnose.md (Kwa et al. 2024; Gao et al. 2022; Danielsson et al.
2001; Dekkers, Einmahl &amp; de Haan 1989; Girard 2004).</p>
<h2>figures</h2>{imgs}
</body></html>
"""


def write_report(out, diag, *, source: str = "", dropped: int = 0, seed: int = 0) -> dict:
    """Render and write the diagnosis to ``out``; return the numbers (as in ``numbers.json``).

    Math: none (rendering).

    Args:
        out: the destination folder (created if missing).
        diag: a :class:`~goodhart_jax.diagnose.Diagnosis`.
        source: the input's name, recorded in the numbers and the manifest.
        dropped: non-finite rows dropped on reading (recorded).
        seed: the seed used (recorded in the manifest).

    Returns:
        The numbers dict (JSON-ready).
    """
    from goodhart_jax.plots import diagnose as figs
    from goodhart_jax.results import manifest, to_jsonable

    start = time.perf_counter()
    out = Path(out)
    numbers = diag.numbers()
    numbers["source"] = source
    numbers["dropped_nonfinite_rows"] = dropped
    figures = {
        "histogram.png": _png(figs.histogram_figure(diag.proxy)),
        "qq.png": _png(figs.qq_figure(diag.proxy)),
        "tail_index.png": _png(figs.tail_index_figure(diag.proxy)),
        "mean_excess.png": _png(figs.mean_excess_figure(diag.proxy)),
    }
    if diag.best_of_n is not None:
        figures["best_of_n.png"] = _png(figs.best_of_n_figure(diag.best_of_n, diag.curves))
    files = {name: data for name, data in figures.items()}
    files["numbers.json"] = (json.dumps(numbers, indent=2) + "\n").encode()
    files["report.html"] = _html(diag, numbers, figures).encode()
    man = manifest(name="diagnose", params={"file": source, "dropped_nonfinite_rows": dropped},
                   seed=seed, wall_time_s=time.perf_counter() - start, quick=False)
    man["files"] = sorted(list(files) + ["manifest.json"])
    files["manifest.json"] = (json.dumps(to_jsonable(man), indent=2) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".diagnose-", dir=out))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        for name in files:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return numbers
