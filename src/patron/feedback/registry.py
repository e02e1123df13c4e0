"""Which analyser the feedback loop uses: a hook a better analyser can take over.

Everything that analyses feedback calls :func:`get_analyser`, never a class by name, so
installing a trained model or a hosted service is one call at start-up::

    from patron.feedback import set_analyser
    set_analyser(MyModelAnalyser())      # anything with .analyse(text, lang) -> Analysis
"""

from __future__ import annotations

import threading

from patron.feedback.analysis import TextAnalyser
from patron.feedback.lexicon_analyser import LexiconAnalyser

__all__ = ["default_analyser", "get_analyser", "installed_analyser", "set_analyser"]

_lock = threading.Lock()
_default: LexiconAnalyser | None = None
_installed: TextAnalyser | None = None


def default_analyser() -> LexiconAnalyser:
    """The shared :class:`LexiconAnalyser` with the shipped dictionaries, built once."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = LexiconAnalyser()
    return _default


def get_analyser() -> TextAnalyser:
    """The analyser in use: the one :func:`set_analyser` installed, else the default."""
    return _installed if _installed is not None else default_analyser()


def installed_analyser() -> TextAnalyser | None:
    """The analyser :func:`set_analyser` installed, or ``None`` (the defaults apply)."""
    return _installed


def set_analyser(analyser: TextAnalyser | None) -> None:
    """Use ``analyser`` for the whole process from now on (``None``: back to the default)."""
    global _installed
    if analyser is not None and not isinstance(analyser, TextAnalyser):
        raise TypeError(f"{analyser!r} has no analyse(text, lang) method")
    _installed = analyser
