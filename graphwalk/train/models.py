"""The models ``graphwalk train`` trains: a body that maps an item to a feature vector and a head.

Four architectures, each built for the shape of one item as the dataset gives it (mnist1d
``(40,)``, digits ``(64,)`` flat, mnist ``(1, 28, 28)``, cifar ``(3, 32, 32)``):

* ``mlp`` — the MNIST-1D paper's MLP (Greydanus 2020): ``Linear(in, 100)-ReLU-Linear(100, 100)-ReLU``,
  100 features; any input shape (it is flattened first).
* ``cnn1d`` — the MNIST-1D paper's ``ConvBase``: three ``Conv1d`` layers of 25 channels, stride 2,
  padding 1, kernel sizes 5, 3, 3, each followed by a ReLU, flattened (``25 * L'`` features, 125
  for length 40). 1-D inputs only.
* ``cnn`` — a small 2-D net: three blocks ``conv3x3-BN-ReLU-maxpool2`` with 32, 64, 128 channels,
  then a global average pool, 128 features. Images ``(C, H, W)``, or flat inputs whose length is a
  square (digits ``(64,)`` is read as ``(1, 8, 8)``). A block's pool is left out once the feature
  map is down to one pixel, so any size from 1x1 up works.
* ``resnet18`` — torchvision's ResNet-18 adapted to small images: ``conv1`` is a 3x3 convolution,
  stride 1, padding 1, taking the input's channels; no max-pool; 512 features.

:class:`Net` is ``head(body(x))``. With the cross-entropy loss the head is one ``Linear`` to the
class logits; with the supervised contrastive loss it is a projection MLP and evaluation uses the
body's features. Module names are stable, for ``--layers`` (``named_modules()``): ``body.fc1``,
``body.act1``, ``body.conv2``, ``body.block3``, ``body.layer4``, ``head``, ``head.fc2``, ...
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from graphwalk.errors import InputError
from graphwalk.train.losses import LOSSES
from graphwalk.validation import check_int

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_OPTIM",
    "MODELS",
    "Net",
    "SUITS",
    "build_model",
    "default_optim",
]

#: Model names :func:`build_model` knows.
MODELS: tuple[str, ...] = ("mlp", "cnn1d", "cnn", "resnet18")

#: The models that suit each dataset (the first is not the default: see :data:`DEFAULT_MODEL`).
SUITS: dict[str, tuple[str, ...]] = {
    "mnist1d": ("mlp", "cnn1d"),
    "digits": ("mlp", "cnn"),
    "mnist": ("mlp", "cnn", "resnet18"),
    "cifar10": ("mlp", "cnn", "resnet18"),
    "cifar100": ("mlp", "cnn", "resnet18"),
}

#: The model each dataset trains when none is named.
DEFAULT_MODEL: dict[str, str] = {
    "mnist1d": "mlp",
    "digits": "mlp",
    "mnist": "cnn",
    "cifar10": "cnn",
    "cifar100": "cnn",
}

#: ``(optimizer, learning rate, weight decay)`` each model trains with unless told otherwise.
DEFAULT_OPTIM: dict[str, tuple[str, float, float]] = {
    "mlp": ("adam", 1e-2, 0.0),
    "cnn1d": ("adam", 1e-2, 0.0),
    "cnn": ("sgd", 0.05, 5e-4),
    "resnet18": ("sgd", 0.05, 5e-4),
}

_MLP_HIDDEN = 100
_CNN1D_CHANNELS = 25
_CNN1D_KERNELS = (5, 3, 3)
_CNN_CHANNELS = (32, 64, 128)


class Net(nn.Module):
    """A body that maps a batch of items to features, and a head on top: ``head(body(x))``.

    Attributes:
        body: input ``(n, *input_shape)`` -> features ``(n, feat_dim)``.
        head: features -> logits ``(n, n_classes)`` (``loss="ce"``) or the unnormalised
            projection ``(n, proj_dim)`` (``loss="supcon"``).
        feat_dim: the number of features the body outputs.
        name: the architecture, one of :data:`MODELS`.
        loss: the loss the head was built for, one of ``graphwalk.train.losses.LOSSES``.
    """

    def __init__(self, body: nn.Module, head: nn.Module, feat_dim: int, name: str, loss: str):
        super().__init__()
        self.body = body
        self.head = head
        self.feat_dim = feat_dim
        self.name = name
        self.loss = loss

    def forward(self, x: Tensor) -> Tensor:
        """Return ``head(body(x))``: logits, or the unnormalised projection for supcon."""
        out: Tensor = self.head(self.body(x))
        return out

    def features(self, x: Tensor) -> Tensor:
        """Return the body's features ``(n, feat_dim)`` (what evaluation and kNN use)."""
        out: Tensor = self.body(x)
        return out


