"""
The allow-listed unpickler: builds a model file's pickled entries without running code from the file.

A pickle is a small program: it names globals (``find_class``), calls them (``REDUCE``, ``NEWOBJ``, ``INST``) and sets
state on what they returned (``BUILD``). This unpickler

- resolves only the globals of :data:`ALLOWED_GLOBALS`, plus classes of the package, SB3 and torch that subclass a
  policy, feature-extractor, buffer, module or optimizer base, and those only as references: calling them (building
  a torch module from a file) is refused;
- charges everything it builds to a budget of ``SB3_SACAE_MAX_PICKLE_ELEMENTS`` elements: every opcode, and, before
  the call, what an allowed callable would allocate (``bytearray(10**12)``, an array shape, a space shape,
  ``set(range(...))``, the copies of a vectorized action noise), so a 56-byte pickle cannot ask for a terabyte;
- sets state only on instances the file built: ``BUILD`` on a class, function, other global, enum member or shared
  numpy dtype is refused (it would change them for the whole process, and the change would outlive a refused
  file), and so are dunder attribute names;
- builds only plain numpy dtypes (``<f4``, ``|u1``, ...): structured and subarray dtypes, and dtype states that
  change a copy's item size, alignment or flags, are refused (numpy's ``dtype.__setstate__`` does not check field
  offsets against the item size, so such a dtype would make an array read outside its memory).

It runs on the pure-Python :class:`pickle._Unpickler`, whose opcode table can be overridden; the entries it reads are
small (spaces, schedules, episode statistics), the weights are torch files read with ``weights_only=True``.
"""

import enum
import io
import math
import pickle
import struct
import sys
import types
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import torch as th
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_sacae.io.errors import CorruptFileError, UnsafeFileError
from sb3_sacae.io.limits import MAX_METADATA_BYTES, MAX_PICKLE_ELEMENTS

TRUST_HINT = (
    "Loading a model or buffer file can run arbitrary code; if you trust this file, "
    "pass trust_remote_code=True to restore Stable-Baselines3's (cloudpickle) loading"
)

