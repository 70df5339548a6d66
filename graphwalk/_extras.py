"""Optional parts and the extras that install them: one place that imports an optional package
and, when it is missing, says which extra brings it.

``pip install graphwalk`` gives the index, the samplers, the learned walker and ``graphwalk
train`` on the scikit-learn digits; the extras add the rest (``make demo`` and ``make test``
install them all through ``requirements/dev.txt``):

=============  ====================================  ==========================================
extra          brings                                for
=============  ====================================  ==========================================
``plots``      matplotlib                            ``inspect --plot``, comparison and policy
                                                     plots
``mnist1d``    mnist1d                               the embedded mnist1d dataset (the demo's)
``vision``     torchvision                           CIFAR-10/100, MNIST, ResNet-18
``lightning``  pytorch-lightning                     ``graphwalk.learn.lightning``
``hf``         transformers, accelerate              ``graphwalk.learn.hf``
``ray``        ray                                   ``graphwalk index --engine ray`` (the
                                                     sharded build on a Ray cluster)
``all``        every one of the above
=============  ====================================  ==========================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "missing", "require"]

#: the extra that installs each optional top-level package
EXTRAS = {
    "matplotlib": "plots",
    "mnist1d": "mnist1d",
    "torchvision": "vision",
    "pytorch_lightning": "lightning",
    "transformers": "hf",
    "ray": "ray",
}


def missing(module: str, what: str) -> ImportError:
    """The ``ImportError`` for ``what``, which needs the optional ``module``: it names the extra
    to install (for ``try: import ... except ImportError as e: raise missing(...) from e``)."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top, "all")
    return ImportError(
        f"{what} needs {top}, which is not installed: pip install 'graphwalk[{extra}]'"
    )


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` (a dotted name whose top-level package is optional), or raise
    :func:`missing`'s ``ImportError``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise missing(module, what) from e
