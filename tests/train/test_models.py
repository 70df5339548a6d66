import math

import numpy as np
import pytest
import torch
from torch import nn

from graphwalk.errors import InputError
from graphwalk.train.losses import ce_loss, supcon_loss
from graphwalk.train.models import (
    DEFAULT_MODEL,
    DEFAULT_OPTIM,
    MODELS,
    SUITS,
    Net,
    build_model,
    default_optim,
)

# the shape of one item as each dataset gives it
SHAPES = {
    "mnist1d": (40,),
    "digits": (64,),
    "mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
}
FEAT = {"mlp": 100, "cnn1d": 125, "cnn": 128, "resnet18": 512}
SUITED = [(ds, m) for ds, models in SUITS.items() for m in models if ds != "cifar100"]


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_tables_are_consistent():
    assert set(SUITS) == set(DEFAULT_MODEL) == set(SHAPES)
    for ds, models in SUITS.items():
        assert set(models) <= set(MODELS)
        assert DEFAULT_MODEL[ds] in models
    assert set(DEFAULT_OPTIM) == set(MODELS)
    assert default_optim("cnn") == ("sgd", 0.05, 5e-4)
    with pytest.raises(
        InputError, match="unknown model 'vgg'; choose from mlp, cnn1d, cnn, resnet18"
    ):
        default_optim("vgg")


@pytest.mark.parametrize(("dataset", "name"), SUITED)
@pytest.mark.parametrize("loss", ["ce", "supcon"])
def test_suited_pairs_build_and_give_the_right_shapes(dataset, name, loss):
    shape = SHAPES[dataset]
    net = build_model(name, shape, 7, loss=loss, proj_dim=16)
    assert isinstance(net, Net)
    assert net.name == name and net.loss == loss
    assert net.feat_dim == FEAT[name]
    x = torch.randn(3, *shape)
    net.eval()
    with torch.no_grad():
        feats = net.body(x)
        out = net(x)
    assert feats.shape == (3, FEAT[name])
    assert torch.equal(net.features(x), feats)
    assert out.shape == ((3, 7) if loss == "ce" else (3, 16))
    assert torch.isfinite(out).all()
    if loss == "ce":
        assert isinstance(net.head, nn.Linear)
        assert (net.head.in_features, net.head.out_features) == (FEAT[name], 7)
    else:
        linears = [m for m in net.head.modules() if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [
            (FEAT[name], FEAT[name]),
            (FEAT[name], 16),
        ]
        assert any(isinstance(m, nn.ReLU) for m in net.head.modules())


@pytest.mark.parametrize(
    ("name", "shape", "valid"),
    [
        ("cnn1d", (3, 32, 32), "mlp, cnn, resnet18"),
        ("cnn1d", (1, 28, 28), "mlp, cnn, resnet18"),
        ("cnn", (40,), "mlp, cnn1d"),
        ("resnet18", (40,), "mlp, cnn1d"),
        ("cnn", (2, 40), "mlp, cnn1d"),
        ("cnn1d", (2,), "mlp$"),  # too short for three stride-2 convolutions
    ],
)
def test_unsuitable_pairs_name_the_models_that_suit(name, shape, valid):
    with pytest.raises(InputError, match=rf"model '{name}' does not suit.*choose from {valid}"):
        build_model(name, shape, 10)


def test_unknown_names_and_bad_arguments_are_refused():
    with pytest.raises(
        InputError, match="unknown model 'foo'; choose from mlp, cnn1d, cnn, resnet18"
    ):
        build_model("foo", (40,), 10)
    with pytest.raises(InputError, match="unknown loss 'mse'; choose from ce, supcon"):
        build_model("mlp", (40,), 10, loss="mse")
    for shape in [(), (0, 4), (-1,), (2.5,), "40"]:
        with pytest.raises(InputError, match="input_shape must be"):
            build_model("mlp", shape, 10)
    assert build_model("mlp", (40,), np.int64(3)).head.out_features == 3  # NumPy ints are fine
    for bad in [0, 2.0, True]:
        with pytest.raises(
            InputError, match=f"n_classes should be an integer.*, but got n_classes={bad}"
        ):
            build_model("mlp", (40,), bad)
    with pytest.raises(
        InputError, match="n_classes should be an integer >= 1, but got n_classes=0"
    ):
        build_model("mlp", (40,), 0)
    with pytest.raises(InputError, match="proj_dim should be an integer >= 1, but got proj_dim=0"):
        build_model("mlp", (40,), 10, loss="supcon", proj_dim=0)


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("mlp", (40,), ["body.flatten", "body.fc1", "body.act1", "body.fc2", "body.act2"]),
        (
            "cnn1d",
            (40,),
            ["body.conv1", "body.act1", "body.conv2", "body.act2", "body.conv3", "body.act3"],
        ),
        (
            "cnn",
            (64,),
            [
                "body.block1",
                "body.block1.conv",
                "body.block1.bn",
                "body.block2",
                "body.block3",
                "body.block3.pool",
                "body.avgpool",
            ],
        ),
        (
            "resnet18",
            (3, 32, 32),
            [
                "body.conv1",
                "body.bn1",
                "body.layer1",
                "body.layer2",
                "body.layer3",
                "body.layer4",
                "body.avgpool",
            ],
        ),
    ],
)
def test_module_names_are_stable(name, shape, expected):
    names = {n for n, _ in build_model(name, shape, 10).named_modules()}
    assert {"body", "head"} <= names
    assert set(expected) <= names
    sup = {n for n, _ in build_model(name, shape, 10, loss="supcon").named_modules()}
    assert {"head.fc1", "head.act1", "head.fc2"} <= sup


