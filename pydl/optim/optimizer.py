"""The optimizer base class: parameter groups, per-parameter state, zero_grad,
and checkpoints in PyTorch's layout.

A subclass passes its hyperparameter defaults to `__init__`, checks them in
`_validate_group`, and implements `step`. Updates are written in place on the
parameters' arrays (`p._data`, NumPy or CuPy), outside the autograd graph, so
one implementation serves every device.
"""
from __future__ import annotations

from collections import defaultdict

from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()

_UNORDERED = ("parameters must come in an ordered sequence, not a set: a set's order changes "
              "between runs, and checkpoints match parameters by position")


def _check_range(name, value, low=0.0, high=None, high_open=True):
    """Raise ValueError unless low <= value (< or <=) high."""
    ok = value >= low
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        bound = f"in [{low}, {high}{')' if high_open else ']'}" if high is not None else f">= {low}"
        raise ValueError(f"invalid {name}: {value} (expected {bound})")


class Optimizer:
    """Base class of pydl's optimizers.

    params: an iterable of tensors, or of dicts each holding 'params' and any
    per-group options that override `defaults`.
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, got a Tensor; "
                            "pass [tensor] instead")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_UNORDERED)
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- groups ------------------------------------------------------------------
    def add_param_group(self, param_group: dict):
        """Add a group of parameters with its own options (missing ones come from defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_UNORDERED)
        elif params is None:
            raise ValueError("a param group needs a 'params' entry")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("cannot optimize a non-leaf Tensor")
            if not p.is_floating_point():
                raise TypeError(f"optimizer can only optimize floating-point Tensors, got {p.dtype}")
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError("a parameter appears more than once in its param group")
        group["params"] = params

        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"param group did not specify a value of required option '{name}'")
            group.setdefault(name, default)
        self._validate_group(group)

        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _validate_group(self, group: dict):
        """Raise ValueError on an invalid hyperparameter of `group` (subclasses override)."""
        if "lr" in group:
            _check_range("lr", group["lr"])

    # ---- gradients and steps ----------------------------------------------------
    def zero_grad(self, set_to_none: bool = True):
        """Clear every parameter's gradient: drop it (default) or fill it with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad._data[...] = 0

    def step(self, closure=None):
        """Update the parameters from their gradients; closure re-evaluates the loss first."""
        raise NotImplementedError

    @staticmethod
    def _evaluate(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ---- checkpoints --------------------------------------------------------------
    def state_dict(self) -> dict:
        """A snapshot of the optimizer in PyTorch's layout.

        {'state': {index: {name: value}}, 'param_groups': [{..., 'params': [index, ...]}]},
        where parameters are numbered in order across groups. Tensor state is copied, so
        the snapshot does not change as training goes on.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: _copy_value(v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict):
        """Restore a snapshot from state_dict(); parameters are matched by position.

        Tensor state is copied onto each parameter's device, and floating-point state takes
        the parameter's dtype ('step' excepted).
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded parameter group {i} has {len(s['params'])} parameters, "
                                 f"the optimizer's has {len(g['params'])}")
        by_index = {}
        for g, s in zip(self.param_groups, saved_groups):
            for p, idx in zip(g["params"], s["params"]):
                by_index[idx] = p

        state = defaultdict(dict)
        for idx, values in state_dict["state"].items():
            p = by_index.get(int(idx))
            if p is None:
                raise ValueError(f"loaded state refers to parameter index {idx}, which no group holds")
            state[p] = {k: _cast_like(v, p, k) for k, v in values.items()}

        groups = []
        for g, s in zip(self.param_groups, saved_groups):
            new = {k: v for k, v in s.items() if k != "params"}
            new["params"] = g["params"]
            groups.append(new)
        for g in groups:
            self._validate_group(g)
        self.state = state
        self.param_groups = groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)


def _copy_value(v):
    if isinstance(v, Tensor):
        return Tensor._wrap(v._data.copy())
    return v


def _cast_like(v, p: Tensor, key: str):
    """A copy of saved state value v placed like parameter p."""
    if not isinstance(v, Tensor):
        return v
    out = v.detach().to(p.device)
    if key != "step" and out.is_floating_point():
        out = out.to(p.dtype)
    return Tensor._wrap(out._data.copy() if out._data is v._data else out._data)
