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
