"""Model families built from pydl.nn."""
from .mlp import MLP

__all__ = ["MLP"]
from .gcn import GCN, GCNConv  # noqa: E402
from .dqn import QNetwork  # noqa: E402

__all__ += ["GCN", "GCNConv", "QNetwork"]
