"""Model files for activations (graphwalk.train.model_files, graphwalk index --model): a state
dict with its architecture and a run's checkpoint load without running code and give the same
activations as the whole model; a whole pickled model loads only when trusted."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from graphwalk.build.activations import capture_activations, load_model
from graphwalk.errors import InputError
from graphwalk.index.artifact import GraphIndex
from graphwalk.train.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from graphwalk.train.model_files import load_model_file, model_from_state_dict
from graphwalk.train.models import Net, build_model
from tests.train.conftest import cli


def _trained_a_little(name, shape, loss="ce", n_classes=5):
    """A model whose weights and BatchNorm statistics are not the initial ones."""
    torch.manual_seed(3)
    net = build_model(name, shape, n_classes, loss=loss, proj_dim=16)
    with torch.no_grad():
        net(torch.randn(32, *shape))  # moves the BatchNorm running statistics
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return net


@pytest.mark.parametrize(
    ("name", "shape", "loss", "layers"),
    [
        ("mlp", (40,), "ce", ["body.act1", "head"]),
        ("cnn1d", (40,), "ce", ["body.conv2"]),
        ("cnn", (64,), "supcon", ["body.block2", "head.fc2"]),
    ],
)
def test_state_dict_and_arch_give_the_whole_models_activations(tmp_path, name, shape, loss, layers):
    net = _trained_a_little(name, shape, loss)
    torch.save(net, tmp_path / "whole.pt")
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    x = torch.randn(50, *shape)
    rng_before = torch.random.get_rng_state()
    safe = load_model_file(tmp_path / "sd.pt", shape, arch=name)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG untouched
    trusted = load_model_file(tmp_path / "whole.pt", shape, trust_pickle=True)
    assert isinstance(safe, Net) and (safe.name, safe.loss) == (name, loss)
    want = capture_activations(net, x, layers)
    for model in (safe, trusted, load_model(tmp_path / "whole.pt")):
        got = capture_activations(model, x, layers)
        for layer in layers:
            np.testing.assert_array_equal(got[layer], want[layer])


def test_a_runs_checkpoint_loads_its_architecture_from_the_run(tmp_path, digits_train):
    run = digits_train(tmp_path / "run", sampler="random", epochs=1, model="cnn")
    ck = load_checkpoint(run / CHECKPOINT)
    for arch in (None, "cnn"):
        net = load_model_file(run / CHECKPOINT, (64,), arch=arch)
        assert isinstance(net, Net) and net.name == "cnn"
        got = net.state_dict()
        assert got.keys() == ck["model"].keys()
        assert all(torch.equal(got[k], ck["model"][k]) for k in got)
    with pytest.raises(InputError, match="--arch mlp does not match .* trained a 'cnn'"):
        load_model_file(run / CHECKPOINT, (64,), arch="mlp")
    with pytest.raises(InputError, match=r"checkpoint.pt: model 'cnn' does not suit .*\(40,\)"):
        load_model_file(run / CHECKPOINT, (40,))
    with pytest.raises(InputError, match=r"body.block1.conv.weight: \(32, 1, 3, 3\) in the w"):
        load_model_file(run / CHECKPOINT, (3, 8, 8))


def test_index_takes_a_runs_checkpoint_and_a_state_dict(tmp_path, digits_train, capsys):
    run = digits_train(tmp_path / "run", sampler="random", epochs=1)
    net = load_model_file(run / CHECKPOINT, (64,))
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    torch.save(net, tmp_path / "whole.pt")
    base = ["index", "--dataset", "digits", "--layers", "body.act2", "--k", "5", "--json"]
    given = {
        "ck": ["--model", run / CHECKPOINT],
        "sd": ["--model", tmp_path / "sd.pt", "--arch", "mlp"],
        "whole": ["--model", tmp_path / "whole.pt", "--trust-model"],
    }
    graphs = {}
    for key, flags in given.items():
        rc, out, err = cli(capsys, *base, *flags, "--out", tmp_path / f"{key}.gw")
        assert rc == 0, err
        params = json.loads(out)["build"]
        assert params["layers"] == ["body.act2"]
        assert params.get("arch") == "mlp"
        graphs[key] = GraphIndex.load(tmp_path / f"{key}.gw").graphs["knn"]
    for key in ("sd", "whole"):
        np.testing.assert_array_equal(graphs[key].indices, graphs["ck"].indices)
        np.testing.assert_array_equal(graphs[key].weights, graphs["ck"].weights)


def _index_error(capsys, tmp_path, *flags):
    """Exit status 2 and one line on stderr; nothing written."""
    rc, _, err = cli(
        capsys, "index", "--dataset", "digits", "--layers", "body.act2", *flags,
        "--out", tmp_path / "x.gw",
    )  # fmt: skip
    lines = err.strip("\n").split("\n")
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("graphwalk index: error: "), err
    assert not (tmp_path / "x.gw").exists()
    return lines[0]


class _Touch:
    """Unpickling this creates a file: the stand-in for code in a pickled model."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_each_refusal_is_one_line_naming_the_value_and_the_fix(tmp_path, capsys):
    net = _trained_a_little("mlp", (64,), n_classes=10)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    torch.save(net, tmp_path / "whole.pt")
    torch.save(build_model("mlp", (40,), 10).state_dict(), tmp_path / "sd40.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    torch.save({"w": torch.ones(2), "step": 3}, tmp_path / "mixed.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    sd, whole = tmp_path / "sd.pt", tmp_path / "whole.pt"
    cases = [
        (["--model", sd, "--arch", "vit"], ["unknown architecture 'vit'", "mlp, cnn1d, cnn"]),
        (["--model", sd], ["is a state dict", "--arch", "mlp, cnn1d, cnn, resnet18"]),
        (
            ["--model", sd, "--arch", "cnn"],
            ["'cnn'", "keys missing (body.block1.conv.weight", "unexpected (body.fc1.weight"],
        ),
        (
            ["--model", tmp_path / "sd40.pt", "--arch", "mlp"],
            ["1 key of another shape", "body.fc1.weight: (100, 40)", "(100, 64) in the model"],
        ),
        (["--model", tmp_path / "list.pt", "--arch", "mlp"], ["holds a list, not a state dict"]),
        (["--model", tmp_path / "mixed.pt", "--arch", "mlp"], ["not a state dict", "'step'"]),
        (["--model", tmp_path / "junk.pt", "--arch", "mlp"], ["could not read", "junk.pt"]),
        (["--model", tmp_path / "none.pt", "--arch", "mlp"], ["none.pt does not exist"]),
        (
            ["--model", whole],
            ["pickled object (it imports graphwalk.train.models.Net)", "--trust-model"],
        ),
        (["--model", whole, "--trust-model", "--arch", "mlp"], ["drop --arch"]),
        (["--arch", "mlp"], ["give --model"]),
    ]
    for flags, words in cases:
        line = _index_error(capsys, tmp_path, *flags)
        for w in words:
            assert w in line, (w, line)


def test_a_pickled_object_is_not_run_without_trust(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": _Touch(marker)}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match=r"pickled object \(it imports getattr\).*--trust-model"):
        load_model_file(tmp_path / "evil.pt", (64,))
    assert not marker.exists()
    with pytest.raises(InputError, match="not an nn.Module"):  # trusted: it ran
        load_model_file(tmp_path / "evil.pt", (64,), trust_pickle=True)
    assert marker.exists()


def test_a_checkpoint_without_a_model_is_refused(tmp_path):
    save_checkpoint(tmp_path / CHECKPOINT, {"epoch": 1})
    with pytest.raises(InputError, match="has no model in it"):
        load_model_file(tmp_path / CHECKPOINT, (64,))


def test_model_from_state_dict_reads_the_head_from_the_weights():
    net = _trained_a_little("mlp", (40,), n_classes=7)
    got = model_from_state_dict(net.state_dict(), "mlp", (40,))
    assert got.head.out_features == 7 and got.loss == "ce"
    with pytest.raises(InputError, match="unknown architecture 'vit'; choose from mlp"):
        model_from_state_dict(net.state_dict(), "vit", (40,))
