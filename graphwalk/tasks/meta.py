"""Meta-learners over episodes: Prototypical Networks, MAML, and the baselines they must beat.

An *episode* is a small classification task: ``n_way`` classes, ``k_shot`` labelled support
items and ``q_query`` query items per class, labels ``0..n_way-1`` within the episode. Everything
here takes plain tensors ``(support_x, support_y, query_x, query_y)``, however the episode was
drawn; :func:`split_episode` cuts one stacked episode tensor in the layout the episode sampler
yields (the support set grouped by class, class 0's ``k_shot`` items first, then the query set
grouped by class the same way).

A learner is an :class:`EpisodeLearner`: :meth:`~EpisodeLearner.logits` classifies the query
items given the support set, and :meth:`~EpisodeLearner.loss` returns the query cross-entropy
(differentiable w.r.t. the net's parameters: the outer optimiser steps outside) and the query
accuracy:

* :class:`ProtoNet` — Prototypical Networks (Snell, Swersky, Zemel 2017,
  https://arxiv.org/abs/1703.05175): each class is the mean of its support items' features (the
  net's ``body``), a query item's logits are its negative squared Euclidean distances to them.
* :class:`MAML` — Model-Agnostic Meta-Learning (Finn, Abbeel, Levine 2017,
  https://arxiv.org/abs/1703.03400) and its first-order variant: a few SGD steps on the support
  set from the net's parameters, through :func:`torch.func.functional_call`, then the query loss
  at the adapted parameters.
* :class:`FeaturePrototypes` / :class:`RawPrototypes` — nearest prototype over fixed features (a
  randomly initialised encoder, or the raw inputs): the baselines that need no meta-training. A
  meta-learner that does not beat them has learned nothing.

:func:`evaluate_episodes` reports accuracy as the field does: the mean query accuracy over
episodes with its 95% confidence interval, over at least 600 episodes.

This module does not import :mod:`graphwalk.train`: a net is any ``nn.Module``; ProtoNet uses
its ``body`` (:class:`graphwalk.train.models.Net` has one) when it has one.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from graphwalk.errors import InputError
from graphwalk.validation import check_bool, check_int, check_real

__all__ = [
    "MAML",
    "MIN_EVAL_EPISODES",
    "EpisodeLearner",
    "FeaturePrototypes",
    "ProtoNet",
    "RawPrototypes",
    "evaluate_episodes",
    "episode_labels",
    "prototype_baseline",
    "protonet_logits",
    "prototypes",
    "split_episode",
]

#: The fewest test episodes the field reports a few-shot accuracy over (600, as in Finn et al.
#: 2017 and Snell et al. 2017); :func:`evaluate_episodes` warns below it.
MIN_EVAL_EPISODES = 600

Episode = tuple[Tensor, Tensor, Tensor, Tensor]


# -- episodes -------------------------------------------------------------------------------------


def episode_labels(n_way: int, per_class: int, device: torch.device | str | None = None) -> Tensor:
    """The labels of a set grouped by class: ``[0]*per_class + [1]*per_class + ... + [n_way-1]*...``
    (int64), as the support and the query sets of the episode layout are."""
    return torch.arange(n_way, device=device).repeat_interleave(per_class)


def split_episode(x: Tensor, n_way: int, k_shot: int, q_query: int) -> Episode:
    """Cut one episode's stacked items into ``(support_x, support_y, query_x, query_y)``.

    The layout is the episode sampler's: ``n_way * k_shot`` support items grouped by class (class
    0's ``k_shot`` items, then class 1's, ...), then ``n_way * q_query`` query items grouped the
    same way. Labels are the positions' classes, int64 on ``x``'s device:
    ``support_y = arange(n_way).repeat_interleave(k_shot)``, ``query_y`` likewise with
    ``q_query``. The returned ``x`` parts are views.

    Args:
        x: ``(n_way * (k_shot + q_query), *item_shape)``, one episode.
        n_way: classes per episode (>= 1).
        k_shot: support items per class (>= 1).
        q_query: query items per class (>= 1).

    Raises:
        InputError: a bad count, or ``x``'s first dimension is not ``n_way * (k_shot + q_query)``
            (the message gives both and the usual cause).
    """
    n_way = check_int("n_way", n_way, minimum=1)
    k_shot = check_int("k_shot", k_shot, minimum=1)
    q_query = check_int("q_query", q_query, minimum=1)
    expected = n_way * (k_shot + q_query)
    if x.dim() == 0 or x.shape[0] != expected:
        got = "a 0-d tensor" if x.dim() == 0 else f"{x.shape[0]} items (shape {tuple(x.shape)})"
        raise InputError(
            f"an episode of n_way={n_way}, k_shot={k_shot}, q_query={q_query} has "
            f"{n_way}*({k_shot}+{q_query})={expected} items along the first dimension, but x "
            f"has {got}; pass the n_way, k_shot and q_query the episodes were drawn with, "
            f"and one episode at a time (index a batch of episodes first)"
        )
    n_support = n_way * k_shot
    return (
        x[:n_support],
        episode_labels(n_way, k_shot, x.device),
        x[n_support:],
        episode_labels(n_way, q_query, x.device),
    )


def _check_labels(y: Tensor, n_items: int, name: str) -> None:
    if y.dim() != 1 or y.dtype != torch.int64:
        raise InputError(
            f"{name} should be a 1-D int64 tensor of class labels, but has shape "
            f"{tuple(y.shape)} and dtype {y.dtype}"
        )
    if y.shape[0] != n_items:
        raise InputError(
            f"{name} has {y.shape[0]} labels for {n_items} items; give one label per item"
        )


def _check_episode(support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor) -> int:
    """Check one episode's shapes and labels and return its ``n_way``.

    The support labels must be ``0..n_way-1`` with every class present (a prototype or a class
    of the head needs at least one item), the query labels within that range.
    """
    _check_labels(support_y, support_x.shape[0], "support_y")
    _check_labels(query_y, query_x.shape[0], "query_y")
    if support_y.numel() == 0:
        raise InputError("the support set is empty; an episode needs at least one item per class")
    return _n_way(support_y, query_y)


def _n_way(support_y: Tensor, query_y: Tensor | None = None) -> int:
    lo, hi = int(support_y.min()), int(support_y.max())
    n_way = hi + 1
    counts = torch.bincount(support_y, minlength=n_way) if lo >= 0 else None
    if counts is None or bool((counts == 0).any()):
        present = sorted({int(c) for c in support_y.unique()})
        raise InputError(
            f"support labels should be 0..n_way-1 with every class present, but got the classes "
            f"{present}; relabel each episode's classes 0..n_way-1 (the episode layout does)"
        )
    if (
        query_y is not None
        and query_y.numel()
        and (int(query_y.min()) < 0 or int(query_y.max()) >= n_way)
    ):
        raise InputError(
            f"query labels should be in 0..{n_way - 1} (the support set's classes), but range "
            f"over {int(query_y.min())}..{int(query_y.max())}"
        )
    return n_way


# -- prototypes -----------------------------------------------------------------------------------


def prototypes(features: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """The class means of ``features``: row ``c`` is the mean of the rows labelled ``c``.

    Args:
        features: ``(n, dim)``.
        labels: ``(n,)`` int64 in ``0..n_way-1``, every class present.
        n_way: the number of classes.

    Returns:
        ``(n_way, dim)``, differentiable w.r.t. ``features``.

    Raises:
        InputError: ``features`` is not 2-D, the labels do not match it, or a class in
            ``0..n_way-1`` has no item (its mean would be NaN).
    """
    n_way = check_int("n_way", n_way, minimum=1)
    if features.dim() != 2:
        raise InputError(
            f"features should be 2-D (items, dim), but have shape {tuple(features.shape)}; "
            f"flatten them first"
        )
    _check_labels(labels, features.shape[0], "labels")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_way):
        raise InputError(
            f"labels should be in 0..{n_way - 1} for n_way={n_way}, but range over "
            f"{int(labels.min())}..{int(labels.max())}"
        )
    counts = torch.bincount(labels, minlength=n_way)
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise InputError(
            f"classes {empty} have no item, so no prototype; every class 0..{n_way - 1} needs "
            f"at least one support item"
        )
    sums = features.new_zeros(n_way, features.shape[1]).index_add(0, labels, features)
    return sums / counts.to(features.dtype).unsqueeze(1)


def protonet_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, n_way: int) -> Tensor:
    """Prototypical Networks' logits: minus the squared Euclidean distance from each query item
    to each class prototype (:func:`prototypes` of the support features).

    Returns:
        ``(n_query, n_way)``; the largest logit is the nearest prototype.

    Raises:
        InputError: see :func:`prototypes`, or query features of another width.
    """
    protos = prototypes(support_f, support_y, n_way)
    if query_f.dim() != 2 or query_f.shape[1] != protos.shape[1]:
        raise InputError(
            f"query features should be (items, {protos.shape[1]}) like the support features, "
            f"but have shape {tuple(query_f.shape)}"
        )
    # the difference form rather than |q|^2 - 2 q.p + |p|^2: exact at small distances, and
    # the gradient stays finite at zero distance (unlike cdist's square root)
    return -(query_f.unsqueeze(1) - protos.unsqueeze(0)).pow(2).sum(-1)


# -- learners -------------------------------------------------------------------------------------


class EpisodeLearner(ABC):
    """What learns from (or is evaluated on) episodes: query logits given a support set.

    Subclasses implement :meth:`logits`; :meth:`loss` and :func:`evaluate_episodes` build on it.
    """

    @abstractmethod
    def logits(
        self, net: nn.Module | None, support_x: Tensor, support_y: Tensor, query_x: Tensor
    ) -> Tensor:
        """The query items' logits ``(n_query, n_way)`` given the labelled support set."""

    def loss(
        self,
        net: nn.Module | None,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        query_y: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """The episode's query cross-entropy and query accuracy.

        The loss is differentiable w.r.t. the net's parameters: ``loss.backward()`` then the
        outer optimiser's step meta-train it. Labels are int64 ``0..n_way-1`` (every class in
        the support set).

        Returns:
            ``(loss, accuracy)``: 0-d tensors, the accuracy detached, in ``[0, 1]``.

        Raises:
            InputError: mismatched shapes or labels (see :func:`split_episode` for the layout).
        """
        _check_episode(support_x, support_y, query_x, query_y)
        logits = self.logits(net, support_x, support_y, query_x)
        loss = F.cross_entropy(logits, query_y)
        accuracy = (logits.detach().argmax(1) == query_y).float().mean()
        return loss, accuracy


class ProtoNet(EpisodeLearner):
    """Prototypical Networks (Snell et al. 2017, https://arxiv.org/abs/1703.05175).

    The encoder is ``net.body`` (:class:`graphwalk.train.models.Net`'s feature extractor; the
    head is not used and gets no gradient), or the whole net when it has no ``body``. Logits are
    :func:`protonet_logits` of the encoded support and query sets, so any ``n_way`` works with
    one net.

    .. warning::
        Support and query sets go through the encoder in one forward pass, so in training mode a
        BatchNorm normalises both with their joint batch statistics.
    """

    def logits(
        self, net: nn.Module | None, support_x: Tensor, support_y: Tensor, query_x: Tensor
    ) -> Tensor:
        if net is None:
            raise InputError("ProtoNet needs a net to encode the items; got net=None")
        body = getattr(net, "body", None)
        encoder: nn.Module = body if isinstance(body, nn.Module) else net
        n_way = _n_way(support_y)
        feats = encoder(torch.cat([support_x, query_x]))
        feats = feats.flatten(1)
        n_support = support_x.shape[0]
        return protonet_logits(feats[:n_support], support_y, feats[n_support:], n_way)


class FeaturePrototypes(EpisodeLearner):
    """Nearest prototype over fixed features ``features_fn(x)``: a baseline with no
    meta-training (the ``net`` argument is ignored).

    With ``features_fn`` a freshly built, randomly initialised encoder (``build_model(...).body``)
    it measures what the architecture gives for free; :class:`RawPrototypes` does the same over
    the raw inputs. Features are flattened to ``(items, dim)``.

    Args:
        features_fn: ``(n, *item_shape) -> (n, ...)`` features.
    """

    def __init__(self, features_fn: Callable[[Tensor], Tensor]) -> None:
        if not callable(features_fn):
            raise InputError(
                f"features_fn should be callable (a function or an encoder module), but got "
                f"{type(features_fn).__name__}"
            )
        self.features_fn = features_fn

    def logits(
        self, net: nn.Module | None, support_x: Tensor, support_y: Tensor, query_x: Tensor
    ) -> Tensor:
        n_way = _n_way(support_y)
        feats = self.features_fn(torch.cat([support_x, query_x])).flatten(1)
        n_support = support_x.shape[0]
        return protonet_logits(feats[:n_support], support_y, feats[n_support:], n_way)


def _flatten(x: Tensor) -> Tensor:
    return x.flatten(1)


class RawPrototypes(FeaturePrototypes):
    """Nearest prototype over the raw inputs, flattened: the baseline with no model at all."""

    def __init__(self) -> None:
        super().__init__(_flatten)


class MAML(EpisodeLearner):
    """MAML (Finn et al. 2017, https://arxiv.org/abs/1703.03400) and first-order MAML.

    For each episode, start from the net's parameters ``θ`` and take ``inner_steps`` SGD steps of
    the support set's cross-entropy, ``θ' ← θ' - inner_lr * ∇ L_support(θ')``, evaluating the
    net with :func:`torch.func.functional_call` on a dict of parameters (the net itself is never
    modified); the episode's loss is the query cross-entropy at ``θ'``, differentiable w.r.t.
    ``θ``: ``loss.backward()`` puts the meta-gradient in the net's ``.grad`` for an outer
    optimiser.

    * ``first_order=False``: the inner gradients are computed with ``create_graph=True``, so the
      meta-gradient includes the second-order terms (Hessian-vector products through every inner
      step).
    * ``first_order=True`` (FOMAML): the inner gradients are detached, so ``dθ'/dθ`` is the
      identity and the meta-gradient is the query loss's gradient at ``θ'``. Cheaper in memory
      and time.

    The net's output must have ``n_way`` logits (build it with ``n_classes=n_way``); every
    episode's labels are ``0..n_way-1``. Parameters with ``requires_grad=False`` are not
    adapted. Under ``torch.no_grad()`` (evaluation), :meth:`adapt` still computes the inner
    gradients (it enables them inside) but keeps no graph to ``θ``.

    .. warning::
        BatchNorm: the net's buffers are passed to ``functional_call`` with the parameters, so
        BatchNorm behaves as the net's mode says. In training mode it normalises with the batch's
        statistics (the support set's in the inner steps, the query set's for the query loss,
        as Finn et al.'s implementation does) and updates the net's running statistics at every
        forward, inner steps included. In eval mode (:func:`evaluate_episodes`) it normalises
        with those running statistics and leaves them unchanged.

    Args:
        inner_steps: SGD steps on the support set (>= 0; 0 evaluates the unadapted net).
            Default 5.
        inner_lr: the inner learning rate (> 0). Default 0.01.
        first_order: detach the inner gradients (FOMAML). Default False.
    """

    def __init__(
        self, inner_steps: int = 5, inner_lr: float = 0.01, first_order: bool = False
    ) -> None:
        self.inner_steps = check_int("inner_steps", inner_steps, minimum=0)
        self.inner_lr = check_real("inner_lr", inner_lr, low=0.0, low_open=True)
        self.first_order = check_bool("first_order", first_order)

    def __repr__(self) -> str:
        return (
            f"MAML(inner_steps={self.inner_steps}, inner_lr={self.inner_lr}, "
            f"first_order={self.first_order})"
        )

    def adapt(self, net: nn.Module, support_x: Tensor, support_y: Tensor) -> dict[str, Tensor]:
        """The net's parameters after ``inner_steps`` SGD steps on the support set.

        Returns:
            ``{name: tensor}`` for every parameter of ``net`` (those with
            ``requires_grad=False`` unchanged): use with
            ``torch.func.functional_call(net, (params, dict(net.named_buffers())), (x,))``. With
            gradients enabled they are differentiable w.r.t. the net's parameters (second order
            unless ``first_order``); under ``torch.no_grad()`` they are detached. The net is not
            modified.

        Raises:
            InputError: the support labels are not ``0..n_way-1``, or the net's output is not
                ``n_way`` wide.
        """
        _check_labels(support_y, support_x.shape[0], "support_y")
        n_way = _n_way(support_y)
        outer_grad = torch.is_grad_enabled()
        create_graph = outer_grad and not self.first_order
        params: dict[str, Tensor] = dict(net.named_parameters())
        if not outer_grad:
            params = {n: p.detach().requires_grad_(p.requires_grad) for n, p in params.items()}
        buffers = dict(net.named_buffers())
        with torch.enable_grad():
            for _ in range(self.inner_steps):
                logits = _forward(net, params, buffers, support_x, n_way)
                loss = F.cross_entropy(logits, support_y)
                names = [n for n, p in params.items() if p.requires_grad]
                grads = torch.autograd.grad(
                    loss,
                    [params[n] for n in names],
                    create_graph=create_graph,
                    allow_unused=True,
                )
                new = dict(params)
                for name, grad in zip(names, grads, strict=True):
                    if grad is None:  # a parameter the loss does not use
                        continue
                    if not create_graph:
                        grad = grad.detach()
                    step = params[name] - self.inner_lr * grad
                    new[name] = step if outer_grad else step.detach().requires_grad_()
                params = new
        return params

    def logits(
        self, net: nn.Module | None, support_x: Tensor, support_y: Tensor, query_x: Tensor
    ) -> Tensor:
        if net is None:
            raise InputError("MAML needs a net to adapt; got net=None")
        params = self.adapt(net, support_x, support_y)
        return _forward(net, params, dict(net.named_buffers()), query_x, _n_way(support_y))


def _forward(
    net: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor, n_way: int
) -> Tensor:
    logits: Tensor = functional_call(net, (params, buffers), (x,))
    if logits.dim() != 2 or logits.shape[1] != n_way:
        raise InputError(
            f"MAML needs the net's output to be the episode's {n_way} class logits, but it has "
            f"shape {tuple(logits.shape)}; build the net with n_classes={n_way} (e.g. "
            f"build_model(name, input_shape, {n_way}, loss='ce'))"
        )
    return logits


# -- evaluation -----------------------------------------------------------------------------------


def evaluate_episodes(
    learner: EpisodeLearner, net: nn.Module | None, episodes: Iterable[Episode]
) -> dict[str, Any]:
    """Mean query accuracy over episodes with its 95% confidence interval, as the field reports
    few-shot results (``accuracy ± ci95``).

    The net is in eval mode for the evaluation (each module's mode is restored after) and no
    gradient reaches it (``torch.no_grad()``). :class:`MAML` still adapts: per episode it adapts
    a copy of the parameters (a dict, computed with gradients enabled inside
    :meth:`MAML.adapt`) and classifies the query set with it, so the net is left unchanged, its
    BatchNorm running statistics included.

    Args:
        learner: a :class:`ProtoNet`, :class:`MAML`, :class:`FeaturePrototypes`, ...
        net: the meta-trained net (``None`` for the baselines, which do not use one).
        episodes: ``(support_x, support_y, query_x, query_y)`` tuples (see
            :func:`split_episode`), on the net's device.

    Returns:
        ``{"accuracy", "ci95", "interval", "std", "n", "accuracies"}``: the mean query accuracy
        (a fraction), the half-width of its 95% interval ``1.96 * std / sqrt(n)`` (normal
        approximation, as the field reports it), ``[accuracy - ci95, accuracy + ci95]``, the
        standard deviation over episodes (``ddof=1``), the number of episodes and each episode's
        accuracy. With fewer than :data:`MIN_EVAL_EPISODES` episodes it also has ``"note"``
        (and a ``UserWarning`` is given); with one episode ``std`` and ``ci95`` are NaN.

    Raises:
        InputError: no episodes, or a malformed one.
    """
    modes = {m: m.training for m in net.modules()} if net is not None else {}
    if net is not None:
        net.eval()
    accs: list[float] = []
    try:
        with torch.no_grad():
            for episode in episodes:
                if len(episode) != 4:
                    raise InputError(
                        f"an episode should be (support_x, support_y, query_x, query_y), but got "
                        f"{len(episode)} items; drop the collate's class_ids first"
                    )
                _, acc = learner.loss(net, *episode)
                accs.append(float(acc))
    finally:
        for module, mode in modes.items():
            module.training = mode
    n = len(accs)
    if n == 0:
        raise InputError("no episodes to evaluate; pass at least one (the field reports >= 600)")
    mean = math.fsum(accs) / n
    std = math.sqrt(math.fsum((a - mean) ** 2 for a in accs) / (n - 1)) if n > 1 else math.nan
    ci95 = 1.96 * std / math.sqrt(n)
    result: dict[str, Any] = {
        "accuracy": mean,
        "ci95": ci95,
        "interval": [mean - ci95, mean + ci95],
        "std": std,
        "n": n,
        "accuracies": accs,
    }
    if n < MIN_EVAL_EPISODES:
        note = (
            f"{n} episodes, fewer than the {MIN_EVAL_EPISODES} few-shot results are reported "
            f"over; the interval is wide and not comparable with published figures"
        )
        result["note"] = note
        warnings.warn(note, UserWarning, stacklevel=2)
    return result


def prototype_baseline(
    features_fn: Callable[[Tensor], Tensor], episodes: Iterable[Episode]
) -> dict[str, Any]:
    """:func:`evaluate_episodes` of nearest-prototype classification over ``features_fn``'s
    features: a baseline that needs no meta-training.

    ``features_fn`` is ``torch.flatten``-like for the raw inputs (:class:`RawPrototypes`) or a
    freshly built encoder (``build_model(name, shape, n_way).body``), put in eval mode for the
    evaluation when it is a module (its modes are restored after).
    """
    learner = FeaturePrototypes(features_fn)
    if not isinstance(features_fn, nn.Module):
        return evaluate_episodes(learner, None, episodes)
    modes = {m: m.training for m in features_fn.modules()}
    features_fn.eval()
    try:
        return evaluate_episodes(learner, None, episodes)
    finally:
        for module, mode in modes.items():
            module.training = mode
