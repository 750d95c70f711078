"""The user's own code: importing their `module:function` references, hashing their sources, calling them.

Every failure of user code is a UserCodeError whose message starts with the user's `file:line`, so a
preview that stops on it points at the line to fix. Hashing (`code_digest`) never imports the user's
module: a store hit must not pay for their imports (TensorFlow, typically, in a builder).

Several projects may name their package alike (every example has `my_models`): a reference is always
imported afresh from its own root, never taken from another project's cached module.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import inspect
import sys
import traceback
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Optional

import numpy as np

from app.entry import Task
from model.config import TrainConfig, TrainConfigError

if TYPE_CHECKING:
    import keras

    from model.data import Dataset

# model/ itself: never blamed as the user's line, even when the user's root is the repository.
_PACKAGE = Path(__file__).resolve().parent


class UserCodeError(TrainConfigError):
    """User code or data that modelship cannot use; the message starts with the user's `file:line`."""


@dataclass(frozen=True)
class DataSpec:
    """What a builder gets besides `params`: the input it must take and the task it must answer.

    x_train is the raw training split, so a builder can adapt a Normalization layer on it.
    """

    input_shape: tuple[int, ...]
    input_dtype: Literal["float32", "int32"]
    task: Task
    n_classes: Optional[int]
    x_train: np.ndarray


def split_ref(ref: str) -> tuple[str, str]:
    """`"pkg.mod:fn"` -> `("pkg.mod", "fn")` (the config has already checked the form)."""
    module, _, name = ref.partition(":")
    return module, name


def _inside(path: str | Path, root: Path) -> bool:
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return False
    return resolved.is_relative_to(root) and not resolved.is_relative_to(_PACKAGE)


def _location(error: BaseException, root: Path) -> Optional[tuple[str, int]]:
    """Where in the user's files `error` happened: a SyntaxError's own position, else the deepest frame under root."""
    if isinstance(error, SyntaxError) and error.filename and _inside(error.filename, root):
        return str(Path(error.filename).resolve()), int(error.lineno or 1)
    found = None
    frames: Optional[TracebackType] = error.__traceback__
    for frame, line in traceback.walk_tb(frames):
        if _inside(frame.f_code.co_filename, root):
            found = (str(Path(frame.f_code.co_filename).resolve()), line)
    return found


def definition(fn: Callable[..., Any]) -> tuple[str, int]:
    """The file and line where `fn` is defined (the module's file, line 1, when Python cannot tell)."""
    target = inspect.unwrap(fn)
    try:
        return str(Path(inspect.getsourcefile(target) or "").resolve()), inspect.getsourcelines(target)[1]
    except (TypeError, OSError):
        module = sys.modules.get(getattr(target, "__module__", "") or "")
        return str(getattr(module, "__file__", None) or repr(target)), 1


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextmanager
def _first_on_path(root: Path) -> Iterator[None]:
    # The user's imports (their own siblings too, at call time) resolve in their project first.
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))


def _places(spec: Optional[importlib.machinery.ModuleSpec]) -> tuple[str, ...]:
    """Where a module spec's code is: its file, or a namespace package's directories."""
    if spec is None:
        return ()
    if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
        return (spec.origin,)
    return tuple(spec.submodule_search_locations or ())


def _forget(top: str, root: Path) -> None:
    """Drops the cached `top` package when it is the user's (so edited code is what runs) or when `top` is
    now found in the user's root but was imported from elsewhere (another project's package of that name)."""
    cached = sys.modules.get(top)
    if cached is None:
        return
    was = _places(getattr(cached, "__spec__", None))
    now = _places(importlib.machinery.PathFinder.find_spec(top, [str(root), *sys.path]))
    if any(_inside(p, root) for p in was) or (was != now and any(_inside(p, root) for p in now)):
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]


def _import(module: str, root: Path, ref: str, what: str) -> ModuleType:
    top = module.split(".")[0]
    _forget(top, root)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        where = _location(e, root)
        if where is None and e.name is not None and (e.name == module or module.startswith(e.name + ".")):
            raise UserCodeError(
                f"{root}: {what} {ref}: no module {e.name!r} in the project root {root} (the training config's "
                f"directory); create {e.name.replace('.', '/')}.py (or a package) there, or fix the reference"
            ) from None
        raise _failure(e, root, f"importing {module} for {what} {ref}", None) from None
    except Exception as e:  # noqa: BLE001 - any failure of the user's module is reported at its line
        raise _failure(e, root, f"importing {module} for {what} {ref}", None) from None


def _failure(error: BaseException, root: Path, doing: str, fallback: Optional[tuple[str, int]]) -> UserCodeError:
    where = _location(error, root) or fallback
    at = f"{where[0]}:{where[1]}: " if where else f"{root}: "
    return UserCodeError(f"{at}{doing} failed with {_describe(error)}; fix it there and run again "
                         "(nothing was trained or registered)")


