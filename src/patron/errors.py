"""The exceptions patron raises.

One root, :class:`PatronError`, so callers can catch everything patron means to raise.
A mistake in the user's input is also a :class:`ValueError` and carries *where* it
happened (file, line, column, value), so the CLI can print one clear paragraph and exit 2
without a traceback, and library users can point at the offending cell.
"""

from __future__ import annotations

__all__ = ["PatronError", "InputError", "NotFittedError", "ConvergenceError"]


class PatronError(Exception):
    """Root of every exception patron raises on purpose."""


class InputError(ValueError, PatronError):
    """The user's data or options cannot be used as given.

    Parameters
    ----------
    message
        The complete, already translated message for the user.
    file, line, column, value
        Where the problem is, when it is known; ``line`` counts as the file does (the
        header of a CSV is line 1).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column
        self.value = value


class NotFittedError(ValueError, AttributeError, PatronError):
    """A model was asked for a prediction before :meth:`fit` gave it parameters.

    Also an :class:`AttributeError`, as scikit-learn's is, so ``hasattr(model, "params_")``
    style checks keep working.
    """


class ConvergenceError(RuntimeError, PatronError):
    """A maximum-likelihood fit did not reach an optimum.

    Raised instead of returning parameters nobody should trust; the message carries the
    optimizer's own words so the cause can be looked up.
    """
