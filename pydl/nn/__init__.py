"""pydl.nn: Module and Parameter, the layers, activations, normalisations,
losses and containers built on them, `functional` (the ops, as F) and `init`
(weight initialisation)."""
from . import functional, init, utils
from .attention import MultiheadAttention
from .activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .container import ModuleDict, ModuleList, Sequential
from .layers import Dropout, Embedding, Flatten, Identity, Linear
from .loss import (BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, Upsample
from .rnn import GRU, LSTM, GRUCell, LSTMCell
from .transformer import (TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                          TransformerEncoderLayer)

__all__ = [
    "functional", "init", "utils", "Module", "Parameter",
    "Sequential", "ModuleList", "ModuleDict",
    "Linear", "Embedding", "Dropout", "Identity", "Flatten",
    "LayerNorm", "RMSNorm", "BatchNorm1d", "BatchNorm2d",
    "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "Softplus", "Softmax",
    "LogSoftmax",
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
    "BCEWithLogitsLoss",
    "Conv1d", "Conv2d", "ConvTranspose2d",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Upsample",
    "LSTM", "GRU", "LSTMCell", "GRUCell",
]
__all__ += ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
            "TransformerEncoder", "TransformerDecoder"]
