"""TensorRT objects checked against the real binding classes of one TensorRT version.

Runs inside a process where the real ``tensorrt`` extension module is importable (its libraries are
a stub, see real_trt.py): classes, enums, properties and pybind11 docstring signatures are the real
ones, but the objects that need libnvinfer (Builder, Runtime, OnnxParser and everything they make)
cannot exist. :func:`install` puts a proxy of the module in ``sys.modules["tensorrt"]``:

* ``trt.<Name>`` must exist in the real module; classes come back as :class:`ClassProxy` (nested
  names are checked the same way; subclassing one subclasses the real class);
* ``trt.Builder/Runtime/OnnxParser(...)`` check the arguments against the real ``__init__`` and
  return a :class:`Fake` of that class; every attribute of a Fake must exist on its real class,
  every call must match one of the real pybind11 signatures (argument count, keyword names and
  types), every property assignment needs a real setter of a matching type, and results are
  produced by a small behaviour model (``world``) or, where none is given, from the real return type.

Every mismatch is appended to :data:`FAILURES` (and raised as :class:`ApiMisuse`), so a caller that
swallows exceptions still fails the test. :data:`OBSERVED` keeps every (class, member) touched.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

FAILURES: list[str] = []
OBSERVED: set[tuple[str, str]] = set()
UNCHECKED_TYPES: set[str] = set()
REAL: Any = None  # the real tensorrt module
VERSION = ""


class ApiMisuse(AssertionError):
    pass


def fail(message: str) -> ApiMisuse:
    message = f"TensorRT {VERSION}: {message}"
    FAILURES.append(message)
    return ApiMisuse(message)


# ---------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Param:
    name: str
    type: str | None
    has_default: bool
    star: str = ""  # "*" or "**"


@dataclass(frozen=True)
class Signature:
    text: str
    params: tuple[Param, ...]  # without self
    returns: str


_SIG = re.compile(r"^(?:\d+\.\s+)?(?:[\w.]+)?\((?P<params>.*)\)\s*->\s*(?P<ret>.+?)\s*$")


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def parse_signatures(doc: str | None, drop_first: bool = True) -> list[Signature]:
    """Every ``name(self: X, a: T = d) -> R`` line of a pybind11 docstring (all overloads)."""
    sigs = []
    for line in (doc or "").splitlines():
        m = _SIG.match(line.strip())
        if not m or "*args, **kwargs" in line:
            continue
        params = []
        for i, raw in enumerate(_split_top(m.group("params"))):
            if drop_first and i == 0:
                continue
            star = "**" if raw.startswith("**") else "*" if raw.startswith("*") else ""
            raw = raw.lstrip("*")
            head, _, default = raw.partition("=")
            name, _, typ = head.partition(":")
            params.append(Param(name.strip(), typ.strip() or None, bool(default.strip()), star))
        sigs.append(Signature(line.strip(), tuple(params), m.group("ret").strip()))
    return sigs


def _strip(typ: str) -> str:
    for prefix in ("typing_extensions.", "typing.", "collections.abc."):
        typ = typ.replace(prefix, "")
    return typ.strip()


def _real_class(dotted: str) -> Any:
    obj: Any = REAL
    for part in dotted.split(".")[2:] if dotted.startswith("tensorrt.tensorrt.") else dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, type) else None


def conforms(value: Any, typ: str | None) -> bool | None:
    """Whether pybind11 would accept ``value`` for a parameter of type ``typ`` (None: not checkable)."""
    if typ is None:
        return None
    t = _strip(typ)
    if t.startswith("Optional[") and t.endswith("]"):
        return True if value is None else conforms(value, t[9:-1])
    if t.startswith("Union[") and t.endswith("]"):
        results = [conforms(value, a) for a in _split_top(t[6:-1])]
        return True if any(results) else (None if None in results else False)
    if " | " in t:
        results = [conforms(value, a) for a in t.split(" | ")]
        return True if any(results) else (None if None in results else False)
    if value is None:
        return False
    if t in ("int", "SupportsInt", "SupportsIndex"):
        return isinstance(value, int | np.integer)
    if t in ("float", "SupportsFloat"):
        return isinstance(value, int | float | np.integer | np.floating)
    if t == "bool":
        return isinstance(value, bool | np.bool_ | int)
    if t == "str":
        return isinstance(value, str)
    if t in ("bytes", "buffer", "Buffer"):
        return isinstance(value, bytes | bytearray | memoryview | np.ndarray)
    if t in ("tuple", "list"):
        return isinstance(value, tuple | list)
    if t in ("os.PathLike", "PathLike"):
        return isinstance(value, str) or hasattr(value, "__fspath__")
    m = re.match(r"^(?:List|list|Sequence)\[(.*)\]$", t)
    if m:
        if not isinstance(value, list | tuple):
            return False
        results = [conforms(v, m.group(1)) for v in value]
        return False not in results
    if t.startswith("tensorrt.tensorrt."):
        cls = _real_class(t)
        if cls is None:
            UNCHECKED_TYPES.add(t)
            return None
        if isinstance(value, Fake):
            return issubclass(value._f_cls, cls)
        if isinstance(value, cls):
            return True
        if cls.__name__.startswith("Dims"):  # pybind11 converts tuples and lists of ints to Dims
            return isinstance(value, list | tuple) and all(isinstance(v, int | np.integer) for v in value)
        return False
    UNCHECKED_TYPES.add(t)
    return None


def _describe(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        return f"<{v._f_cls.__name__}>" if isinstance(v, Fake) else f"{type(v).__name__}:{v!r}"[:60]

    return "(" + ", ".join([one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]) + ")"


def bind_call(sig: Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """None when the call matches ``sig``, else why not."""
    plain = [p for p in sig.params if not p.star]
    if len(args) > len(plain) and not any(p.star == "*" for p in sig.params):
        return f"{len(args)} positional arguments, the signature takes {len(plain)}"
    given: dict[str, Any] = {p.name: a for p, a in zip(plain, args, strict=False)}
    for k, v in kwargs.items():
        if k in given:
            return f"argument {k} given twice"
        if not any(p.name == k for p in plain) and not any(p.star == "**" for p in sig.params):
            return f"no parameter named {k}"
        given[k] = v
    for p in plain:
        if p.name not in given and not p.has_default:
            return f"missing argument {p.name}"
        if p.name in given and conforms(given[p.name], p.type) is False:
            return f"argument {p.name} must be {p.type}, got {type(given[p.name]).__name__} {given[p.name]!r}"[:200]
    return None


def check_call(where: str, sigs: list[Signature], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Signature | None:
    if not sigs:
        UNCHECKED_TYPES.add(f"(no signature) {where}")
        return None
    reasons = []
    for sig in sigs:
        why = bind_call(sig, args, kwargs)
        if why is None:
            return sig
        reasons.append(f"{sig.text.split(' -> ')[0]}: {why}")
    raise fail(f"{where}{_describe(args, kwargs)} matches no signature: " + " | ".join(reasons))


def synthesize(ret: str) -> Any:
    """A value of the real return type, for calls no behaviour model answers."""
    t = _strip(ret)
    if t.startswith("Optional["):
        t = t[9:-1]
    if t == "None":
        return None
    if t == "bool":
        return True
    if t in ("int", "SupportsInt"):
        return 0
    if t == "float":
        return 0.0
    if t == "str":
        return ""
    if t.startswith("tensorrt.tensorrt."):
        cls = _real_class(t)
        if cls is not None and hasattr(cls, "__members__"):
            return next(iter(cls.__members__.values()))  # an enum: its first member
        if cls is not None:
            return Fake(cls)
    return None


# ---------------------------------------------------------------- proxies


def _name(cls: Any) -> str:
    return str(getattr(cls, "__qualname__", getattr(cls, "__name__", cls)))


class ClassProxy:
    """``trt.<Class>``: attribute access checked against the real class; subclassable."""

    def __init__(self, real: type, path: str) -> None:
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_path", path)

    def __getattribute__(self, name: str) -> Any:
        # Every name (``__init__`` and ``__doc__`` included) is the real class's, except our own.
        if name in ("_real", "_path", "__class__", "__dict__", "__mro_entries__", "__instancecheck__"):
            return object.__getattribute__(self, name)
        real, path = object.__getattribute__(self, "_real"), object.__getattribute__(self, "_path")
        OBSERVED.add((path, name))
        try:
            value = getattr(real, name)
        except AttributeError:
            raise fail(f"tensorrt.{path} has no member {name!r}") from None
        if isinstance(value, type) and not name.startswith("__"):
            return ClassProxy(value, f"{path}.{name}")
        return value

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (self._real,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._real(*args, **kwargs)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._real) or (isinstance(obj, Fake) and issubclass(obj._f_cls, self._real))


class Fake:
    """An instance of a real TensorRT class that cannot be made here; ``impl`` answers calls."""

    def __init__(self, cls: type, impl: Any = None, on_destroy: Callable[[str], None] | None = None) -> None:
        object.__setattr__(self, "_f_cls", cls)
        object.__setattr__(self, "_f_impl", impl)
        object.__setattr__(self, "_f_on_destroy", on_destroy)

    def _f_lookup(self, name: str) -> Any:
        cls = self._f_cls
        OBSERVED.add((cls.__name__, name))
        for klass in cls.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
        raise fail(f"{cls.__name__} has no member {name!r}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_f_") or name.startswith("__"):
            raise AttributeError(name)
        member = self._f_lookup(name)
        cls, impl = self._f_cls, self._f_impl
        if isinstance(member, property):
            if impl is not None and hasattr(impl, name):
                return getattr(impl, name)
            sigs = parse_signatures(member.fget.__doc__ if member.fget else None, drop_first=True)
            return synthesize(sigs[0].returns) if sigs else None
        if callable(member):
            sigs = parse_signatures(getattr(member, "__doc__", None))
            where = f"{cls.__name__}.{name}"

            def call(*args: Any, **kwargs: Any) -> Any:
                sig = check_call(where, sigs, args, kwargs)
                if impl is not None and hasattr(impl, name):
                    return getattr(impl, name)(*args, **kwargs)
                return synthesize(sig.returns) if sig else None

            return call
        return member

    def __setattr__(self, name: str, value: Any) -> None:
        member = self._f_lookup(name)
        where = f"{self._f_cls.__name__}.{name}"
        if not isinstance(member, property) or member.fset is None:
            raise fail(f"{where} cannot be assigned (not a settable property)")
        sigs = parse_signatures(member.fset.__doc__, drop_first=True)
        check_call(where + " = ", sigs, (value,), {})
        if self._f_impl is not None:
            setattr(self._f_impl, name, value)

    def __del__(self) -> None:
        hook = self._f_on_destroy
        if hook is not None:
            hook(self._f_cls.__name__)


class Constructor:
    """``trt.Builder`` / ``trt.Runtime`` / ``trt.OnnxParser``: checked like the real ``__init__``."""

    def __init__(self, real: type, make: Callable[..., Any]) -> None:
        self.real, self.make = real, make

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        OBSERVED.add(("tensorrt", self.real.__name__))
        check_call(f"tensorrt.{self.real.__name__}", parse_signatures(type.__getattribute__(self.real, "__init__").__doc__), args, kwargs)
        return self.make(*args, **kwargs)


class TrtProxy(types.ModuleType):
    def __init__(self, real: Any, constructors: dict[str, Callable[..., Any]]) -> None:
        super().__init__("tensorrt")
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_constructors", constructors)

    def __getattr__(self, name: str) -> Any:
        OBSERVED.add(("tensorrt", name))
        if name in self._constructors:
            return Constructor(getattr(self._real, name), self._constructors[name])
        try:
            value = getattr(self._real, name)
        except AttributeError:
            raise fail(f"tensorrt has no {name!r}") from None
        if isinstance(value, type):
            return ClassProxy(value, name)
        return value


def install(constructors: dict[str, Callable[..., Any]]) -> Any:
    """Import the real module, then stand the checked proxy in for it. Returns the real module."""
    global REAL, VERSION
    import tensorrt as real

    REAL, VERSION = real, str(real.__version__)
    sys.modules["tensorrt"] = TrtProxy(real, constructors)
    return real


def check_override(base: type, ours: type, method: str) -> None:
    """Our Python override of a TensorRT interface method takes what TensorRT passes."""
    OBSERVED.add((base.__name__, method))
    member = getattr(base, method, None)
    if member is None:
        raise fail(f"{base.__name__} has no method {method!r} to override ({ours.__name__}.{method})")
    sigs = parse_signatures(member.__doc__)
    if not sigs:
        return
    params = [p for p in inspect.signature(getattr(ours, method)).parameters.values()][1:]
    want = len(sigs[0].params)
    required = [p for p in params if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    if not (len(required) <= want <= len(params)):
        raise fail(f"{ours.__name__}.{method} takes {len(params)} arguments, TensorRT calls it with {want}: {sigs[0].text}")
