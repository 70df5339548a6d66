"""Making the index: vectors and activations, clustering, graph construction, :func:`build_index`."""

from graphwalk.build.builder import build_index

__all__ = ["build_index"]