def default_optim(name: str) -> tuple[str, float, float]:
    """Return ``(optimizer, learning rate, weight decay)`` for the model ``name``.

    Raises:
        InputError: ``name`` is not one of :data:`MODELS`.
    """
    _check_name(name)
    return DEFAULT_OPTIM[name]


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    loss: str = "ce",
    proj_dim: int = 128,
) -> Net:
    """Build the model ``name`` for items of shape ``input_shape``, freshly initialised.

    Initialisation draws from torch's global generator: ``torch.manual_seed(s)`` before the call
    makes the parameters reproducible.

    Args:
        name: one of :data:`MODELS`.
        input_shape: the shape of ONE item as the dataset gives it, e.g. ``(40,)`` for mnist1d,
            ``(64,)`` for digits, ``(1, 28, 28)`` for mnist, ``(3, 32, 32)`` for cifar.
        n_classes: the number of classes (the width of the logits for ``loss="ce"``).
        loss: ``"ce"`` (the head is ``Linear(feat_dim, n_classes)``) or ``"supcon"`` (the head is
            ``Linear(feat_dim, feat_dim)-ReLU-Linear(feat_dim, proj_dim)``).
        proj_dim: the width of the supcon projection; ignored for ``"ce"``.

    Returns:
        A :class:`Net` in training mode.

    Raises:
        InputError: an unknown name or loss, a bad shape or size, or a model that does not suit
            the input (``cnn1d`` on images, ``cnn``/``resnet18`` on a 1-D input whose length is
            not a square); the message names the models that do.
    """
    _check_name(name)
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    shape = _check_shape(input_shape)
    n_classes = _positive_int(n_classes, "n_classes")
    proj_dim = _positive_int(proj_dim, "proj_dim")
    suited = _suited(shape)
    if name not in suited:
        raise InputError(
            f"model {name!r} does not suit input of shape {shape} ({_TAKES[name]}); "
            f"choose from {', '.join(suited)}"
        )
    if name == "mlp":
        body, feat_dim = _mlp_body(shape)
    elif name == "cnn1d":
        body, feat_dim = _cnn1d_body(shape)
    elif name == "cnn":
        body, feat_dim = _cnn_body(shape, _image_shape(shape))
    else:
        body, feat_dim = _resnet18_body(shape, _image_shape(shape))
    head: nn.Module
    if loss == "ce":
        head = nn.Linear(feat_dim, n_classes)
    else:
        head = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(feat_dim, feat_dim),
                act1=nn.ReLU(),
                fc2=nn.Linear(feat_dim, proj_dim),
            )
        )
    return Net(body, head, feat_dim, name, loss)


_TAKES = {
    "mlp": "it takes any shape",
    "cnn1d": "it takes 1-D signals (length,) or (channels, length)",
    "cnn": "it takes images (channels, height, width) or flat vectors whose length is a square",
    "resnet18": "it takes images (channels, height, width) or flat vectors whose length is a square",
}


