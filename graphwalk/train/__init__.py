"""The training stage: models, losses, the training loop behind ``graphwalk train``, comparisons
of samplers over seeds, and activation graphs that follow the model (see the README's
*`graphwalk train`*). Imports torch; nothing in the lower stages imports it."""
