"""The artifact: :class:`GraphIndex`, the types it holds, its on-disk format and its statistics.

The builder (:mod:`graphwalk.build`) writes it; the samplers (:mod:`graphwalk.walk`) read it. It
imports neither.
"""

from graphwalk.index.artifact import GraphIndex
from graphwalk.index.types import Graph, Level, WalkOrder

__all__ = ["Graph", "GraphIndex", "Level", "WalkOrder"]
