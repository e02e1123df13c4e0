"""patron.toml: defaults, overrides, and clear errors for bad settings."""

from __future__ import annotations

import pytest

from patron.errors import InputError
from patron.value.config import Settings, load_settings


def test_no_file_gives_the_defaults():
    settings = load_settings()
    assert settings == Settings()
    assert settings.grades.cutoffs == (0.10, 0.30)


def test_a_file_overrides_what_it_names(tmp_path):
    path = tmp_path / "patron.toml"
    path.write_text(
        """
[analyze]
horizon = "24M"
discount_rate = 0.08

[grades]
names = ["钻石", "黄金", "白银", "普通"]
cutoffs = [0.05, 0.15, 0.35]

[grades.weights]
predicted_clv = 1.0

[lifecycle]
mature_purchases = 6

[[playbook]]
grade = "钻石"
action = "personal_call"

[[playbook]]
action = "nurture"
""",
        encoding="utf-8",
    )
    settings = load_settings(path, discount_rate=0.12)
    assert settings.horizon == "24M"
    assert settings.discount_rate == 0.12  # the command line wins
    assert settings.grades.names == ("钻石", "黄金", "白银", "普通")
    assert settings.grades.weights["predicted_clv"] == 1.0
    assert settings.grades.weights["total_spend"] == 0.0
    assert settings.lifecycle.mature_purchases == 6
    assert [p.action for p in settings.playbook] == ["personal_call", "nurture"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grades]\ncutofs = [0.1]\n", r"grades\.cutofs"),
        ("[grades]\ncutoffs = [0.3, 0.1]\n", "increasing"),
        ("[grades]\nnames = ['a', 'b']\n", "one cut-off fewer"),
        ("[analyze]\ndiscount_rate = 5\n", "yearly rate"),
        ("[risk]\nhigh = 0.9\nmedium = 0.5\n", "at most medium"),
        ("[lifecycle]\nmature_purchases = 'many'\n", "lifecycle.mature_purchases"),
        ("[[playbook]]\ngrade = 'gold'\n", r"playbook\[0\]\.action"),
        ("[grade]\n", "unknown setting"),
        ("[grades\n", "not valid TOML"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "patron.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as caught:
        load_settings(path)
    assert caught.value.file == str(path)


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_tables_other_parts_read_are_accepted(tmp_path):
    path = tmp_path / "patron.toml"
    path.write_text(
        '[feedback]\npositive = ["赞"]\n[tasks.service_level_hours]\ndetractor = 24\n',
        encoding="utf-8",
    )
    assert load_settings(path).grades.names  # no "unknown setting"
