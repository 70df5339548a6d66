"""Models read from files, for their activations (``graphwalk index --model``), without running
code from the file unless it is trusted.

A model file is one of:

* a state dict (``torch.save(net.state_dict(), path)``) of one of graphwalk's models
  (:data:`graphwalk.train.models.MODELS`), named by its architecture: the model is rebuilt by
  :func:`~graphwalk.train.models.build_model` for the items' shape and the weights loaded into it;
* a training run's ``checkpoint.pt`` (:mod:`graphwalk.train.checkpoint`), which names its
  architecture and loss in its config;
* a whole pickled model (``torch.save(model, path)``), any ``nn.Module``: unpickling it can run
  code, so it is loaded only when the caller trusts the file.

The first two are read with ``torch.load(..., weights_only=True)``: tensors and plain containers
only, so nothing in them can run code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from graphwalk.errors import InputError
from graphwalk.train.checkpoint import FORMAT, load_checkpoint
from graphwalk.train.models import MODELS, Net, build_model

__all__ = ["load_model_file", "model_from_state_dict"]

_SHOWN = 3  # keys named in a mismatch message, per kind


def model_from_state_dict(
    state_dict: Mapping[str, Tensor],
    name: str,
    input_shape: tuple[int, ...],
    *,
    source: str = "the state dict",
) -> Net:
    """Rebuild graphwalk's model ``name`` for items of ``input_shape`` and load ``state_dict``.

    The body is :func:`~graphwalk.train.models.build_model`'s for ``name`` and ``input_shape``;
    the head is read from the weights, since its width depends on the label set and the loss the
    model was trained with: ``head.weight`` is the cross-entropy head (its rows: the classes),
    ``head.fc2.weight`` the supervised contrastive projection (its rows: the projection's width).
    Every key and shape must match (strict); torch's global RNG is left as it was.

    Args:
        state_dict: parameter and buffer names to tensors, as ``Net.state_dict()`` gives them.
        name: the architecture, one of :data:`~graphwalk.train.models.MODELS`.
        input_shape: the shape of one item as the dataset gives it, e.g. ``(40,)`` for mnist1d.
        source: what the weights are called in error messages (e.g. the file's path).

    Returns:
        The :class:`~graphwalk.train.models.Net` with the weights, in training mode.

    Raises:
        InputError: an unknown ``name`` (the message lists :data:`MODELS`), a model that does not
            suit ``input_shape``, or weights whose keys or shapes do not match the model (the
            message counts the missing, unexpected and differently shaped keys).
    """
    if name not in MODELS:
        raise InputError(f"unknown architecture {name!r}; choose from {', '.join(MODELS)}")
    _check_tensors(state_dict, source)
    if "head.fc2.weight" in state_dict:
        loss, n_classes, proj_dim = "supcon", 1, int(state_dict["head.fc2.weight"].shape[0])
    else:
        head = state_dict.get("head.weight")
        n_classes = int(head.shape[0]) if head is not None and head.ndim == 2 and len(head) else 1
        loss, proj_dim = "ce", 128
    with torch.random.fork_rng(devices=[]):  # the initial weights are replaced: draw privately
        try:
            net = build_model(name, input_shape, n_classes, loss=loss, proj_dim=proj_dim)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from exc
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    reshaped = [
        k for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or reshaped:
        parts = []
        if missing:
            parts.append(f"{_keys(missing)} missing ({_some(missing)})")
        if unexpected:
            parts.append(f"{_keys(unexpected)} unexpected ({_some(unexpected)})")
        if reshaped:
            k = reshaped[0]
            parts.append(
                f"{_keys(reshaped)} of another shape ({k}: {tuple(state_dict[k].shape)} in the "
                f"weights, {tuple(own[k].shape)} in the model)"
            )
        raise InputError(
            f"{source} does not fit architecture {name!r} for items of shape "
            f"{tuple(input_shape)}: {', '.join(parts)}; give the architecture it was trained "
            f"as ({', '.join(MODELS)}) and data of the shape it was trained on"
        )
    net.load_state_dict(state_dict)
    return net


def load_model_file(
    path: str | os.PathLike[str],
    input_shape: tuple[int, ...],
    *,
    arch: str | None = None,
    trust_pickle: bool = False,
) -> nn.Module:
    """Load the model in ``path`` for items of ``input_shape``: a state dict with its
    architecture ``arch``, a training run's ``checkpoint.pt`` (``arch`` is read from it), or,
    only with ``trust_pickle``, a whole pickled ``nn.Module``.

    .. warning:: With ``trust_pickle=True`` a file holding a pickled model is unpickled
       (``torch.load(weights_only=False)``), which runs whatever code it carries: pass it only
       for files you trust. State dicts and run checkpoints never need it.

    Args:
        path: the file.
        input_shape: the shape of one item the model will be given (the body is built for it).
        arch: the architecture of a state dict, one of :data:`~graphwalk.train.models.MODELS`;
            for a run's checkpoint it may be given if it names the run's own.
        trust_pickle: unpickle a whole model (runs code from the file).

    Returns:
        The model (a :class:`~graphwalk.train.models.Net` unless a pickled model was trusted).

    Raises:
        InputError: a missing or unreadable file, an unknown ``arch``, a state dict without
            ``arch`` or that does not fit it, a file that is neither a state dict nor a run's
            checkpoint, or a pickled model without ``trust_pickle``.
    """
    if arch is not None and arch not in MODELS:
        raise InputError(f"unknown architecture {arch!r} (--arch); choose from {', '.join(MODELS)}")
    if not os.path.exists(path):
        raise InputError(f"model file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if code is None:
            raise InputError(
                f"could not read model file {path} ({type(exc).__name__}): it is not a file "
                "torch.save wrote, or it is corrupt"
            ) from exc
        if not trust_pickle:
            raise InputError(
                f"model file {path} holds a pickled object (it imports {code.group(1)}), not "
                "only data: unpickling it can run code; pass --trust-model if you trust the file, "
                "or save model.state_dict() and load that with --arch NAME"
            ) from exc
        if arch is not None:
            raise InputError(
                f"--arch {arch} is for a state dict; model file {path} holds a whole model "
                f"({code.group(1)}): drop --arch"
            ) from exc
        from graphwalk.build.activations import load_model

        model: nn.Module = load_model(path)
        return model
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return _run_model(path, input_shape, arch)
    if not isinstance(obj, Mapping) or not obj:
        what = (
            f"an empty {type(obj).__name__}"
            if isinstance(obj, Mapping)
            else f"a {type(obj).__name__}"
        )
        raise InputError(
            f"model file {path} holds {what}, not a state dict (a mapping of "
            "names to tensors, torch.save(model.state_dict(), path)) or a graphwalk run's "
            "checkpoint.pt"
        )
    _check_tensors(obj, f"model file {path}")
    if arch is None:
        raise InputError(
            f"model file {path} is a state dict: name its architecture with --arch "
            f"({', '.join(MODELS)})"
        )
    return model_from_state_dict(obj, arch, input_shape, source=f"the state dict in {path}")


def _run_model(path: str | os.PathLike[str], input_shape: tuple[int, ...], arch: str | None) -> Net:
    """The model of a run's checkpoint: its architecture from the run's config."""
    from pathlib import Path

    ck = load_checkpoint(Path(path))
    config: Any = ck.get("config")
    weights = ck.get("model")
    name = config.get("model") if isinstance(config, dict) else None
    if not isinstance(name, str) or not isinstance(weights, Mapping):
        raise InputError(
            f"checkpoint {path} has no model in it (no config naming the architecture, or no "
            "weights)"
        )
    if arch is not None and arch != name:
        raise InputError(
            f"--arch {arch} does not match checkpoint {path}, whose run trained a {name!r}: "
            f"drop --arch (a run's checkpoint names its own)"
        )
    return model_from_state_dict(weights, name, input_shape, source=f"the model in {path}")


def _check_tensors(state_dict: Mapping[Any, Any], source: str) -> None:
    bad = [k for k, v in state_dict.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        k = bad[0]
        raise InputError(
            f"{source} is not a state dict: {len(bad)} of its entries are not a name and a "
            f"tensor (e.g. {k!r}: {type(state_dict[k]).__name__})"
        )


def _keys(keys: list[str]) -> str:
    return f"{len(keys)} key{'s' if len(keys) != 1 else ''}"


def _some(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")
