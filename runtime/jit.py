"""numba, for the fast engine only: the scalar rules compiled into loops.

Kernel rules are plain scalar functions marked @jitable (generated/_base.py). The reference
engine calls them as Python; the fast engine's loops are compiled with numba, which needs the
rules registered (numba's register_jitable) before it compiles a caller. `compiled(func)`
does both: it registers every marked function once, then returns func compiled (nopython,
cached on disk, so a second run of the tool loads instead of compiling). This module (and
runtime/jitlist.py, which only compiled loops' callers import) is the only place numba is
imported: commands that never run the fast engine never pay for it.

numba's cache follows the file of the compiled function only: a changed rule in another file
would leave a stale compiled loop behind. So the cache folder is named by a fingerprint of
every source file of the runtime and generated packages (rules and loops live there) and of
the Python and numpy versions: any change selects a fresh folder (under the user's cache
folder, or IBS_MPROF_JIT_CACHE).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from generated._base import JITABLE

F = TypeVar("F", bound=Callable[..., Any])
_registered: set[int] = set()


def cache_folder() -> Path:
    """Where compiled loops are cached: a folder named by the fingerprint of every source file
    of the packages that hold rules and loops, and of the versions that compile them."""
    import numpy

    import generated

    digest = hashlib.sha256(f"{sys.version}|{numpy.__version__}".encode())
    for package in (Path(generated.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package.parent)).encode())
            digest.update(path.read_bytes())
    base = os.environ.get("IBS_MPROF_JIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "ibs-mprof")
    return Path(base) / f"numba-{digest.hexdigest()[:16]}"


def _register_all() -> None:
    folder = os.environ.get("NUMBA_CACHE_DIR") or str(cache_folder())
    os.environ["NUMBA_CACHE_DIR"] = folder  # read when numba is first imported ...
    import numba

    numba.config.CACHE_DIR = folder  # type: ignore[attr-defined]  # ... or if imported
    from numba.extending import register_jitable

    _register_numba_forms()
    for func in JITABLE:
        if id(func) not in _registered:
            # Not inlined at numba's level: LLVM inlines the small rules anyway, and numba's
            # own inlining made the first compile four times slower for no speed.
            register_jitable(func)
            _registered.add(id(func))


NATIVE_FORMS = ("runtime.draws.next_word",)
"""Rules whose compiled form is numba's own code (_register_numba_forms), not @jitable."""


@functools.cache  # (once per process)
def _register_numba_forms() -> None:
    """Rules whose compiled form is numba's own code, not their Python body: a generator's
    next raw word (draws.next_word) is numba's next_uint64 of its bit generator, read as the
    int64 of the same bits."""
    import numpy as np
    from numba.extending import overload
    from numba.np.random.generator_core import next_uint64

    from runtime.draws import next_word

    @overload(next_word)
    def _next_word(rng: Any) -> Any:
        def impl(rng: Any) -> Any:
            return np.int64(next_uint64(rng.bit_generator))  # type: ignore[no-untyped-call]
        return impl


def compiled(func: F) -> F:
    """func as a numba nopython function (compiled at its first call, cached on disk)."""
    _register_all()
    import numba

    jitted: F = numba.njit(cache=_cache_usable(), nogil=True)(func)  # type: ignore[assignment]
    return jitted


def compiled_on_first_call(func: F) -> F:
    """func, compiled at its first call: for loops in modules the reference engine imports
    too, so that importing them never imports numba."""
    jitted: list[F] = []

    def first_call(*args: Any) -> Any:
        if not jitted:
            jitted.append(compiled(func))
        return jitted[0](*args)

    first_call.__doc__ = func.__doc__
    first_call.__name__ = func.__name__
    first_call.py_func = func  # type: ignore[attr-defined]  # (numba's name for it)
    return first_call  # type: ignore[return-value]


def _cache_usable() -> bool:
    """numba caches next to the module or, where that is read-only (a system install), in its
    user cache folder; IBS_MPROF_NO_JIT_CACHE=1 turns caching off (tests of the cache)."""
    return os.environ.get("IBS_MPROF_NO_JIT_CACHE") != "1" and sys.platform != "emscripten"