def _check_name(name: str) -> None:
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def _positive_int(value: object, what: str) -> int:
    """``value`` as an int (NumPy integers too) if it is a positive integer, else InputError."""
    return check_int(what, value, minimum=1)


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
        ok = len(shape) > 0 and all(
            s > 0 and s == d for s, d in zip(shape, input_shape, strict=True)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"input_shape must be a non-empty tuple of positive integers (the shape of one "
            f"item, e.g. (40,) or (3, 32, 32)), got {input_shape!r}"
        )
    return shape


def _square_side(length: int) -> int | None:
    side = math.isqrt(length)
    return side if side * side == length else None


def _suited(shape: tuple[int, ...]) -> tuple[str, ...]:
    """The models (in :data:`MODELS` order) that can take items of this shape."""
    suited = ["mlp"]
    if len(shape) in (1, 2) and _cnn1d_length(shape[-1]) > 0:
        suited.append("cnn1d")
    if len(shape) == 3 or (len(shape) == 1 and _square_side(shape[0]) is not None):
        suited += ["cnn", "resnet18"]
    return tuple(suited)


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    side = _square_side(shape[0])
    assert side is not None  # checked by _suited
    return 1, side, side


def _mlp_body(shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    n_in = math.prod(shape)
    body = nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            fc1=nn.Linear(n_in, _MLP_HIDDEN),
            act1=nn.ReLU(),
            fc2=nn.Linear(_MLP_HIDDEN, _MLP_HIDDEN),
            act2=nn.ReLU(),
        )
    )
    return body, _MLP_HIDDEN


def _cnn1d_length(length: int) -> int:
    """The signal length after the cnn1d convolutions (stride 2, padding 1); <= 0: too short."""
    for k in _CNN1D_KERNELS:
        if length + 2 < k:
            return 0
        length = (length + 2 - k) // 2 + 1
    return length


def _cnn1d_body(shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if len(shape) == 1:
        layers["unflatten"] = nn.Unflatten(1, (1, shape[0]))
    in_ch = 1 if len(shape) == 1 else shape[0]
    for i, k in enumerate(_CNN1D_KERNELS, start=1):
        layers[f"conv{i}"] = nn.Conv1d(in_ch, _CNN1D_CHANNELS, k, stride=2, padding=1)
        layers[f"act{i}"] = nn.ReLU()
        in_ch = _CNN1D_CHANNELS
    layers["flatten"] = nn.Flatten()
    return nn.Sequential(layers), _CNN1D_CHANNELS * _cnn1d_length(shape[-1])


def _cnn_body(shape: tuple[int, ...], image: tuple[int, int, int]) -> tuple[nn.Module, int]:
    c, h, w = image
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if len(shape) == 1:
        layers["unflatten"] = nn.Unflatten(1, image)
    for i, out_ch in enumerate(_CNN_CHANNELS, start=1):
        block: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(c, out_ch, 3, padding=1, bias=False),
            bn=nn.BatchNorm2d(out_ch),
            act=nn.ReLU(),
        )
        if min(h, w) >= 2:
            block["pool"] = nn.MaxPool2d(2)
            h, w = h // 2, w // 2
        layers[f"block{i}"] = nn.Sequential(block)
        c = out_ch
    layers["avgpool"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    return nn.Sequential(layers), _CNN_CHANNELS[-1]


def _resnet18_body(shape: tuple[int, ...], image: tuple[int, int, int]) -> tuple[nn.Module, int]:
    from graphwalk._extras import require

    net = require("torchvision.models", "the resnet18 model").resnet18(weights=None)
    conv1 = nn.Conv2d(image[0], 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if len(shape) == 1:
        layers["unflatten"] = nn.Unflatten(1, image)
    layers.update(
        conv1=conv1,
        bn1=net.bn1,
        relu=net.relu,
        layer1=net.layer1,
        layer2=net.layer2,
        layer3=net.layer3,
        layer4=net.layer4,
        avgpool=net.avgpool,
        flatten=nn.Flatten(),
    )
    return nn.Sequential(layers), net.fc.in_features
