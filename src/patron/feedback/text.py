"""The text-analysis interface in one import, for the services that store its answers.

``from patron.feedback.text import get_analyser`` gives the analyser in use (the lexicon
one unless :func:`set_analyser` installed another); callers should prefer it to
:func:`default_analyser`, which is always the lexicon analyser.
"""

from patron.feedback.analysis import LANGUAGES, SENTIMENTS, Analysis, TextAnalyser
from patron.feedback.lexicon_analyser import LexiconAnalyser
from patron.feedback.registry import default_analyser, get_analyser, set_analyser

__all__ = [
    "Analysis",
    "TextAnalyser",
    "LexiconAnalyser",
    "SENTIMENTS",
    "LANGUAGES",
    "default_analyser",
    "get_analyser",
    "set_analyser",
]
