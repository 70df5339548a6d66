"""The learned walker: policies that choose where the walk goes from training feedback, and the
rewards that feed them (issue 9).

:mod:`graphwalk.learn.policies` holds the policies (``uniform``, ``exp3s``, ``pg``, ``odm``) and
the :class:`~graphwalk.learn.policies.CoverageFloor` that keeps every node visited;
:mod:`graphwalk.learn.rewards` the rewards (``grad-norm``, ``loss-drop``, ``gar``) and their
online normaliser. Neither imports torch at import time (the rewards import it when they run).
"""

from __future__ import annotations

from graphwalk.learn.policies import (
    POLICIES,
    CoverageFloor,
    Exp3SWalker,
    GlobalBandit,
    PolicyGradientWalker,
    UniformWalker,
    make_policy,
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

__all__ = [
    "POLICIES",
    "REWARDS",
    "CoverageFloor",
    "Exp3SWalker",
    "GlobalBandit",
    "GradNormReward",
    "GradientAlignmentReward",
    "LossDropReward",
    "PolicyGradientWalker",
    "Reward",
    "RewardNormalizer",
    "UniformWalker",
    "make_policy",
    "make_reward",
]
