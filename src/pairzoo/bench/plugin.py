"""The codec plug-in: what `pairzoo evaluate` calls, and how a codec is found and checked.

A codec is any object with `encode(base, updated, **params) -> bytes` and
`decode(payload, base, **params) -> dict[str, np.ndarray]`. The harness gives `decode` only the
payload and the base, so a codec cannot see the updated tensors when it reconstructs them; its byte
count is the payload's length. Optional attributes: `name` (default: the class name) and
`supports`, the structure changes it can code (default: all of `STRUCTURES`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from pairzoo.bench.builtin_codecs import BUILTIN
from pairzoo.errors import PairzooError

Tensors = Mapping[str, np.ndarray]
# What an update may do to the base's tensors: keep every name and shape (matched), change a
# tensor's shape (reshaped, e.g. a head with more classes), add tensors, or drop them.
STRUCTURES = ("matched", "reshaped", "added", "removed")


@runtime_checkable
class Codec(Protocol):
    """An update codec: bytes from a base and its update, and the update back from the bytes."""

    def encode(self, base: Tensors, updated: Tensors, **params: object) -> bytes:
        """The payload a receiver holding `base` needs to rebuild `updated`."""

    def decode(self, payload: bytes, base: Tensors, **params: object) -> dict[str, np.ndarray]:
        """The updated tensors, by name, from the payload and the base alone."""


def codec_name(codec: Codec) -> str:
    """The codec's name: its `name` attribute, else its class's (or function's) name."""
    name = getattr(codec, "name", None)
    return name if isinstance(name, str) and name else type(codec).__name__


def supported(codec: Codec) -> frozenset[str]:
    """The structure changes the codec declares it supports (all of `STRUCTURES` by default)."""
    declared = getattr(codec, "supports", STRUCTURES)
    unknown = sorted(set(declared) - set(STRUCTURES))
    if unknown:
        raise PairzooError(f"codec {codec_name(codec)}: unknown structure changes {unknown}")
    return frozenset(declared) | {"matched"}


def read_only(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Views of the tensors that a codec cannot write into (the set's copies stay intact)."""
    views = {}
    for name, array in tensors.items():
        views[name] = array.view()
        views[name].flags.writeable = False
    return views


def error_line(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


_FIXED = {"base", "updated", "payload"}
_NOT_KEYWORD = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL)


def _keywords(method: object) -> set[str] | None:
    """The keyword parameters a method takes besides the tensors; None if it takes any."""
    parameters = inspect.signature(method).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind not in _NOT_KEYWORD} - _FIXED


def parameter_names(codec: Codec) -> set[str] | None:
    """Keyword parameters that `encode` or `decode` takes; None when either takes any."""
    names = [_keywords(codec.encode), _keywords(codec.decode)]
    return None if None in names else names[0] | names[1]


def call_parameters(method: object, params: Mapping[str, object]) -> dict[str, object]:
    """The parameters `method` takes, of `params` (all where it takes `**params`)."""
    names = _keywords(method)
    return dict(params) if names is None else {k: v for k, v in params.items() if k in names}


def check_parameters(codec: Codec, params: Mapping[str, object]) -> None:
    """PairzooError naming the parameters the codec does not take."""
    known = parameter_names(codec)
    unknown = sorted(set(params) - known) if known is not None else []
    if unknown:
        raise PairzooError(
            f"codec {codec_name(codec)} takes no parameter {', '.join(unknown)} "
            f"(it takes {', '.join(sorted(known)) or 'none'})"
        )


def load_codec(spec: str) -> Codec:
    """The codec `spec` names: a built-in's name, `module:object` or `path/to/file.py:object`.

    An object is an instance or a class, instantiated without arguments; a module or file without
    `:object` must hold exactly one codec at its top level.
    """
    if spec in BUILTIN:
        return BUILTIN[spec]
    where, _, attribute = spec.partition(":")
    module = _module(where)
    if attribute:
        if not hasattr(module, attribute):
            raise PairzooError(f"codec {spec!r}: {where} has no {attribute!r}")
        found = getattr(module, attribute)
    else:
        found = _only_codec(module, where)
    codec = found() if inspect.isclass(found) else found
    if not isinstance(codec, Codec) or inspect.isclass(codec):
        raise PairzooError(f"codec {spec!r}: no encode(base, updated) and decode(payload, base)")
    return codec


def _module(where: str) -> object:
    if where.endswith(".py") or "/" in where:
        path = Path(where)
        if not path.is_file():
            raise PairzooError(f"codec file {where}: no such file")
        spec = importlib.util.spec_from_file_location(f"pairzoo_codec_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise PairzooError(f"codec file {where}: {type(exc).__name__}: {exc}") from exc
        return module
    try:
        return importlib.import_module(where)
    except ImportError as exc:
        raise PairzooError(f"codec module {where!r}: cannot import it ({exc})") from exc


def _only_codec(module: object, where: str) -> object:
    found = [
        value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == module.__name__
        and callable(getattr(value, "encode", None))
        and callable(getattr(value, "decode", None))
    ]
    if len(found) != 1:
        raise PairzooError(f"codec {where}: name one with {where}:NAME ({len(found)} found)")
    return found[0]
