"""detect_anomaly names the op that first produced NaN or inf, forward or backward."""
import pytest

import pydl
import pydl.nn.functional as F


def test_forward_nan_is_named():
    x = pydl.tensor([-1.0, 4.0], requires_grad=True)
    with pydl.autograd.detect_anomaly():
        with pytest.raises(FloatingPointError, match="Sqrt produced NaN"):
            x.sqrt()


def test_backward_inf_is_named():
    x = pydl.tensor([0.0, 4.0], requires_grad=True)
    y = (x.sqrt() * 2).sum()  # finite forward; d sqrt / dx at 0 is inf
    with pydl.autograd.detect_anomaly():
        with pytest.raises(FloatingPointError, match="Sqrt.backward"):
            y.backward()


def test_clean_graph_passes_and_mode_is_scoped():
    x = pydl.randn(4, 5, requires_grad=True)
    with pydl.autograd.detect_anomaly():
        F.cross_entropy(x, pydl.tensor([0, 1, 2, 3])).backward()
    assert x.grad is not None
    assert not pydl.autograd.anomaly.is_enabled()
    pydl.tensor([-1.0], requires_grad=True).log()  # NaN outside the mode: no error
