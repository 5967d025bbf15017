"""Copying pydl weights into a PyTorch module of the same architecture."""
import numpy as np
import torch


def linear_from(pydl_linear) -> torch.nn.Linear:
    w = pydl_linear.weight.detach().cpu().numpy()
    has_bias = pydl_linear.bias is not None
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=has_bias, dtype=torch.from_numpy(w).dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
        if has_bias:
            lin.bias.copy_(torch.from_numpy(pydl_linear.bias.detach().cpu().numpy()))
    return lin


def mlp_from(pydl_mlp) -> torch.nn.Sequential:
    """The torch twin of pydl.models.MLP (ReLU; dropout layers kept with the same p)."""
    import pydl

    layers = []
    for m in pydl_mlp.net:
        if isinstance(m, pydl.nn.Linear):
            layers.append(linear_from(m))
        elif isinstance(m, pydl.nn.Dropout):
            layers.append(torch.nn.Dropout(m.p))
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)
