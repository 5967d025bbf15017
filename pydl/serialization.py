"""Checkpoints as safetensors: tensors plus JSON metadata, never pickle, so loading
a file cannot run code.

`save(tensors, path)` / `load(path)` move a dict of tensors. `save_checkpoint` /
`load_checkpoint` add what resuming a run needs: the model's state and
configuration, the optimizer's and scheduler's state, the step and the RNG state.

Every file carries a format version and a SHA-256 of its tensor data in the
metadata, so a truncated or corrupted file is refused with a `CheckpointError`
(a ValueError naming the file) before anything is copied into a model. Writes go
to a temporary file in the same folder, are fsync'ed and then renamed over the
target: a process killed mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile

import numpy as np

FORMAT = "pydl.checkpoint"
FORMAT_VERSION = 1
_RESERVED = ("format", "format_version", "sha256", "dtypes")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupted, of another version, or
    does not fit the model it is loaded into."""

    def __init__(self, path, problem: str):
        super().__init__(f"checkpoint {os.fspath(path)!r}: {problem}")
        self.path = os.fspath(path)


# ---- tensors <-> bytes -----------------------------------------------------------------

def _to_numpy(name, value) -> np.ndarray:
    from .tensor import Tensor

    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    elif not isinstance(value, np.ndarray):
        raise TypeError(f"save: value of {name!r} is {type(value).__name__}; expected a pydl Tensor "
                        "or a NumPy array")
    return np.require(value, requirements="C")  # ascontiguousarray turns 0-d into 1-d


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _encode(tensors: dict, metadata: dict | None) -> bytes:
    from safetensors.numpy import save as st_save

    arrays, dtypes = {}, {}
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save: tensor names must be strings, got {name!r}")
        a = _to_numpy(name, value)
        if a.dtype.name == "bfloat16":  # safetensors' NumPy side has no bfloat16: store the bits
            dtypes[name] = "bfloat16"
            a = a.view(np.uint16)
        arrays[name] = a
    meta = {}
    for k, v in (metadata or {}).items():
        if k in _RESERVED:
            raise ValueError(f"save: metadata key {k!r} is reserved")
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    meta.update(format=FORMAT, format_version=str(FORMAT_VERSION), sha256=_digest(arrays),
                dtypes=json.dumps(dtypes))
    return st_save(arrays, metadata=meta)


def _atomic_write(path, data: bytes):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _read(path) -> tuple[dict, dict]:
    """(arrays, metadata) of a pydl safetensors file, every check done."""
    from safetensors.numpy import load as st_load

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except OSError as e:
        raise CheckpointError(path, f"cannot be read ({e.strerror})") from None
    if len(data) < 8:
        raise CheckpointError(path, f"truncated: {len(data)} bytes, not a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(path, f"truncated: the header claims {n} bytes, the file has "
                                    f"{len(data) - 8} after the length")
    try:
        header = json.loads(data[8:8 + n])
        meta = header.get("__metadata__") or {}
    except (ValueError, AttributeError):
        raise CheckpointError(path, "corrupted: the header is not valid JSON") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(path, "not a pydl checkpoint (no 'format' entry in its metadata)")
    version = meta.get("format_version")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(path, f"format version {version}, this pydl reads version "
                                    f"{FORMAT_VERSION}")
    try:
        arrays = st_load(data)
    except Exception as e:  # safetensors reports truncation and bad offsets as its own error
        raise CheckpointError(path, f"corrupted or truncated: {e}") from None
    if _digest(arrays) != meta.get("sha256"):
        raise CheckpointError(path, "corrupted: the tensor data does not match its checksum")
    try:
        for name, kind in json.loads(meta.get("dtypes", "{}")).items():
            if kind == "bfloat16":
                import ml_dtypes

                arrays[name] = arrays[name].view(ml_dtypes.bfloat16)
    except (ValueError, KeyError, AttributeError):
        raise CheckpointError(path, "corrupted: bad 'dtypes' metadata") from None
    user = {k: v for k, v in meta.items() if k not in _RESERVED}
    return arrays, user


def save(obj, path, metadata: dict | None = None):
    """Write a dict of tensors (a state_dict) to `path` as safetensors, atomically.
    `metadata` values are strings or JSON-serialisable."""
    if not hasattr(obj, "items"):
        raise TypeError(f"save: expected a dict of tensors, got {type(obj).__name__}")
    _atomic_write(path, _encode(dict(obj.items()), metadata))


def load(path, device: str = "cpu") -> dict:
    """The dict of tensors saved by `save`, on `device`."""
    from .tensor import tensor

    arrays, _ = _read(path)
    return {k: tensor(v, device=device) for k, v in arrays.items()}


def load_metadata(path) -> dict:
    """The user metadata saved with a file (values as strings)."""
    return _read(path)[1]


# ---- checkpoints ---------------------------------------------------------------------------

