"""Reading scored samples for ``goodhart-jax diagnose``: CSV, NPY/NPZ and JSON lines.

Only the standard library (``csv``, ``json``) and NumPy.  Columns are picked by name (CSV header,
JSON-lines keys, NPZ array names, the fields of a structured NPY array) or, for a 2-D NPY array,
by index.  A plain 1-D NPY array is the proxy.  A ``.npy`` file is opened as a memory map and a
float64 column of it is not copied (bounded memory for ``1e7`` scores).

Non-finite rows (NaN, infinities) in the columns used are refused with the first bad row and
the count, unless ``drop_nonfinite`` is set; every error is a ``ValueError`` naming the file,
the column or the option.

Example:
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "s.csv")
    >>> _ = open(p, "w").write("proxy,gold\\n1.5,1\\n2,0.5\\n")
    >>> cols = read_scores(p, proxy="proxy", gold="gold")
    >>> cols.proxy.tolist(), cols.gold.tolist(), cols.dropped
    ([1.5, 2.0], [1.0, 0.5], 0)
"""

from __future__ import annotations

import csv
import json
import os
from typing import NamedTuple

import numpy as np

__all__ = ["Scores", "read_scores"]


class Scores(NamedTuple):
    """The columns read from a file.

    Attributes:
        proxy: the proxy scores (float64, 1-D).
        gold: the gold scores, or ``None``.
        groups: the group labels, or ``None``.
        dropped: the number of non-finite rows dropped (``drop_nonfinite``).
    """

    proxy: np.ndarray
    gold: np.ndarray | None
    groups: np.ndarray | None
    dropped: int


def _where(path) -> str:
    return f"file {str(path)!r}"


def _pick(names: list[str], wanted: str | None, default: str | None, what: str, path) -> str | None:
    if wanted is not None:
        if wanted not in names:
            raise ValueError(f"--{what}: no column {wanted!r} in {_where(path)}; columns: "
                             f"{', '.join(map(repr, names)) or 'none'}")
        return wanted
    return default


def _numeric(values, column: str, path) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{_where(path)}: column {column!r}, row {i + 1} is not a number "
                             f"({v!r})") from None
    return out


def _read_table(path) -> tuple[list[str], dict]:
    """CSV (header) or JSON lines: names and columns as lists of raw values."""
    lower = str(path).lower()
    try:
        fh = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise ValueError(f"{_where(path)} cannot be read ({exc.strerror})") from None
    with fh:
        if lower.endswith((".jsonl", ".ndjson", ".json")):
            names: list[str] = []
            cols: dict = {}
            rows = 0
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{_where(path)}: line {line_no} is not JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise ValueError(f"{_where(path)}: line {line_no} is not a JSON object")
                for key in obj:
                    if key not in cols:
                        names.append(key)
                        cols[key] = [None] * rows
                for key in names:
                    cols[key].append(obj.get(key))
                rows += 1
            if rows == 0:
                raise ValueError(f"{_where(path)} is empty (no JSON lines)")
            return names, cols
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or all(not h.strip() for h in header):
            raise ValueError(f"{_where(path)} is empty (expected a header line and rows)")
        names = [h.strip() for h in header]
        cols = {h: [] for h in names}
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            for h, c in zip(names, row + [""] * (len(names) - len(row))):
                cols[h].append(c.strip())
        if not cols[names[0]]:
            raise ValueError(f"{_where(path)} has a header but no rows")
        return names, cols


