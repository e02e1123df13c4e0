"""Feedback text analysis: sentiment and topics of customers' comments, in zh-CN and en.

Callers use :func:`get_analyser` and the :class:`TextAnalyser` interface; the default is
the dictionary-based :class:`LexiconAnalyser`, and :func:`set_analyser` installs a better
one for the whole process.

>>> from patron.feedback import get_analyser
>>> result = get_analyser().analyse("客服回复很快，问题解决了，很满意")
>>> result.sentiment, result.topics, result.language
('positive', ('service',), 'zh-CN')
"""

from patron.feedback.analysis import (
    LANGUAGES,
    SENTIMENTS,
    Analysis,
    TextAnalyser,
    detect_language,
)
from patron.feedback.lexicon_analyser import LexiconAnalyser
from patron.feedback.registry import default_analyser, get_analyser, set_analyser
from patron.feedback.settings import (
    FeedbackSettings,
    analyser_from_config,
    load_feedback_settings,
)

__all__ = [
    "Analysis",
    "TextAnalyser",
    "LexiconAnalyser",
    "SENTIMENTS",
    "LANGUAGES",
    "detect_language",
    "default_analyser",
    "get_analyser",
    "set_analyser",
    "FeedbackSettings",
    "load_feedback_settings",
    "analyser_from_config",
]
