"""Autograd: the graph (function.py), grad modes, gradcheck and anomaly detection."""
from .anomaly import detect_anomaly
from .function import Context, Function, backward
from .gradcheck import gradcheck
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Context", "Function", "backward", "detect_anomaly", "enable_grad", "gradcheck",
           "is_grad_enabled", "no_grad", "set_grad_enabled"]
