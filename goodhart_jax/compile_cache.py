"""JAX's persistent compilation cache, and programs found without tracing, in the user's cache
directory.

A fresh process that runs what an earlier one compiled (the second ``goodhart-jax condition``,
a rerun of an experiment, the first call of a script) loads the compiled programs from disk
instead of compiling them again: seconds saved per family pair.  JAX keys that cache on the
*traced* program, so a hit still traces and lowers it (most of a warm start's cost for the
quadratures); :func:`persistent_jit` also keeps the compiled program (a serialised executable)
under a key computed without tracing, so that a fresh process neither traces nor compiles what
an earlier one did.

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

import hashlib
import os
import pickle
import zlib
from pathlib import Path

import jax
import numpy as np

from goodhart_jax import results

__all__ = ["cache_dir", "enable", "persistent_jit", "traces_dir"]

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


# ---------------------------------------------------------------------------------------------
# Compiled programs on disk, found without tracing.

# Bump when the file layout or the key changes (3: programs named by their key, and none kept
# from JAX's cache, see _compile; files of format 2 may hold such programs).
_FORMAT = 3
_PACKAGE = Path(__file__).resolve().parent
_SOURCE_HASH: list[str] = []


def traces_dir() -> Path | None:
    """Where :func:`persistent_jit` keeps its programs (``None``: off).

    ``<cache_dir()>/traces`` while JAX's persistent compilation cache is on (``GOODHART_JAX_CACHE=0``
    or ``jax_enable_compilation_cache=False`` turn both off; ``GOODHART_JAX_TRACE_CACHE=0`` this
    one alone).
    """
    if os.environ.get("GOODHART_JAX_TRACE_CACHE", "1").strip().lower() in _OFF:
        return None
    base = cache_dir()
    if (base is None or not jax.config.jax_compilation_cache_dir
            or not jax.config.jax_enable_compilation_cache):
        return None
    return base / "traces"


def _source_hash() -> str:
    """SHA-256 of the package's Python sources (a program is only valid for the code that traced
    it); computed once per process."""
    if not _SOURCE_HASH:
        h = hashlib.sha256()
        for path in sorted(_PACKAGE.rglob("*.py")):
            h.update(str(path.relative_to(_PACKAGE)).encode())
            h.update(path.read_bytes())
        _SOURCE_HASH.append(h.hexdigest())
    return _SOURCE_HASH[0]


def _ours(obj) -> bool:
    """Whether ``obj`` (a class or function) is defined at module level in this package (so its
    behaviour is covered by :func:`_source_hash`)."""
    module = getattr(obj, "__module__", "") or ""
    return ((module == "goodhart_jax" or module.startswith("goodhart_jax."))
            and "<" not in getattr(obj, "__qualname__", "<"))


_BUILTIN_NODES = (tuple, list, dict, type(None))


def _treedef_key(treedef) -> tuple | None:
    """A description of ``treedef`` that is the same in every process (``None``: a node type that
    is not this package's or a builtin container, e.g. a family the user wrote)."""
    data = treedef.node_data()
    if data is None:
        return ("*",)
    kind, aux = data
    if kind in _BUILTIN_NODES:
        name = kind.__name__
    elif _ours(kind):
        name = f"{kind.__module__}.{kind.__qualname__}"
    else:
        return None
    try:
        aux_key = hashlib.sha256(pickle.dumps(aux, protocol=4)).hexdigest()
    except Exception:  # noqa: BLE001  (unpicklable auxiliary data: not kept)
        return None
    children = []
    for child in treedef.children():
        k = _treedef_key(child)
        if k is None:
            return None
        children.append(k)
    return (name, aux_key, tuple(children))


def _static_key(obj) -> str | None:
    if callable(obj):
        return f"{obj.__module__}.{obj.__qualname__}" if _ours(obj) else None
    if isinstance(obj, (int, float, str, bool, type(None))):
        return repr(obj)
    if isinstance(obj, tuple):
        parts = [_static_key(o) for o in obj]
        return None if any(p is None for p in parts) else "(" + ",".join(parts) + ")"
    return None


def _leaf_signature(leaf):
    """``(shape, dtype, weak)`` of a concrete leaf, or ``None`` (a tracer, an array on several
    devices, an unknown type): such calls take the plain ``jax.jit`` path."""
    kind = type(leaf)
    if kind is float:
        return ((), "f", True)
    if kind is int:
        return ((), "i", True)
    if kind is bool:
        return ((), "b", True)
    if isinstance(leaf, (np.ndarray, np.generic)):
        return (leaf.shape, leaf.dtype.str, False)
    if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer):
        if len(leaf.sharding.device_set) != 1:
            return None
        return (leaf.shape, leaf.dtype.str, bool(getattr(leaf, "weak_type", False)))
    return None


