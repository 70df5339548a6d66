"""Optional parts name the extra that installs them when their package is missing."""

import sys

import pytest

from graphwalk._extras import EXTRAS, missing, require


def test_every_optional_package_has_an_extra_in_pyproject():
    from pathlib import Path

    import tomllib

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for package, extra in EXTRAS.items():
        assert extra in extras and f"graphwalk[{extra}]" not in extras[extra]
        assert any(package.replace("_", "-") in dep for dep in extras[extra]), package


@pytest.fixture
def without(monkeypatch):
    """Make importing a package (and its submodules) fail, as if it were not installed (a None
    in sys.modules makes the import system raise ImportError)."""

    def hide(name):
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setitem(sys.modules, name, None)

    return hide


def test_require_names_the_extra(without):
    without("matplotlib")
    with pytest.raises(ImportError, match=r"the plot needs matplotlib.*graphwalk\[plots\]"):
        require("matplotlib.figure", "the plot")
    assert "graphwalk[vision]" in str(missing("torchvision.models", "resnet18"))


def test_a_missing_dataset_package_is_one_clear_error(without):
    from graphwalk.datasets import _mnist1d_arrays

    _mnist1d_arrays.cache_clear()
    without("mnist1d")
    try:
        with pytest.raises(
            ImportError, match=r"mnist1d dataset needs mnist1d.*graphwalk\[mnist1d\]"
        ):
            _mnist1d_arrays()
    finally:
        _mnist1d_arrays.cache_clear()


@pytest.mark.slow
def test_the_core_runs_without_any_extra(tmp_path):
    """An install without extras: index, sampler, learned walker and `graphwalk train` on digits
    (matplotlib, torchvision, mnist1d, Lightning and transformers all missing)."""
    import subprocess

    code = (
        "import sys\n"
        "for m in ('matplotlib', 'torchvision', 'mnist1d', 'pytorch_lightning', 'transformers'):\n"
        "    sys.modules[m] = None\n"
        "import numpy as np, graphwalk as gw\n"
        "from graphwalk.learn import make_policy\n"
        "x = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)\n"
        "idx = gw.build_index(x, labels=np.arange(300) % 3, clusters=6, graphs=['er', 'knn'])\n"
        "s = gw.GraphWalkBatchSampler(idx, 32, graph='er', policy=make_policy('exp3s', idx, 'er'))\n"
        "for b in s: s.report(1.0)\n"
        "from graphwalk.cli import main\n"
        f"rc = main(['train', '--dataset', 'digits', '--epochs', '1', '--out', {str(tmp_path / 'r')!r}])\n"
        "assert rc == 0, rc\n"
        "rc = main(['train', '--dataset', 'digits', '--epochs', '1', '--seeds', '0,1', "
        f"'--compare', 'random,er:policy=exp3s', '--out', {str(tmp_path / 'c')!r}])\n"
        "assert rc == 0, rc\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
    assert "policy.png is not drawn" in r.stderr and "graphwalk[plots]" in r.stderr
    assert (tmp_path / "c" / "compare.md").is_file()
    assert not (tmp_path / "c" / "compare-accuracy.png").exists()


def test_the_cli_says_which_extra_a_command_needs(tmp_path, capsys, without):
    import numpy as np

    from graphwalk import build_index
    from graphwalk.cli import main

    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    build_index(x, clusters=5, graphs=["er"]).save(tmp_path / "i.gw")
    without("matplotlib")
    rc = main(["inspect", str(tmp_path / "i.gw"), "--plot", str(tmp_path / "p.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "graphwalk[plots]" in err and "Traceback" not in err
