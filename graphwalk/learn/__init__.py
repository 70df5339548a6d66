"""The learned walker: policies that choose where the walk goes from training feedback, and the
rewards that feed them (issue 9), and per-item vectors that follow what the model learns
(issue 17).

:mod:`graphwalk.learn.policies` holds the policies (``uniform``, ``exp3s``, ``pg``, ``odm``) and
the :class:`~graphwalk.learn.policies.CoverageFloor` that keeps every node visited;
:mod:`graphwalk.learn.rewards` the rewards (``grad-norm``, ``loss-drop``, ``gar``) and their
online normaliser; :mod:`graphwalk.learn.vectors` the gradient sketches and learnable vectors.
None imports torch at import time (the rewards import it when they run).
"""

from __future__ import annotations

from graphwalk.learn.policies import (
    POLICIES,
    CoverageFloor,
    Exp3SWalker,
    GlobalBandit,
    PolicyGradientWalker,
    UniformWalker,
    carry_over,
    make_policy,
    node_of_items,
)
from graphwalk.learn.rewards import (
    REWARDS,
    GradientAlignmentReward,
    GradNormReward,
    LossDropReward,
    Reward,
    RewardNormalizer,
    make_reward,
)
from graphwalk.learn.vectors import VECTOR_SPACES, GradientSketch, LearnedVectors

__all__ = [
    "POLICIES",
    "REWARDS",
    "VECTOR_SPACES",
    "CoverageFloor",
    "Exp3SWalker",
    "GlobalBandit",
    "GradNormReward",
    "GradientSketch",
    "GradientAlignmentReward",
    "LearnedVectors",
    "LossDropReward",
    "PolicyGradientWalker",
    "Reward",
    "RewardNormalizer",
    "UniformWalker",
    "carry_over",
    "make_policy",
    "make_reward",
    "node_of_items",
]
