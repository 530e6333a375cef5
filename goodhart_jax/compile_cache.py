"""JAX's persistent compilation cache, in the user's cache directory.

A fresh process that runs what an earlier one compiled (the second ``goodhart-jax condition``,
a rerun of an experiment, the first call of a script) loads the compiled programs from disk
instead of compiling them again: seconds saved per family pair.

Where: ``$GOODHART_JAX_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/goodhart_jax/jax`` (default
``~/.cache/goodhart_jax/jax``).  ``GOODHART_JAX_CACHE=0`` turns it off.  A cache directory the
user already gave JAX (``jax_compilation_cache_dir``) is left as it is.  It is enabled when
``goodhart_jax`` is imported; an unwritable directory leaves the cache off (never an error).

Example:
    >>> from goodhart_jax import compile_cache
    >>> import os
    >>> os.environ.get("GOODHART_JAX_CACHE") == "0" or compile_cache.cache_dir() is not None
    True
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["cache_dir", "enable"]

_OFF = ("0", "false", "no", "off")
# Programs that compile faster than this are not written (an eager op's kernel: loading it
# would cost about what compiling it does).
MIN_COMPILE_SECONDS = 0.3


def cache_dir() -> Path | None:
    """The cache directory the environment asks for (``None``: turned off)."""
    if os.environ.get("GOODHART_JAX_CACHE", "1").strip().lower() in _OFF:
        return None
    given = os.environ.get("GOODHART_JAX_CACHE_DIR", "").strip()
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "goodhart_jax" / "jax"


def enable() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir`; returns the directory in
    use (``None`` when off or not writable)."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            return None
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