_NUMPY_CORE = {"_reconstruct", "scalar", "_frombuffer"}
# Scalar types such as numpy.float32 (e.g. the dtype argument of SB3's action noise)
_NUMPY_SCALAR_TYPES = {t.__name__ for t in set(np.sctypeDict.values()) if vars(np).get(t.__name__) is t} - {"object_"}
_BIT_GENERATORS = {
    "numpy.random._pcg64": {"PCG64", "PCG64DXSM"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._philox": {"Philox"},
    "numpy.random._sfc64": {"SFC64"},
}

# (module, name) pairs a genuine model file may reference. Every entry is harmless to call with any arguments once
# the call's size is charged (see _call_cost): nothing here may import, open, eval or look up other names.
ALLOWED_GLOBALS: dict[str, set[str]] = {
    "builtins": {"slice", "set", "frozenset", "complex", "range", "bytearray"},
    "collections": {"deque", "OrderedDict"},
    "numpy": {"dtype", "ndarray"} | _NUMPY_SCALAR_TYPES,
    "numpy._core.multiarray": _NUMPY_CORE,
    "numpy.core.multiarray": _NUMPY_CORE,
    "numpy._core.numeric": _NUMPY_CORE,
    "numpy.core.numeric": _NUMPY_CORE,
    "numpy.random._pickle": {"__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor"},
    "numpy.random.bit_generator": {"__pyx_unpickle_SeedSequence", "SeedSequence"},
    **_BIT_GENERATORS,
    "gymnasium.spaces.box": {"Box"},
    "gymnasium.spaces.discrete": {"Discrete"},
    "gymnasium.spaces.multi_discrete": {"MultiDiscrete"},
    "gymnasium.spaces.multi_binary": {"MultiBinary"},
    "gymnasium.spaces.dict": {"Dict"},
    "gymnasium.spaces.tuple": {"Tuple"},
    "stable_baselines3.common.utils": {"FloatSchedule", "LinearSchedule", "ConstantSchedule"},
    "stable_baselines3.common.type_aliases": {"TrainFreq", "TrainFrequencyUnit"},
    "stable_baselines3.common.noise": {"NormalActionNoise", "OrnsteinUhlenbeckActionNoise", "VectorizedActionNoise"},
}

# Packages whose classes are allowed when they subclass one of _ALLOWED_BASES (policies, feature extractors,
# buffers, torch layers and activations, optimizers): a saved model refers to them by name only.
_CLASS_PACKAGES = ("sb3_sacae", "stable_baselines3", "torch.nn.modules", "torch.optim")
_ALLOWED_BASES: tuple[type, ...] = (BasePolicy, BaseFeaturesExtractor, BaseBuffer, th.nn.Module, th.optim.Optimizer)


def is_allowed_global(module: str, name: str) -> bool:
    """Whether a pickle in a model file may reference ``module.name``."""
    if name in ALLOWED_GLOBALS.get(module, ()):
        return True
    return _is_reference_only_class(module, name)


def _is_reference_only_class(module: str, name: str) -> bool:
    # Dotted names walk attributes (``sb3_sacae.serialization`` + ``os.system``) and private names reach internals
    if not name.isidentifier() or name.startswith("_"):
        return False
    if not any(module == package or module.startswith(package + ".") for package in _CLASS_PACKAGES):
        return False
    # Only modules already imported: resolving a name must never import (and so run) anything
    obj = getattr(sys.modules.get(module), name, None)
    return isinstance(obj, type) and issubclass(obj, _ALLOWED_BASES)


# --- What an allowed call may allocate ----------------------------------------------------------------------------


def _length(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, np.ndarray):
        return int(value.size)
    try:
        return len(value)
    except TypeError:
        return 0


def _shape_size(shape: Any) -> int:
    if shape is None:
        return 0
    if isinstance(shape, (int, np.integer)):
        return max(int(shape), 0)
    try:
        return math.prod(max(int(side), 0) for side in shape)
    except (TypeError, ValueError):
        return 0


def _itemsize(dtype: Any) -> int:
    try:
        return max(np.dtype(dtype).itemsize, 1) if dtype is not None else 8
    except TypeError:
        return 8


def _argument(args: tuple, kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _call_cost(func: Any, args: tuple, kwargs: dict[str, Any]) -> int:
    """Elements (bytes for byte containers and arrays) that calling ``func`` would allocate beyond its arguments."""
    if func is range:
        return len(range(*args))
    if func in (bytearray, set, frozenset):
        return _length(args[0]) if args else 0
    if func is np.ndarray:
        return _shape_size(_argument(args, kwargs, 0, "shape")) * _itemsize(_argument(args, kwargs, 1, "dtype"))
    if getattr(func, "__name__", "") == "_reconstruct" and getattr(func, "__module__", "").startswith("numpy"):
        return _shape_size(_argument(args, kwargs, 1, "shape")) * _itemsize(_argument(args, kwargs, 2, "dtype"))
    if getattr(func, "__name__", "") == "scalar" and getattr(func, "__module__", "").startswith("numpy"):
        return _itemsize(args[0]) if args else 0
    if isinstance(func, type) and issubclass(func, np.generic):
        return max((_length(arg) for arg in args if isinstance(arg, (int, np.integer))), default=0)
    if func is np.random.SeedSequence:
        return _length(_argument(args, kwargs, 2, "pool_size"))
    module = getattr(func, "__module__", "") or ""
    if module.startswith("gymnasium.spaces"):
        size = _shape_size(_argument(args, kwargs, 2, "shape")) if func.__name__ == "Box" else 0
        return size + sum(_length(arg) for arg in args if isinstance(arg, (int, np.integer)) and func.__name__ != "Discrete")
    if module.startswith("stable_baselines3.common.noise") and func.__name__ == "VectorizedActionNoise":
        return _length(_argument(args, kwargs, 1, "n_envs"))
    if module.startswith("collections"):
        return _length(args[0]) if args else 0
    return 0


_NOT_INSTANCES = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType)

_BYTE_ORDERS = ("<", ">", "|", "=")


def _plain_dtype_problem(dtype: np.dtype) -> str | None:
    """
    Why ``dtype`` is not a plain dtype (one numpy builds from its ``str``, such as ``<f4`` or ``|u1``), or None.

    Structured (fields) and subarray dtypes are refused: numpy's ``dtype.__setstate__`` does not check field offsets
    against the item size, so a file could make an array read or write outside its memory; SB3 never saves them.
    """
    if dtype.fields is not None or dtype.names is not None:
        return f"a structured numpy dtype (fields {list(dtype.names or ())}; SB3 never saves structured arrays)"
    if dtype.subdtype is not None:
        return "a numpy subarray dtype"
    if dtype.metadata:
        return "a numpy dtype with metadata"
    try:
        plain = np.dtype(dtype.str)
    except TypeError:
        return f"the numpy dtype {dtype!r}, which is not a plain one"
    if dtype != plain or dtype.itemsize != plain.itemsize or dtype.flags != plain.flags:
        return f"a numpy dtype whose state differs from the plain {plain!r}"
    return None


def _dtype_state_problem(dtype: np.dtype, state: Any) -> str | None:
    """
    Why ``state`` may not be set on ``dtype`` (a copy the file built), or None: only the byte order (and a datetime's
    unit) may differ from the copy as built; fields, subarrays, item size, alignment and flags may not.
    """
    current = dtype.__reduce__()[2]
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
        return "its state is malformed"
    if state[1] not in _BYTE_ORDERS:
        return f"its state has the byte order {state[1]!r}"
    if any(part is not None for part in state[2:5]):
        return "its state gives it fields or a subarray (a structured dtype, which SB3 never saves)"
    if state[5:8] != current[5:8]:
        return "its state changes the item size, alignment or flags"
    if len(state) == 9 and state[8] is not None:
        metadata = state[8]
        if dtype.kind not in "mM" or not isinstance(metadata, tuple) or len(metadata) != 2 or metadata[0] is not None:
            return "its state adds metadata"
    return None


# The pure-Python unpickler: its opcode table can be overridden (typeshed describes it as the C one, hence Any)
_PythonUnpickler: Any = pickle._Unpickler


class _RestrictedUnpickler(_PythonUnpickler):
    """The pure-Python unpickler with find_class, calls and BUILD checked (see the module docstring)."""

    dispatch = dict(_PythonUnpickler.dispatch)

    def __init__(self, file: IO[bytes], what: str):
        super().__init__(file)
        self.what = what
        self._budget = MAX_PICKLE_ELEMENTS.value()
        self._spent = 0
        self._globals: dict[int, Any] = {}  # id -> object of every resolved global (kept alive, so ids stay unique)

    # -- checks --

    def _refuse(self, reason: str) -> UnsafeFileError:
        return UnsafeFileError(f"Refusing to load {self.what}: {reason}. {TRUST_HINT}.")

    def _charge(self, elements: int) -> None:
        self._spent += elements
        if self._spent > self._budget:
            MAX_PICKLE_ELEMENTS.check(self._spent, self.what)

    def _check_call(self, func: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        if id(func) not in self._globals:
            raise self._refuse(f"it calls {type(func).__name__} {func!r}, which is not an allow-listed global")
        module, name = getattr(func, "__module__", ""), getattr(func, "__name__", "")
        if not name or (name not in ALLOWED_GLOBALS.get(module, ()) and _is_reference_only_class(module, name)):
            raise self._refuse(f"it builds an instance of {module}.{name}; a model file may only name that class")
        if func is np.dtype and not (len(args) >= 3 and args[2] is True):
            # numpy pickles dtypes as dtype(name, align, copy=True); without the copy, the process-wide dtype object
            # is returned, and a following BUILD would change its state
            raise self._refuse("it asks for a shared numpy dtype object (copy=False), whose state it could then change")
        try:
            cost = _call_cost(func, args, kwargs)
        except (TypeError, ValueError, OverflowError) as error:
            raise CorruptFileError(f"Refusing to load {self.what}: bad arguments for {module}.{name} ({error})") from error
        self._charge(cost)

    def find_class(self, module: str, name: str) -> Any:
        if not is_allowed_global(module, name):
            hint = (
                " (cloudpickle stores lambdas, closures and classes defined in __main__ this way: "
                "use importable classes such as SB3's schedule classes instead)"
                if module.startswith("cloudpickle")
                else ""
            )
            raise UnsafeFileError(
                f"Refusing to load {self.what}: it references the global '{module}.{name}', which is not on "
                f"sb3_sacae's allow-list{hint}. {TRUST_HINT}."
            )
        obj = super().find_class(module, name)
        self._globals[id(obj)] = obj
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise self._refuse("it uses pickle persistent ids")

    # -- opcodes that call or set state --

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not isinstance(args, tuple):
            raise CorruptFileError(f"Refusing to load {self.what}: a call's arguments are not a tuple")
        self._check_call(func, args, {})
        self.stack[-1] = self._checked_result(func(*args))

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if not isinstance(cls, type) or not isinstance(args, tuple):
            raise CorruptFileError(f"Refusing to load {self.what}: NEWOBJ needs a class and an argument tuple")
        self._check_call(cls, args, {})
        self.append(self._checked_result(cls.__new__(cls, *args)))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if not isinstance(cls, type) or not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise CorruptFileError(f"Refusing to load {self.what}: NEWOBJ_EX needs a class, a tuple and a dict")
        self._check_call(cls, args, kwargs)
        self.append(self._checked_result(cls.__new__(cls, *args, **kwargs)))

    def _instantiate(self, klass: Any, args: list) -> None:
        self._check_call(klass, tuple(args), {})
        super()._instantiate(klass, args)
        self._checked_result(self.stack[-1])

    def _checked_result(self, result: Any) -> Any:
        """Refuse a numpy dtype, array or scalar whose dtype is not plain (see :func:`_plain_dtype_problem`)."""
        dtype = result if isinstance(result, np.dtype) else getattr(result, "dtype", None)
        if isinstance(result, (np.dtype, np.ndarray, np.generic)) and isinstance(dtype, np.dtype):
            problem = _plain_dtype_problem(dtype)
            if problem is not None:
                raise self._refuse(f"it builds {problem}")
        return result

    def load_build(self) -> None:
        state = self.stack[-1]
        inst = self.stack[-2]
        if id(inst) in self._globals or isinstance(inst, _NOT_INSTANCES):
            raise self._refuse(f"it sets state on {inst!r}, a class or global rather than an instance the file built")
        if isinstance(inst, enum.Enum):  # members are process-wide singletons (e.g. SB3's TrainFrequencyUnit.STEP)
            raise self._refuse(f"it sets state on the enum member {inst!r}, which the whole process shares")
        if isinstance(inst, np.dtype):
            # numpy's dtype.__setstate__ trusts the state: field offsets past the item size, a larger item size or
            # object flags on raw bytes would make arrays of this dtype read or write outside their memory
            problem = _dtype_state_problem(inst, state)
            if problem is not None:
                raise self._refuse(f"it changes a numpy dtype: {problem}")
        if isinstance(inst, np.ndarray) and isinstance(state, tuple) and len(state) in (4, 5):
            # (version,) shape, dtype, is_fortran, data: numpy allocates the shape before it checks an object list
            shape, dtype = state[-4], state[-3]
            try:
                cost = _shape_size(shape) * _itemsize(dtype)
            except (TypeError, ValueError, OverflowError) as error:
                raise CorruptFileError(f"Refusing to load {self.what}: a malformed array state ({error})") from error
            self._charge(cost)
        if getattr(type(inst), "__setstate__", None) is None:  # pickle's fallback: update __dict__, setattr slots
            parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
            keys = [key for part in parts if isinstance(part, dict) for key in part]
            if any(not isinstance(key, str) or key.startswith("__") for key in keys):
                raise self._refuse(f"it sets special or non-string attribute names {keys} on a {type(inst).__name__}")
        super().load_build()
        self._checked_result(inst)

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build

    def load(self) -> Any:
        # Every opcode is charged one element: containers grow by at most one item per opcode
        charge = self._charge
        table = self.dispatch

        class _Counting(dict):
            def __getitem__(self, key: int) -> Callable[..., None]:
                charge(1)
                return table[key]

        self.dispatch = _Counting()
        try:
            return super().load()
        finally:
            self.dispatch = table


def restricted_loads(payload: bytes, what: str) -> Any:
    """
    Unpickle ``payload`` resolving only allow-listed globals; ``what`` names it in errors.

    Every failure ends in :class:`UnsafeFileError`: a refused global or call, an exceeded limit, or a payload that
    is not a valid pickle (:class:`CorruptFileError`).
    """
    MAX_METADATA_BYTES.check(len(payload), what)
    try:
        return _RestrictedUnpickler(io.BytesIO(payload), what).load()
    except UnsafeFileError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        TypeError,
        ValueError,
        AttributeError,
        KeyError,
        IndexError,
        struct.error,
    ) as error:
        raise CorruptFileError(
            f"Refusing to load {what}: it is not a valid pickle ({type(error).__name__}: {error})"
        ) from error
    except (OverflowError, RecursionError, MemoryError, UnicodeDecodeError) as error:
        raise CorruptFileError(f"Refusing to load {what}: {type(error).__name__}: {error}") from error
