"""The one exception family of the statistics library (it never imports ``kb``)."""


class EvidenceError(ValueError):
    """Invalid input to a statistical function; the message names the value and the fix."""


class ConvergenceError(EvidenceError):
    """An iterative estimator did not converge; the message names the method and what to try."""