class _Loaded:
    """A compiled program (deserialised, or compiled in this process) and its output structure;
    ``path``: the file it was read from, until its first call has run (``None`` after that, or
    when it was compiled here)."""

    __slots__ = ("call", "out_tree", "path")

    def __init__(self, compiled, out_tree, path=None):
        self.call = compiled
        self.out_tree = out_tree
        self.path = path


# JAX's persistent-cache hits, counted (see _compile).
_JAX_CACHE_HITS = [0]


def _count_cache_hits(event: str, **kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _JAX_CACHE_HITS[0] += 1


jax.monitoring.register_event_listener(_count_cache_hits)


class persistent_jit:  # noqa: N801  (used like jax.jit)
    """``jax.jit(fun, static_argnums=...)`` whose compiled programs outlive the process, found
    without tracing.

    A call with concrete arguments (the eager public call) looks its program up by the function,
    its static arguments, the structure and the shapes and dtypes of the others, the package's
    source, JAX's version, the backend, its devices and ``jax_enable_x64``: in memory, then on
    disk (:func:`traces_dir`); on a miss it traces and compiles (``jit(...).lower(...).compile()``,
    through JAX's persistent compilation cache), writes the serialised executable (atomically)
    and runs it.  So a fresh process that calls what an earlier one did neither traces, lowers
    nor compiles.  Compiled once per key, as ``jax.jit``.

    Everything else takes the plain ``jax.jit`` path, unchanged: traced arguments (under the
    user's ``jit``, ``grad`` or ``vmap``), arrays spread over several devices, structures that
    hold a node type from outside this package (a family the user wrote: its code is not in the
    key), and programs that cannot be serialised.

    Args:
        fun: the function (module level, this package).
        static_argnums: as for ``jax.jit``.

    Example:
        >>> import jax.numpy as jnp
        >>> from goodhart_jax.compile_cache import persistent_jit
        >>> double = persistent_jit(jnp.multiply)
        >>> float(double(2.0, 3.0))
        6.0
    """

    def __init__(self, fun, static_argnums=()):
        self._fun = fun
        self._static = (static_argnums,) if isinstance(static_argnums, int) else tuple(
            static_argnums)
        self._jitted = jax.jit(fun, static_argnums=self._static)
        self._memory: dict = {}
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__
        self.__name__ = getattr(fun, "__name__", "persistent_jit")

    def __call__(self, *args):
        static = tuple(args[i] for i in self._static)
        dynamic = [a for i, a in enumerate(args) if i not in self._static]
        leaves, treedef = jax.tree_util.tree_flatten(dynamic)
        signature = []
        for leaf in leaves:
            sig = _leaf_signature(leaf)
            if sig is None:
                return self._jitted(*args)
            signature.append(sig)
        key = (static, treedef, tuple(signature), jax.config.jax_enable_x64)
        try:
            loaded = self._memory.get(key)
        except TypeError:  # an unhashable static argument: jax.jit says so
            return self._jitted(*args)
        if loaded is None:
            loaded = self._load(static, treedef, leaves, signature)
            if len(self._memory) > 512:
                self._memory.clear()
            self._memory[key] = loaded
        if loaded is False:
            return self._jitted(*args)
        try:
            out = loaded.call(*leaves)
            if loaded.path is not None:
                # a program read from a file runs to the end once before it is trusted: one
                # that cannot (a file from a broken writer) is removed, and the call traced
                jax.block_until_ready(out)
                loaded.path = None
        except (TypeError, ValueError):  # e.g. an array committed to another device
            return self._jitted(*args)
        except jax.errors.JaxRuntimeError:
            if loaded.path is None:
                raise
            loaded.path.unlink(missing_ok=True)
            self._memory[key] = False
            return self._jitted(*args)
        return jax.tree_util.tree_unflatten(loaded.out_tree, out)

    def _merge(self, static, dynamic):
        args, s, d = [], iter(static), iter(dynamic)
        for i in range(len(static) + len(dynamic)):
            args.append(next(s) if i in self._static else next(d))
        return args

    def _file(self, static, treedef, signature) -> Path | None:
        folder = traces_dir()
        tree_key = _treedef_key(treedef)
        static_key = [_static_key(s) for s in static]
        fun_key = _static_key(self._fun)
        if folder is None or tree_key is None or fun_key is None or None in static_key:
            return None
        import platform

        import jaxlib

        devices = jax.devices()
        key = repr((_FORMAT, jax.__version__, jaxlib.__version__, np.__version__, _source_hash(),
                    jax.default_backend(), devices[0].client.platform_version, len(devices),
                    devices[0].device_kind, platform.machine(), os.environ.get("XLA_FLAGS", ""),
                    bool(jax.config.jax_enable_x64), fun_key, static_key, tree_key,
                    tuple((tuple(s), d, w) for s, d, w in signature)))
        return folder / (hashlib.sha256(key.encode()).hexdigest()[:40] + ".trace")

    def _load(self, static, treedef, leaves, signature):
        from jax.experimental import serialize_executable

        path = self._file(static, treedef, signature)
        if path is not None and path.is_file():
            try:
                blob, in_tree, flat_out_tree, out_tree = pickle.loads(
                    zlib.decompress(path.read_bytes()))
                compiled = serialize_executable.deserialize_and_load(blob, in_tree, flat_out_tree)
                return _Loaded(compiled, out_tree, path)
            except Exception:  # noqa: BLE001  (a damaged or foreign file: compile again)
                pass
        hits = _JAX_CACHE_HITS[0]
        try:
            compiled, out_tree = self._compile(static, treedef, leaves, signature,
                                               None if path is None else path.stem)
        except Exception:  # noqa: BLE001  (not compilable this way: the plain jax.jit path)
            return False
        # An executable that JAX read from its own cache serialises into a file that loads but
        # cannot run (jaxlib 0.10.2, CPU: "Function ... not found" in the next process): only
        # programs compiled here are written.  (Programs are named by their key, so JAX's cache
        # holds one of ours only if its file was lost.)
        if path is not None and _JAX_CACHE_HITS[0] == hits:
            try:
                blob, in_tree, flat_out_tree = serialize_executable.serialize(compiled)
                results.atomic_write_bytes(path, zlib.compress(pickle.dumps(
                    (blob, in_tree, flat_out_tree, out_tree), protocol=4), 1))
            except Exception:  # noqa: BLE001  (not serialisable, full disk: run without keeping)
                pass
        return _Loaded(compiled, out_tree)

    def _compile(self, static, treedef, leaves, signature, name=None):
        out_tree = []

        def flat(*flat_leaves):
            dynamic = jax.tree_util.tree_unflatten(treedef, flat_leaves)
            out = self._fun(*self._merge(static, dynamic))
            out_leaves, tree = jax.tree_util.tree_flatten(out)
            out_tree.append(tree)
            return tuple(out_leaves)

        # the program's name (and so JAX's cache key) carries the file's key: a new source,
        # version or flag setting never finds an entry in JAX's cache that an earlier one made
        flat.__name__ = flat.__qualname__ = f"{self.__name__}_{name}" if name else self.__name__

        specs = [jax.ShapeDtypeStruct(np.shape(x), jax.numpy.result_type(x), weak_type=sig[2])
                 for x, sig in zip(leaves, signature)]
        compiled = jax.jit(flat).lower(*specs).compile()
        return compiled, out_tree[0]