def read_scores(path, *, proxy: str | None = None, gold: str | None = None,
                group: str | None = None, drop_nonfinite: bool = False) -> Scores:
    """Read the proxy (and optional gold and group) columns of a scores file.

    Math: none (reading).  Defaults: the proxy column is ``proxy`` where there is one, else the
    first column (a 1-D ``.npy`` array is the proxy); the gold column is ``gold`` where there is
    one; groups only with ``group``.  For a 2-D ``.npy`` array, columns are indices (``"0"``).

    Args:
        path: a ``.csv`` (header line), ``.npy``, ``.npz`` or ``.jsonl`` file.
        proxy, gold, group: column names (``--proxy``, ``--gold``, ``--group``).
        drop_nonfinite: drop rows with NaN or infinite proxy or gold instead of refusing them.

    Returns:
        :class:`Scores`.

    Raises:
        ValueError: a missing or unreadable file, an empty one, a missing or non-numeric
            column, non-finite rows (first row and count) without ``drop_nonfinite``.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{_where(path)} does not exist or is not a file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{_where(path)} is empty")
    lower = str(path).lower()
    groups = None
    if lower.endswith(".npy"):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{_where(path)} is not a readable .npy array ({exc})") from None
        if arr.dtype.names:
            names = list(arr.dtype.names)
            get = lambda c: arr[c]  # noqa: E731
        elif arr.ndim == 1:
            names = ["0"]
            get = lambda c: arr  # noqa: E731
        elif arr.ndim == 2:
            names = [str(i) for i in range(arr.shape[1])]
            get = lambda c: arr[:, int(c)]  # noqa: E731
        else:
            raise ValueError(f"{_where(path)} must hold a 1-D or 2-D array, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{_where(path)} is empty (an array of shape {arr.shape})")
        p_name = _pick(names, proxy, "proxy" if "proxy" in names else names[0], "proxy", path)
        g_name = _pick(names, gold, "gold" if "gold" in names else None, "gold", path)
        r_name = _pick(names, group, None, "group", path)

        def column(c):
            a = get(c)
            if a.dtype.kind not in "fiu":
                raise ValueError(f"{_where(path)}: column {c!r} is not numeric (dtype {a.dtype})")
            return np.asarray(a, dtype=np.float64)

        p = column(p_name)
        g = None if g_name is None else column(g_name)
        if r_name is not None:
            groups = np.asarray(get(r_name))
    elif lower.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{_where(path)} is not a readable .npz archive ({exc})") from None
        names = list(data)
        if not names:
            raise ValueError(f"{_where(path)} is empty (no arrays)")
        p_name = _pick(names, proxy, "proxy" if "proxy" in names else names[0], "proxy", path)
        g_name = _pick(names, gold, "gold" if "gold" in names else None, "gold", path)
        r_name = _pick(names, group, None, "group", path)

        def column(c):
            a = data[c]
            if a.dtype.kind not in "fiu":
                raise ValueError(f"{_where(path)}: array {c!r} is not numeric (dtype {a.dtype})")
            if a.ndim != 1 or a.size == 0:
                raise ValueError(f"{_where(path)}: array {c!r} must be 1-D and non-empty, got "
                                 f"shape {a.shape}")
            return a.astype(np.float64, copy=False)

        p = column(p_name)
        g = None if g_name is None else column(g_name)
        if r_name is not None:
            groups = np.asarray(data[r_name])
    else:
        names, cols = _read_table(path)
        p_name = _pick(names, proxy, "proxy" if "proxy" in names else names[0], "proxy", path)
        g_name = _pick(names, gold, "gold" if "gold" in names else None, "gold", path)
        r_name = _pick(names, group, None, "group", path)
        p = _numeric(cols[p_name], p_name, path)
        g = None if g_name is None else _numeric(cols[g_name], g_name, path)
        if r_name is not None:
            groups = np.asarray([str(v) for v in cols[r_name]])
    if g is not None and g.shape[0] != p.shape[0]:
        raise ValueError(f"--gold: column {g_name!r} has {g.shape[0]} rows, the proxy "
                         f"{p.shape[0]}")
    bad = ~np.isfinite(p)
    if g is not None:
        bad |= ~np.isfinite(g)
    count = int(bad.sum())
    if count:
        if not drop_nonfinite:
            first = int(np.argmax(bad))
            raise ValueError(f"{_where(path)}: {count} row(s) hold NaN or infinite scores; the "
                             f"first is row {first + 1} (pass --drop-nonfinite to drop them)")
        keep = ~bad
        p = p[keep]
        g = None if g is None else g[keep]
        groups = None if groups is None else groups[keep]
    return Scores(p, g, groups, count)
