"""The message catalogues: both languages carry every key with the same placeholders."""

import re
import string
from pathlib import Path

import pytest

from patron.i18n import _, catalogue, set_language

SRC = Path(__file__).parents[1] / "src" / "patron"


def _fields(text):
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_catalogues_have_the_same_keys_and_placeholders():
    en, zh = catalogue("en"), catalogue("zh-CN")
    assert set(en) == set(zh)
    for key in en:
        assert _fields(en[key]) == _fields(zh[key]), key


def test_every_key_used_in_code_exists():
    used = set()
    for path in SRC.rglob("*.py"):
        used |= set(re.findall(r"""\b_\(\s*["']([a-z_]+\.[a-z_.]+)["']""", path.read_text()))
    assert used, "the scan found no message keys"
    assert used <= set(catalogue("en")), used - set(catalogue("en"))


def test_language_choice():
    try:
        set_language("zh")
        assert _("reason.date_missing") == "缺少日期"
        assert _("reason.date_missing", lang="en") == "the date is missing"
        with pytest.raises(ValueError):
            set_language("fr")
    finally:
        set_language(None)
