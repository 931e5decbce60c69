"""User models: `package.module:factory`, imported from the user's Python environment, checked and fingerprinted.

A user model is named ``package.module:factory`` (e.g. ``tests.fixtures:factory``, ``mylab.nets:small_resnet``;
a dotted attribute such as ``mylab.nets:Zoo.small`` is allowed). The module is imported with `importlib` from
the running environment (`sys.path`: installed packages and the current folder), never from an uploaded file
or a path, and the factory is looked up in it. It goes through the same `build_model` as a registered model.

The factory's contract::

    factory(image_shape: tuple[int, int, int], num_classes: int) -> torch.nn.Module

It receives the data's image shape (C, H, W) and number of classes and returns a fresh module that maps a
float32 batch (N, C, H, W) with values in [0, 1] to logits (N, num_classes). Its initial weights must come from
torch's global RNG (as `nn.Module` constructors draw them): `build_model` seeds that RNG with the run's seed
(and forks it), so the same seed gives the same weights; a factory that builds different weights from the same
seed is refused. SAL and curvature measure every `nn.Conv2d` and `nn.Linear` weight of the module
(`landscape.models.weight_layers`, Ye et al., ICLR 2025); any structure (residual branches, BatchNorm, custom
blocks) works. The width multiplier of `ModelSpec` is for registered models only.

Checked on every build (`ModelError`, naming the model and what was expected): the module imports, the factory
exists and is callable, calling it does not raise, it returns an `nn.Module` with parameters, and a batch of two
of the data's images (value 0.5, eval mode, no gradients) gives a floating logits tensor of shape
(2, num_classes).

The fingerprint (`fingerprint`, in every cache key through `ModelSpec.code`, filled in by the stage layer)
hashes:

- the code Python has loaded (not the files, so a file edited after it was imported cannot give old code a new
  key): the bytecode, constants and names of every function and class defined in or imported into the factory's
  module and the modules of the classes the built model is made of (their methods, default arguments and base
  classes), and those modules' plain constants (numbers, strings and containers of them). Code of torch, numpy,
  the standard library and `landscape` is named, not hashed (a registered model's key does not follow the
  engine's code either; the stage versions do);
- the architecture built for the data: every submodule's name, class and settings (`extra_repr`: strides,
  padding, ...) and every parameter's and buffer's name, shape and dtype.

It does not see code reached only through objects the module does not name (a function handed in at run time)
or behaviour read from files or environment variables: rename the factory when such a thing changes.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from landscape.errors import ModelError

Factory = Callable[[tuple[int, int, int], int], nn.Module]

_IDENT = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_NAME = re.compile(rf"^(?P<module>{_IDENT}):(?P<attr>{_IDENT})$")
# Top-level packages whose code is named, not hashed (see the module docstring).
_LIBRARIES = frozenset({"torch", "numpy", "landscape", *sys.stdlib_module_names})
_CHECK_BATCH = 2
SESSION = "@session:"  # names of factories and modules adopted by the Python API in this process
_SESSION: dict[str, Callable[..., Any]] = {}


def is_user_model(name: str) -> bool:
    """True if `name` names a user model (``package.module:factory``) rather than a registered one."""
    return ":" in name


def adopt(model: str | Factory | nn.Module) -> str:
    """The model name of a factory or module handed to the Python API (`landscape.study`).

    A name is returned as is. A factory importable as ``module:qualname`` (a top-level function of a module, or
    of the notebook's ``__main__``) is named so. Anything else (a lambda, a closure, a class's method, an
    `nn.Module` instance) is kept in this process under ``@session:<digest>``, the digest hashing its code (a
    module: its classes' code, architecture and weights, which every build copies); such a name is valid only
    in the process that adopted it. Adopting the same object twice gives the same name.
    """
    if isinstance(model, str):
        return model
    if isinstance(model, nn.Module):
        hasher = _CodeHasher()
        for module_type in sorted({type(m) for m in model.modules()}, key=lambda t: f"{t.__module__}.{t.__qualname__}"):
            hasher.obj(module_type)
        hasher.text("architecture", architecture_digest(model))
        for key, tensor in model.state_dict().items():
            hasher.text("tensor", key)
            hasher.digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        name = f"{SESSION}{hasher.digest.hexdigest()[:16]}"
        _SESSION[name] = _Copies(model)
        return name
    if not callable(model):
        raise ModelError(f"a model is a registered name, package.module:factory, a factory(image_shape, num_classes) "
                         f"or an nn.Module; got a {type(model).__name__}")
    named = f"{getattr(model, '__module__', '')}:{getattr(model, '__qualname__', '')}"
    if _NAME.match(named):
        try:
            if load_factory(named) is model:
                return named
        except ModelError:
            pass
    hasher = _CodeHasher()
    hasher.member(model)
    name = f"{SESSION}{hasher.digest.hexdigest()[:16]}"
    _SESSION[name] = model
    return name


class _Copies:
    """A factory that returns a fresh copy of one module (weights included) whatever it is asked for."""

    def __init__(self, module: nn.Module) -> None:
        self.module = copy.deepcopy(module).cpu()

    def __call__(self, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        return copy.deepcopy(self.module)


def split_name(name: str) -> tuple[str, str]:
    """The module and attribute of a user model name ``package.module:factory`` (`ModelError` if malformed)."""
    match = _NAME.match(name)
    if match is None:
        raise ModelError(f"user model {name!r} must be named package.module:factory (Python identifiers joined by "
                         f"dots, e.g. mylab.nets:small_resnet); files and paths are not accepted, the module is "
                         f"imported from the Python environment")
    return match["module"], match["attr"]


def load_factory(name: str) -> Callable[..., Any]:
    """The callable `name` (``package.module:factory``) names, imported from the Python environment."""
    if name.startswith(SESSION):
        if name not in _SESSION:
            raise ModelError(f"model {name!r} was handed to the Python API in another process; hand the factory or "
                             f"module to this one, or name an importable factory package.module:factory")
        return _SESSION[name]
    module_name, attr = split_name(name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ModelError(f"cannot import module {module_name!r} of user model {name!r}: {err}; it must be "
                         f"importable from this Python environment (installed, or under the current folder "
                         f"{sys.path[0] or '.'!r} on sys.path)") from None
    except Exception as err:  # noqa: BLE001 - importing user code may raise anything; say what it was
        raise ModelError(f"importing module {module_name!r} of user model {name!r} raised "
                         f"{type(err).__name__}: {err}") from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            defined = sorted(k for k, v in vars(module).items() if not k.startswith("_") and callable(v)
                             and getattr(v, "__module__", None) == module.__name__)
            where = getattr(module, "__file__", None) or module_name
            raise ModelError(f"module {module_name!r} ({where}) has no {attr!r} for user model {name!r}; "
                             f"callables it defines: {', '.join(defined) or 'none'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"{name!r} is not callable (an object of type {type(obj).__name__}); expected "
                         f"factory(image_shape, num_classes) returning an nn.Module")
    return obj


def build(name: str, image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """Call the factory of user model `name` and check the module it returns on a batch of the data's shape.

    The caller seeds and forks torch's RNG (`landscape.models.build_model`).
    """
    if width != 1:
        raise ModelError(f"ModelSpec.width = {width} applies to registered models only; user model {name!r} "
                         f"chooses its own size in its factory (use width 1)")
    factory = load_factory(name)
    try:
        model = factory(tuple(image_shape), int(num_classes))
    except Exception as err:  # noqa: BLE001 - a user factory may raise anything; say what it was
        raise ModelError(f"user model factory {name!r} raised {type(err).__name__}: {err} when called as "
                         f"factory(image_shape={tuple(image_shape)}, num_classes={num_classes})") from err
    if not isinstance(model, nn.Module):
        raise ModelError(f"user model factory {name!r} returned a {type(model).__name__}; expected a "
                         f"torch.nn.Module mapping images (N, C, H, W) to logits (N, {num_classes})")
    check_model(name, model, image_shape, num_classes)
    return model


def check_model(label: str, model: nn.Module, image_shape: tuple[int, int, int], num_classes: int) -> None:
    """Raise `ModelError` unless `model` maps a batch of the data's images to logits (N, num_classes).

    The forward pass runs in eval mode without gradients on a constant batch (no RNG draw, no BatchNorm
    statistics updated); the module's train/eval mode is restored.
    """
    params = list(model.parameters())
    if not params:
        raise ModelError(f"model {label!r} has no parameters; there is nothing to train or measure")
    c, h, w = image_shape
    x = torch.full((_CHECK_BATCH, c, h, w), 0.5, device=params[0].device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as err:  # noqa: BLE001 - a user model's forward may raise anything; say what it was
        raise ModelError(f"model {label!r} failed on a batch of the data's images, shape {tuple(x.shape)} "
                         f"(float32 in [0, 1]), with {type(err).__name__}: {err}; its factory receives "
                         f"image_shape={tuple(image_shape)}: its first layer must take {c} input channel(s)") from err
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"model {label!r} returned a {type(out).__name__} for a batch of images; expected a "
                         f"logits tensor of shape (N, {num_classes})")
    expected = (_CHECK_BATCH, num_classes)
    if tuple(out.shape) != expected or not out.is_floating_point():
        raise ModelError(f"model {label!r} gives {out.dtype} logits of shape {tuple(out.shape)} for a batch of "
                         f"{_CHECK_BATCH} images; expected floating logits of shape {expected}: the data has "
                         f"{num_classes} classes (its factory receives num_classes={num_classes})")


# --------------------------------------------------------------------------------------------- fingerprint


def _plain_repr(value: Any) -> str | None:
    """A deterministic text of a plain value (numbers, strings, containers of them), None for anything else."""
    if value is None or value is Ellipsis or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = [_plain_repr(v) for v in value]
        return None if None in items else f"{type(value).__name__}({','.join(items)})"  # type: ignore[arg-type]
    if isinstance(value, (set, frozenset)):
        items = [_plain_repr(v) for v in value]
        return None if None in items else f"set({','.join(sorted(items))})"  # type: ignore[arg-type]
    if isinstance(value, dict):
        pairs = [(_plain_repr(k), _plain_repr(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "dict(" + ",".join(sorted(f"{k}:{v}" for k, v in pairs)) + ")"  # type: ignore[str-format]
    return None


def _is_library(module_name: str | None) -> bool:
    return module_name is None or module_name.split(".")[0] in _LIBRARIES


class _CodeHasher:
    """Feeds the loaded code of functions, classes and modules into one SHA-256 (each object once)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.seen: set[int] = set()

    def text(self, *parts: object) -> None:
        self.digest.update(("\x1f".join(map(str, parts)) + "\x1e").encode())

    def code(self, code: types.CodeType) -> None:
        self.text("code", code.co_qualname if hasattr(code, "co_qualname") else code.co_name, code.co_argcount,
                  code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags, code.co_names, code.co_varnames,
                  code.co_freevars, code.co_cellvars)
        self.digest.update(code.co_code)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self.code(const)
            else:
                self.text("const", _plain_repr(const) or type(const).__name__)

    def obj(self, obj: Any) -> None:
        """A function, class or other attribute: hashed if it is user code, named if it is a library's."""
        owner = getattr(obj, "__module__", None)
        name = getattr(obj, "__qualname__", type(obj).__name__)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or _is_library(owner):
            self.text("ref", owner, name)
            return
        if id(obj) in self.seen:
            self.text("again", owner, name)
            return
        self.seen.add(id(obj))
        if inspect.isfunction(obj):
            self.text("function", owner, name, _plain_repr(obj.__defaults__), _plain_repr(obj.__kwdefaults__))
            self.code(obj.__code__)
            for cell in obj.__closure__ or ():
                try:
                    self.text("cell", _plain_repr(cell.cell_contents))
                except ValueError:  # an empty cell
                    self.text("cell", "empty")
            return
        self.text("class", owner, name)
        for base in obj.__bases__:
            self.obj(base)
        for key, value in sorted(vars(obj).items()):
            if key in ("__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"):
                continue
            self.text("attr", key)
            self.member(value)

    def member(self, value: Any) -> None:
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    self.obj(accessor)
            return
        plain = _plain_repr(value)
        if plain is not None:
            self.text("value", plain)
        else:
            self.obj(value)

    def module(self, module: types.ModuleType) -> None:
        self.text("module", module.__name__)
        for key, value in sorted(vars(module).items()):
            if key.startswith("__"):
                continue
            self.text("global", key)
            if isinstance(value, types.ModuleType):
                self.text("imports", value.__name__)
            else:
                self.member(value)


def _model_modules(model: nn.Module, factory: Any) -> list[types.ModuleType]:
    """The user modules (not torch's, numpy's, the standard library's or landscape's) behind `model`."""
    names: Iterable[str | None] = {getattr(factory, "__module__", None),
                                   *(type(m).__module__ for m in model.modules())}
    return [sys.modules[n] for n in sorted(n for n in names if n and not _is_library(n) and n in sys.modules)]


def architecture_digest(model: nn.Module) -> str:
    """SHA-256 of every submodule's name, class and settings and every parameter's and buffer's name/shape/dtype."""
    digest = hashlib.sha256()
    for name, module in model.named_modules():
        cls = type(module)
        digest.update(f"{name}|{cls.__module__}.{cls.__qualname__}|{module.extra_repr()}\n".encode())
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers()), **model.state_dict()}
    for name, t in tensors.items():
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _built(name: str, image_shape: tuple[int, int, int], num_classes: int, width: int, factory: Any,
           factory_code: str) -> tuple[str, tuple[str, ...]]:
    """(architecture digest, user modules of its classes) of two checked builds; cached per loaded factory code."""

    def seeded() -> nn.Module:  # as `landscape.models.build_model(..., seed=0)` builds it (not imported: no cycle)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build(name, image_shape, num_classes, width)

    first, second = seeded(), seeded()
    a, b = first.state_dict(), second.state_dict()
    for key in a:
        if key not in b or a[key].shape != b[key].shape or not torch.equal(a[key], b[key]):
            raise ModelError(f"user model {name!r} gives different initial weights ({key!r}) from two builds with "
                             f"the same seed; its factory must draw them from torch's global RNG (which "
                             f"build_model seeds), not from another generator, the clock or a file")
    return architecture_digest(first), tuple(m.__name__ for m in _model_modules(first, factory))


def fingerprint(name: str, image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> str:
    """16 hex digits identifying user model `name` on data of this shape: its loaded code and its architecture.

    Builds the model twice with seed 0 (with every check of `build`, as `landscape.models.build_model` does) and refuses
    a factory whose two builds differ. The builds are cached per process for the same factory object and loaded
    code of its module (a reloaded or edited-and-reloaded module builds again); the code is hashed every time.
    """
    factory = load_factory(name)
    own = _CodeHasher()
    own.member(factory)
    module = sys.modules.get(getattr(factory, "__module__", None) or "")
    if module is not None and not _is_library(module.__name__):
        own.module(module)
    architecture, modules = _built(name, tuple(image_shape), int(num_classes), int(width), factory,
                                   own.digest.hexdigest())
    hasher = _CodeHasher()
    hasher.text("name", name)
    hasher.member(factory)
    for module_name in modules:
        if module_name in sys.modules:
            hasher.module(sys.modules[module_name])
        else:  # removed from sys.modules since the build: name it
            hasher.text("gone", module_name)
    hasher.text("architecture", architecture)
    return hasher.digest.hexdigest()[:16]
