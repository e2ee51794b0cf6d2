"""joblib dumps: numpy arrays are written raw *between* pickle opcodes.

``joblib.load`` unpickles a ``NumpyArrayWrapper`` and, at its BUILD, reads the array bytes
straight from the file (after an optional alignment pad), or, for object arrays, runs a nested
``pickle.load``.  To walk past the raw bytes without executing anything we compute the array size
from the wrapper's symbolic state (shape, ``numpy.dtype(...)`` call and its BUILD state).  A
wrapper whose size cannot be established is malformed (fail closed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from .pickle_vm import Global, Machine, Map, Obj, PickleError

WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_TYPESTR = re.compile(r"[A-Za-z?]+(\d+)")


def is_wrapper(obj: Obj) -> bool:
    return isinstance(obj.func, Global) and obj.func.dotted == WRAPPER


def dtype_info(dtype: object) -> tuple[int, bool] | None:
    """``(itemsize, has_object)`` of a symbolic ``numpy.dtype(...)`` value, if determinable."""
    if not (isinstance(dtype, Obj) and isinstance(dtype.func, Global)):
        return None
    if dtype.func.dotted != "numpy.dtype" or not isinstance(dtype.args, tuple) or not dtype.args:
        return None
    typestr = dtype.args[0]
    if not isinstance(typestr, str):
        return None
    state = dtype.state
    elsize = flags = None
    if isinstance(state, tuple) and len(state) >= 8:
        elsize, flags = state[5], state[7]
    elif state is not None or typestr[:1] in ("V", "O"):
        return None  # structured/object dtypes always carry a full state
    if typestr.startswith("O"):
        has_object = True
    elif flags is None:
        has_object = False
    elif isinstance(flags, int):
        has_object = bool(flags & 1)  # NPY_ITEM_HASOBJECT
    else:
        return None
    if isinstance(elsize, int) and not isinstance(elsize, bool) and elsize > 0:
        return elsize, has_object
    m = _TYPESTR.fullmatch(typestr)
    return (int(m.group(1)), has_object) if m else None


def read_array(obj: Obj, vm: Machine, nested: Callable[[], object]) -> None:
    """Consume the array data that follows the BUILD of a ``NumpyArrayWrapper``."""
    state = obj.state
    if not isinstance(state, Map) or not state.complete:
        raise vm.fail("joblib array wrapper without a readable state")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise vm.fail("joblib array wrapper with an unreadable shape")
    info = dtype_info(state.get("dtype"))
    if info is None:
        raise vm.fail("joblib array wrapper with an unreadable dtype")
    r = vm.r
    if vm.frame_end is not None:
        if r.pos != vm.frame_end:
            raise vm.fail("joblib array data inside a pickle frame")
        vm.frame_end = None
    itemsize, has_object = info
    if has_object:
        nested()  # joblib pickles object arrays as a nested pickle stream
        return
    if state.get("numpy_array_alignment_bytes") is not None:
        r.skip(r.exact(1)[0])
    try:
        r.skip(math.prod(shape) * itemsize)
    except OverflowError:
        raise PickleError("joblib array larger than any file", r.pos) from None
