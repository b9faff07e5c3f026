"""Adapter algebra on the files: weighted sums of LoRA adapters, exact or rank-reduced.

- :mod:`~adaptvc.adapter_algebra.factored`: the math on factors (stacking, QR + small SVD);
- :mod:`~adaptvc.adapter_algebra.combine`: inputs checked, modules walked, a PEFT directory written;
- :mod:`~adaptvc.adapter_algebra.result`: what was written and the error it dropped.

Recording the result as a version is :mod:`adaptvc.versioning.algebra`'s job. numpy only.
"""

from __future__ import annotations

from adaptvc.adapter_algebra.combine import METHODS, check_arguments, combine
from adaptvc.adapter_algebra.result import AlgebraResult, ModuleResult

__all__ = ["METHODS", "AlgebraResult", "ModuleResult", "check_arguments", "combine"]
