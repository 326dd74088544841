"""The metrics API named in SPEC §7, `aemt.metrics.evaluate(pred, label, scale)`: a stable entry point
for users; the implementation and its documentation are in :mod:`aemt.evaluate.metrics`."""

from aemt.evaluate.metrics import evaluate

__all__ = ["evaluate"]
