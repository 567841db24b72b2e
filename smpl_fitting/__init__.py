"""HumanML3D joints (T, 22, 3) -> SMPL pose parameters (analytic IK + batched torch refinement).

Public API: ``fit_motion``, ``FitResult``, ``FitError``. Pure numpy/scipy until refinement (torch) or SMPL
files (``smplx``, imported lazily) are used.
"""

from .errors import FitError
from .fit import FitResult, fit_motion

__all__ = ["FitError", "FitResult", "fit_motion"]