def test_layer_outputs_have_the_documented_sizes():
    net = build_model("cnn1d", (40,), 10)
    assert net.body.conv1.kernel_size == (5,) and net.body.conv2.kernel_size == (3,)
    h = net.body.conv1(torch.randn(2, 1, 40))
    assert h.shape == (2, 25, 19)
    # cnn on 8x8: three pools take it down to 1x1, 128 channels
    cnn = build_model("cnn", (64,), 10)
    x = torch.randn(2, 64)
    out = cnn.body.block3(cnn.body.block2(cnn.body.block1(cnn.body.unflatten(x))))
    assert out.shape == (2, 128, 1, 1)
    # resnet18 keeps 32x32 until layer2 (stride-1 3x3 stem, no max-pool)
    res = build_model("resnet18", (3, 32, 32), 10)
    assert res.body.conv1.kernel_size == (3, 3) and res.body.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in res.modules())
    assert all(not isinstance(m, nn.Linear) for m in res.body.modules())


def test_parameter_counts_match_the_mnist1d_paper():
    # MLP: Linear(40, 100) - ReLU - Linear(100, 100) - ReLU - Linear(100, 10)
    mlp = (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)
    assert mlp == 15_210
    assert _n_params(build_model("mlp", (40,), 10)) == mlp
    # ConvBase: Conv1d(1, 25, 5) Conv1d(25, 25, 3) Conv1d(25, 25, 3) (stride 2, padding 1):
    # length 40 -> 19 -> 10 -> 5, so the linear layer takes 25 * 5 = 125 features
    conv = (1 * 25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)
    assert conv == 5_210
    assert _n_params(build_model("cnn1d", (40,), 10)) == conv
    # the body alone, and the supcon head on top of it
    assert _n_params(build_model("mlp", (40,), 10).body) == mlp - 1010
    sup = build_model("mlp", (40,), 10, loss="supcon", proj_dim=128)
    assert _n_params(sup.head) == (100 * 100 + 100) + (100 * 128 + 128)


def _templates(shape, n, seed):
    """Two classes: a fixed random template per class plus noise (linearly separable)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(2, *shape, generator=g)
    y = torch.arange(n) % 2
    x = t[y] + 0.3 * torch.randn(n, *shape, generator=g)
    return x, y


@pytest.mark.parametrize(
    ("name", "shape", "n", "steps", "lr", "momentum"),
    [
        ("mlp", (40,), 64, 10, None, 0.0),  # None: Adam at default_optim's rate
        ("cnn1d", (40,), 64, 10, None, 0.0),
        ("cnn", (64,), 32, 8, 0.05, 0.9),
        ("resnet18", (3, 32, 32), 4, 3, 0.01, 0.0),  # a batch of 4: plain SGD, a small rate
    ],
)
def test_a_few_steps_reduce_the_loss(name, shape, n, steps, lr, momentum):
    torch.manual_seed(0)
    net = build_model(name, shape, 2)
    x, y = _templates(shape, n, seed=1)
    opt: torch.optim.Optimizer
    if lr is None:
        kind, rate, _ = default_optim(name)
        assert kind == "adam"
        opt = torch.optim.Adam(net.parameters(), lr=rate)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    losses = []
    for _ in range(steps + 1):
        loss = ce_loss(net(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses


def test_supcon_head_trains_with_the_supcon_loss():
    torch.manual_seed(0)
    net = build_model("mlp", (40,), 2, loss="supcon", proj_dim=8)
    x, y = _templates((40,), 32, seed=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(11):
        loss = supcon_loss(net(x), y, temperature=0.1)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    # 16 items per class: the loss is bounded below by log(15), reached when each class
    # collapses to one point and the two classes are far apart
    floor = math.log(15)
    assert losses[0] > floor + 0.1, losses
    assert losses[-1] < floor + 0.01, losses


@pytest.mark.parametrize(
    ("name", "shape"),
    [("mlp", (40,)), ("cnn1d", (40,)), ("cnn", (64,)), ("resnet18", (3, 32, 32))],
)
def test_the_seed_fixes_the_parameters(name, shape):
    def params(seed):
        torch.manual_seed(seed)
        return build_model(name, shape, 10, loss="supcon").state_dict()

    a, b, c = params(3), params(3), params(4)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    weights = [k for k in a if k.endswith("weight") and a[k].dtype.is_floating_point]
    assert any(not torch.equal(a[k], c[k]) for k in weights)
