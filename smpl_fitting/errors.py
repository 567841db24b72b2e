"""The one error type of smpl_fitting."""


class FitError(ValueError):
    """Bad input to the fit (shape, NaN, no frames) or an unusable SMPL model folder."""
