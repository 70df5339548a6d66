import numpy as np
import pytest
import torch

from graphwalk.build.activations import capture_activations, load_model
from graphwalk.errors import InputError


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def test_hooks_capture_each_layer_and_match_a_manual_forward():
    m = _model()
    x = torch.randn(40, 6)
    acts = capture_activations(m, x, ["0", "2"], batch_size=16)
    with torch.no_grad():
        h = m[0](x)
        out = m[2](torch.relu(h))
    np.testing.assert_allclose(acts["0"], h.numpy(), rtol=1e-5)
    np.testing.assert_allclose(acts["2"], out.numpy(), rtol=1e-5)
    assert m.training  # mode restored
    assert not m[0]._forward_hooks  # hooks removed


def test_unknown_layer_lists_the_real_ones():
    with pytest.raises(InputError, match="no layer 'fc9'.*0, 1, 2"):
        capture_activations(_model(), torch.randn(2, 6), ["fc9"])


def test_load_model_roundtrip_and_errors(tmp_path):
    m = _model()
    torch.save(m, tmp_path / "m.pt")
    assert isinstance(load_model(tmp_path / "m.pt"), torch.nn.Sequential)
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(
        InputError, match="not an nn.Module.*load_model_file\\(path, input_shape, arch=NAME\\)"
    ):
        load_model(tmp_path / "sd.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="could not load"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "none.pt")
