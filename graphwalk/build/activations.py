"""Item vectors from a model's activations at one or several layers (forward hooks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.progress import progress

__all__ = ["capture_activations", "load_model"]


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a checkpoint saved with ``torch.save(model)`` (a whole ``nn.Module``).

    .. warning:: This unpickles the file (``weights_only=False``), which runs any code it
       carries: load only checkpoints you trust. A state dict of one of graphwalk's models, or a
       run's ``checkpoint.pt``, loads without running code:
       :func:`graphwalk.train.model_files.load_model_file`.
    """
    import torch

    if not os.path.exists(path):
        raise InputError(f"model checkpoint {path} does not exist")
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(f"could not load model checkpoint {path}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise InputError(
            f"checkpoint {path} holds a {type(model).__name__}, not an nn.Module; a state dict "
            "of a graphwalk model loads, without unpickling, with its architecture: "
            "graphwalk.train.model_files.load_model_file(path, input_shape, arch=NAME)"
        )
    return model


def capture_activations(
    model: Any,
    inputs: Any,
    layers: Sequence[str],
    *,
    batch_size: int = 512,
    show_progress: bool = False,
) -> dict[str, npt.NDArray[np.float32]]:
    """Run ``model`` over ``inputs`` in eval mode and return each layer's flattened output.

    Args:
        model: an ``nn.Module``.
        inputs: a tensor ``(n, ...)`` of model inputs.
        layers: names from ``model.named_modules()``.

    Returns:
        ``{layer: (n, dim) float32}``, in the order of ``layers``.
    """
    import torch

    modules = dict(model.named_modules())
    if not layers:
        raise InputError("no layers given; name at least one of the model's modules")
    missing = [name for name in layers if name not in modules or name == ""]
    if missing:
        names = [n for n in modules if n]
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        raise InputError(f"the model has no layer {missing[0]!r}; its layers are: {shown}")
    captured: dict[str, list[npt.NDArray[np.float32]]] = {name: [] for name in layers}
    hooks = []
    for name in layers:

        def hook(_m: Any, _inp: Any, out: Any, name: str = name) -> None:
            t = out[0] if isinstance(out, (tuple, list)) else out
            captured[name].append(t.detach().reshape(t.shape[0], -1).float().cpu().numpy())

        hooks.append(modules[name].register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            n = int(inputs.shape[0])
            starts = range(0, n, batch_size)
            for s in progress(
                starts,
                enabled=show_progress,
                desc="activations",
                total=(n + batch_size - 1) // batch_size,
                unit="batch",
            ):
                model(inputs[s : s + batch_size])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {
        name: np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
        for name, parts in captured.items()
    }