def _split_state(prefix: str, state: dict, tensors: dict):
    """Move tensor values of a nested dict into `tensors` (keys prefix.path); return the
    rest as a JSON-able tree with {"__tensor__": key} placeholders."""
    from .tensor import Tensor

    def walk(v, path):
        if isinstance(v, (Tensor, np.ndarray)):
            key = f"{prefix}.{path}"
            tensors[key] = v
            return {"__tensor__": key}
        if isinstance(v, dict):
            return {"__dict__": [[walk(k, f"{path}.k{i}"), walk(x, f"{path}.{i}")]
                                 for i, (k, x) in enumerate(v.items())]}
        if isinstance(v, tuple):
            return {"__tuple__": [walk(x, f"{path}.{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [walk(x, f"{path}.{i}") for i, x in enumerate(v)]
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            return v.item()
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"save_checkpoint: cannot store a {type(v).__name__} at {prefix}.{path}")

    return walk(state, "s")


def _join_state(tree, arrays: dict, device: str):
    from .tensor import tensor

    def walk(v):
        if isinstance(v, dict):
            if "__tensor__" in v:
                return tensor(arrays[v["__tensor__"]], device=device)
            if "__tuple__" in v:
                return tuple(walk(x) for x in v["__tuple__"])
            return {walk(k): walk(x) for k, x in v["__dict__"]}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(tree)


def save_checkpoint(path, model=None, optimizer=None, scheduler=None, step: int = 0,
                    config: dict | None = None, extra: dict | None = None, rng: bool = True):
    """Write everything needed to resume a run to `path` (safetensors, atomic).

    config: the model's configuration (JSON), checked against the model's class on load;
    extra: any JSON-able or tensor-valued state a recipe wants back (histories, buffers).
    """
    from . import random as _random

    tensors, meta = {}, {"step": int(step)}
    if model is not None:
        for k, v in model.state_dict().items():
            tensors[f"model.{k}"] = v
        meta["model_class"] = type(model).__name__
    meta["config"] = config or {}
    if optimizer is not None:
        meta["optimizer"] = _split_state("optimizer", optimizer.state_dict(), tensors)
        meta["optimizer_class"] = type(optimizer).__name__
    if scheduler is not None:
        meta["scheduler"] = _split_state("scheduler", scheduler.state_dict(), tensors)
    if rng:
        meta["rng"] = _split_state("rng", _random.get_rng_state(), tensors)
    if extra is not None:
        meta["extra"] = _split_state("extra", extra, tensors)
    save(tensors, path, metadata={k: json.dumps(v) for k, v in meta.items()})


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, restore_rng: bool = True,
                    strict_config: dict | None = None) -> dict:
    """Restore a checkpoint written by `save_checkpoint` into the given objects.

    Everything is checked before anything changes: a file that is damaged, of another
    version, or written for another model (class, keys or shapes) raises a
    CheckpointError and leaves model, optimizer, scheduler and RNG untouched.
    Returns {"step", "config", "extra"}.
    """
    from . import random as _random

    arrays, raw = _read(path)
    try:
        meta = {k: json.loads(v) for k, v in raw.items()}
    except ValueError:
        raise CheckpointError(path, "corrupted: metadata is not valid JSON") from None
    if "step" not in meta:
        raise CheckpointError(path, "holds tensors but no training state (written by pydl.save, "
                                    "not save_checkpoint)")
    config = meta.get("config", {})
    if strict_config is not None and config != strict_config:
        raise CheckpointError(path, f"written for configuration {config}, this run uses {strict_config}")
    model_state = {}
    if model is not None:
        if meta.get("model_class") != type(model).__name__:
            raise CheckpointError(path, f"holds a {meta.get('model_class')!r} model, not a "
                                        f"{type(model).__name__!r}")
        model_state = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
        targets = model.state_dict()
        missing = sorted(set(targets) - set(model_state))
        unexpected = sorted(set(model_state) - set(targets))
        if missing or unexpected:
            raise CheckpointError(path, f"does not fit the model: missing {missing}, unexpected "
                                        f"{unexpected}")
        for k, t in targets.items():
            if tuple(model_state[k].shape) != tuple(t.shape):
                raise CheckpointError(path, f"does not fit the model: {k} has shape "
                                            f"{tuple(model_state[k].shape)}, the model's is "
                                            f"{tuple(t.shape)}")
    device = "cpu"
    if model is not None:
        params = list(model.parameters())
        device = str(params[0].device) if params else "cpu"
    opt_state = sched_state = None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(path, "has no optimizer state")
        if meta.get("optimizer_class") != type(optimizer).__name__:
            raise CheckpointError(path, f"holds {meta.get('optimizer_class')} state, not "
                                        f"{type(optimizer).__name__}")
        opt_state = _join_state(meta["optimizer"], arrays, device)
        saved = opt_state["param_groups"]
        if len(saved) != len(optimizer.param_groups) or any(
                len(s["params"]) != len(g["params"]) for s, g in zip(saved, optimizer.param_groups)):
            raise CheckpointError(path, "optimizer state has other parameter groups than the optimizer")
        # JSON turns integer keys into strings.
        opt_state["state"] = {int(k): v for k, v in opt_state["state"].items()}
    if scheduler is not None:
        if "scheduler" not in meta:
            raise CheckpointError(path, "has no scheduler state")
        sched_state = _join_state(meta["scheduler"], arrays, device)
    rng_state = _join_state(meta["rng"], arrays, "cpu") if restore_rng and "rng" in meta else None

    if model is not None:
        model.load_state_dict(model_state)
    if optimizer is not None:
        optimizer.load_state_dict(opt_state)
    if scheduler is not None:
        scheduler.load_state_dict(sched_state)
    if rng_state is not None:
        _random.set_rng_state(rng_state)
    extra = _join_state(meta["extra"], arrays, "cpu") if "extra" in meta else None
    return {"step": meta["step"], "config": config, "extra": extra}