def load_callable(ref: str, root: Path, what: str) -> Callable[..., Any]:
    """The function `ref` ("module:function") names, imported from `root` first.

    `what` says what it is for in messages ("builder", "data loader"). Raises UserCodeError at the
    user's file:line for a syntax or import error in their module, or a name it does not define.
    """
    module_name, name = split_ref(ref)
    root = Path(root).resolve()
    with _first_on_path(root), redirect_stdout(sys.stderr):
        module = _import(module_name, root, ref, what)
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        defined = sorted(k for k, v in vars(module).items()
                         if inspect.isfunction(v) and v.__module__ == module.__name__ and not k.startswith("_"))
        problem = f"has no function {name!r}" if fn is None else f"defines {name!r} as a {type(fn).__name__}, not a function"
        raise UserCodeError(
            f"{getattr(module, '__file__', module_name)}:1: {what} {ref}: module {module_name} {problem} "
            f"(its functions: {', '.join(defined) or 'none'}); fix the reference in the training config"
        )
    return fn


def run_user(fn: Callable[..., Any], *args: Any, root: Path, what: str) -> Any:
    """`fn(*args)` with the project on sys.path and its prints on stderr; any exception becomes a
    UserCodeError at the user's line.

    The line is the deepest frame of the traceback in the user's files, else `fn`'s definition.
    """
    root = Path(root).resolve()
    # stdout is the CLI's JSON: whatever the user's code prints (a model summary, progress) goes to stderr.
    with _first_on_path(root), redirect_stdout(sys.stderr):
        try:
            return fn(*args)
        except UserCodeError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's code may raise anything; all of it is theirs to fix
            raise _failure(e, root, what, definition(fn)) from None


def takes_argument(fn: Callable[..., Any]) -> bool:
    """Whether `fn` accepts one positional argument (a loader may take `params` or nothing)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    return any(p.kind in kinds for p in signature.parameters.values())


def _hash_files(h: "hashlib._Hash", base: Path, files: list[Path]) -> None:
    for path in sorted(files, key=lambda p: p.relative_to(base).as_posix()):
        h.update(path.relative_to(base).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")


def code_digest(ref: str, root: Path) -> str:
    """sha256 over the user's code behind `ref`, without importing it.

    The top-level package holding the module (every `*.py` under it, sorted relative path + bytes), or
    the single module file, found on the project root first (then sys.path) by the import machinery's
    path finder, which neither imports nor consults already imported modules.
    """
    module_name, _ = split_ref(ref)
    top = module_name.split(".")[0]
    root = Path(root).resolve()
    spec = importlib.machinery.PathFinder.find_spec(top, [str(root), *sys.path])
    if spec is None:
        raise UserCodeError(f"{root}: {ref}: no module or package {top!r} in the project root {root} (the training "
                            f"config's directory) or the environment; create it or fix the reference")
    h = hashlib.sha256(top.encode() + b"\0")
    if spec.submodule_search_locations:
        for location in sorted(spec.submodule_search_locations):
            base = Path(location)
            _hash_files(h, base.parent, [p for p in base.rglob("*.py") if "__pycache__" not in p.parts])
    elif spec.origin and Path(spec.origin).is_file():
        _hash_files(h, Path(spec.origin).parent, [Path(spec.origin)])
    else:
        # Built into the interpreter: its identity is the Python version, already in the report.
        h.update(str(spec.origin).encode())
    return h.hexdigest()


def build_user_model(cfg: TrainConfig, data: "Dataset") -> "keras.Model":
    """The Keras model `cfg.builder(params, DataSpec)` returns (called by model/train.py, imports Keras).

    Raises UserCodeError at the user's line when the builder cannot be imported or raises, and at the
    builder's `def` when it returns anything but a `keras.Model`. Compiling and checking the output
    shape against the task are the caller's.
    """
    import keras

    if cfg.builder is None:
        raise ValueError("build_user_model needs a config with a builder")
    fn = load_callable(cfg.builder, cfg.root, "builder")
    spec = DataSpec(input_shape=data.input_shape, input_dtype=data.input_dtype, task=data.task,
                    n_classes=data.n_classes if data.task != "regression" else None, x_train=data.x_train)
    model = run_user(fn, dict(cfg.params), spec, root=cfg.root, what=f"builder {cfg.builder}")
    if not isinstance(model, keras.Model):
        file, line = definition(fn)
        raise UserCodeError(
            f"{file}:{line}: builder {cfg.builder} returned {type(model).__name__}, not a keras.Model; return the "
            "model it builds (keras.Sequential or keras.Model(inputs, outputs))"
        )
    return model
