"""Feedback text analysis: the interface, the rules in both languages, topics, settings, and
accuracy on the labelled evaluation set."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from patron.errors import InputError
from patron.feedback import (
    SENTIMENTS,
    Analysis,
    LexiconAnalyser,
    TextAnalyser,
    analyser_from_config,
    default_analyser,
    detect_language,
    get_analyser,
    load_feedback_settings,
    set_analyser,
)
from patron.feedback.evaluation import evaluate, read_labelled, split
from patron.feedback.lexicon import shipped_data

EVAL_SET = Path(__file__).parents[1] / "data" / "feedback_eval.csv"
TOPIC_CODES = set(shipped_data()["topics"])


@pytest.fixture(scope="module")
def analyser() -> LexiconAnalyser:
    return default_analyser()


def sentiment(analyser: LexiconAnalyser, text: str) -> str:
    return analyser.analyse(text).sentiment


def score(analyser: LexiconAnalyser, text: str) -> float:
    return analyser.analyse(text).score


# --- the interface -------------------------------------------------------------------------


def test_the_lexicon_analyser_implements_the_interface(analyser):
    assert isinstance(analyser, TextAnalyser)
    result = analyser.analyse("物流很快，包装也很好")
    assert isinstance(result, Analysis)
    assert result.sentiment in SENTIMENTS
    assert -1 <= result.score <= 1
    assert isinstance(result.topics, tuple) and all(isinstance(t, str) for t in result.topics)
    assert result.language == "zh-CN"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.sentiment = "negative"  # type: ignore[misc]


def test_language_is_detected_or_taken_as_given(analyser):
    assert detect_language("The delivery was quick") == "en"
    assert detect_language("APP老是闪退") == "zh-CN"
    assert detect_language("I ordered 茶叶 and it arrived quickly") == "en"
    assert analyser.analyse("good", "en-GB").language == "en"
    assert analyser.analyse("好", "zh_cn").language == "zh-CN"
    assert analyser.analyse("很好", "zh").sentiment == "positive"
    with pytest.raises(InputError) as caught:
        analyser.analyse("bon", "fr")
    assert isinstance(caught.value, ValueError) and "fr" in str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "👍😀🎉", "😡😡", "。。。", "?!", "12345"])
def test_empty_whitespace_emoji_or_punctuation_is_neutral(analyser, text):
    result = analyser.analyse(text)
    assert (result.sentiment, result.score, result.topics) == ("neutral", 0.0, ())


def test_score_bands_match_the_sentiment(analyser):
    for text in ["非常满意，强烈推荐！", "太差了，垃圾", "请问什么时候发货？", "Awful.", "Fine."]:
        result = analyser.analyse(text)
        if result.sentiment == "positive":
            assert result.score >= analyser.neutral_band
        elif result.sentiment == "negative":
            assert result.score <= -analyser.neutral_band
        else:
            assert abs(result.score) < analyser.neutral_band


# --- sentiment rules, Chinese ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plain", "negated"),
    [
        ("质量好", "质量不好"),
        ("很满意", "不满意"),
        ("推荐购买", "不推荐购买"),
        ("客服很专业", "客服一点也不专业"),
        ("值得", "不值得"),
    ],
)
def test_chinese_negation_turns_praise_into_a_complaint(analyser, plain, negated):
    assert sentiment(analyser, plain) == "positive"
    assert sentiment(analyser, negated) == "negative"


def test_chinese_negated_complaints_and_expectations(analyser):
    assert score(analyser, "价格不贵") > 0  # 不贵: mild praise
    assert score(analyser, "没什么问题") > 0
    for text in ["还没收到货", "一直没发货", "客服未回复", "别买，没人处理", "退款没到账"]:
        assert sentiment(analyser, text) == "negative", text
    # The negator of 见过 does not reach 差.
    assert sentiment(analyser, "从来没见过这么差的服务") == "negative"
    assert sentiment(analyser, "从来没让我失望过") == "positive"


def test_chinese_intensifiers_and_diminishers(analyser):
    assert score(analyser, "非常好") > score(analyser, "好") > 0
    assert score(analyser, "特别慢") < score(analyser, "慢") < score(analyser, "有点慢") < 0
    assert score(analyser, "慢了点") > score(analyser, "慢")
    assert score(analyser, "不太好") > score(analyser, "不好")  # not very good: milder


def test_chinese_contrast_gives_the_later_clause_more_weight(analyser):
    assert sentiment(analyser, "物流很慢，但是质量非常好") == "positive"
    assert sentiment(analyser, "质量很好，但是物流太慢了") == "negative"
    assert sentiment(analyser, "虽然价格贵，可是做工很精致") == "positive"
    assert sentiment(analyser, "价格便宜，质量却很差") == "negative"


def test_chinese_wishes_questions_and_excess(analyser):
    assert sentiment(analyser, "希望物流能快一点") == "neutral"
    assert sentiment(analyser, "如果价格能再便宜点就更好了") == "neutral"
    assert sentiment(analyser, "请问质量好吗？") == "neutral"
    assert sentiment(analyser, "这件合不合适？") == "neutral"
    assert sentiment(analyser, "为什么这么慢还没发货？") == "negative"
    assert sentiment(analyser, "衣服太大了") == "negative"
    assert sentiment(analyser, "尺码偏小") == "negative"
    assert sentiment(analyser, "性价比很高") == "positive"
    assert sentiment(analyser, "价格很高") == "negative"
    assert sentiment(analyser, "等了好久") == "negative"  # 好 is a degree adverb here


# --- sentiment rules, English ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plain", "negated"),
    [
        ("It is good.", "It is not good."),
        ("I would recommend it.", "I wouldn't recommend it."),
        ("The staff were helpful.", "The staff were never helpful."),
        ("Happy with it.", "Not happy with it."),
    ],
)
def test_english_negation_turns_praise_into_a_complaint(analyser, plain, negated):
    assert sentiment(analyser, plain) == "positive"
    assert sentiment(analyser, negated) == "negative"


def test_english_negated_complaints_and_expectations(analyser):
    assert sentiment(analyser, "Not bad at all.") == "positive"
    assert score(analyser, "No problems so far.") > 0
    for text in [
        "My parcel never arrived.",
        "I haven't received my refund.",
        "The charger didnt work.",
        "Nobody replied, they did not respond.",
    ]:
        assert sentiment(analyser, text) == "negative", text


def test_english_intensifiers_and_diminishers(analyser):
    assert score(analyser, "very good") > score(analyser, "good") > 0
    slow = score(analyser, "slow")
    assert score(analyser, "extremely slow") < slow < score(analyser, "a bit slow") < 0
    assert score(analyser, "not very good") > score(analyser, "not good")


def test_english_contrast_concession_wishes_and_questions(analyser):
    assert sentiment(analyser, "Shipping was slow, but the quality is excellent.") == "positive"
    assert sentiment(analyser, "The quality is great, but shipping was painfully slow.") == (
        "negative"
    )
    assert sentiment(analyser, "Although it was pricey, it works perfectly.") == "positive"
    assert sentiment(analyser, "I hope the next version is better.") == "neutral"
    assert sentiment(analyser, "Is this blender good for ice?") == "neutral"
    assert sentiment(analyser, "I'd like to change my address.") == "neutral"
    assert sentiment(analyser, "The jacket is too tight.") == "negative"
    assert sentiment(analyser, "High quality fabric.") == "positive"
    assert sentiment(analyser, "The prices are high.") == "negative"
    assert sentiment(analyser, "What a waste of money.") == "negative"


# --- topics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("快递员态度很好，送货很快", ("delivery", "service")),
        ("价格实惠，质量也不错", ("price", "quality")),
        ("包装太简陋，申请退款", ("packaging", "refund")),
        ("APP老是闪退", ("app",)),
        ("尺码偏小，颜色和图片不一样", ("product",)),
        ("The courier was late and the box was crushed.", ("delivery", "packaging")),
        ("Customer service refunded me quickly.", ("service", "refund")),
        ("The checkout page keeps crashing.", ("app",)),
        ("Great value and sturdy build quality.", ("price", "quality")),
        ("Thank you!", ()),
    ],
)
def test_topics_in_order_of_mention(analyser, text, expected):
    assert analyser.analyse(text).topics == expected


def test_topics_known_to_the_analyser(analyser):
    assert set(analyser.topics) == TOPIC_CODES
    assert {"delivery", "price", "quality", "service", "product", "packaging", "refund", "app"} <= (
        TOPIC_CODES
    )


def test_constructor_adds_topics_and_words_in_both_languages():
    custom = LexiconAnalyser(
        topics={
            "warranty": ["保修", "质保", "warranty"],
            "delivery": {"zh": ["闪送"], "en": ["same-day"]},
        },
        extra_positive=["yyds", "回头客"],
        extra_negative=["踩雷", "lemon"],
    )
    assert custom.analyse("保修期多久？").topics == ("warranty",)
    assert custom.analyse("Is the warranty two years?").topics == ("warranty",)
    assert custom.analyse("WARRANTY还有吗").topics == ("warranty",)  # Latin keyword, zh text
    assert custom.analyse("闪送到的").topics == ("delivery",)
    assert "delivery" in custom.analyse("Same-day courier").topics
    assert custom.analyse("这家店yyds").sentiment == "positive"
    assert custom.analyse("踩雷了").sentiment == "negative"
    assert custom.analyse("This one is a lemon.").sentiment == "negative"
    # The shared default is untouched.
    assert default_analyser().analyse("保修期多久？").topics == ()
    assert default_analyser().analyse("踩雷了").sentiment == "neutral"


def test_replace_topics_keeps_only_the_given_ones():
    only = LexiconAnalyser(topics={"freshness": ["新鲜", "fresh"]}, replace_topics=True)
    assert only.topics == ("freshness",)
    assert only.analyse("水果很新鲜，物流很快").topics == ("freshness",)


# --- patron.toml -----------------------------------------------------------------------------


def test_settings_from_patron_toml(tmp_path):
    config = tmp_path / "patron.toml"
    config.write_text(
        """
[grades]
cutoffs = [0.1, 0.3]

[feedback]
positive = ["回头客"]
negative = ["踩雷", "lemon"]

[feedback.topics]
warranty = ["保修", "warranty"]
delivery = { zh = ["闪送"], en = ["same-day"] }
""",
        encoding="utf-8",
    )
    settings = load_feedback_settings(config)
    assert settings.positive == ("回头客",) and settings.replace_topics is False
    analyser = analyser_from_config(config)
    assert analyser.analyse("保修怎么算").topics == ("warranty",)
    assert analyser.analyse("又踩雷了").sentiment == "negative"
    assert "delivery" in analyser.topics and "warranty" in analyser.topics
    assert analyser_from_config(None).topics == default_analyser().topics


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[feedback]\npositiv = ['好']\n", "positiv"),
        ("[feedback]\npositive = '好'\n", "feedback.positive"),
        ("[feedback]\nreplace_topics = 'yes'\n", "feedback.replace_topics"),
        ("[feedback.topics]\nwarranty = 3\n", "feedback.topics.warranty"),
        ("[feedback.topics]\nwarranty = { fr = ['garantie'] }\n", "feedback.topics.warranty"),
        ("[feedback.topics]\nWarranty = ['保修']\n", "Warranty"),
        ("[feedback\n", "TOML"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path, body, needle):
    config = tmp_path / "patron.toml"
    config.write_text(body, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_feedback_settings(config)
    assert caught.value.file == str(config)
    assert needle in str(caught.value) and str(config) in str(caught.value)


def test_missing_settings_file(tmp_path):
    with pytest.raises(InputError):
        load_feedback_settings(tmp_path / "nope.toml")


# --- the replaceable hook --------------------------------------------------------------------


class _Always:
    """A stand-in for a better analyser: anything with analyse(text, lang)."""

    def analyse(self, text: str, lang: str | None = None) -> Analysis:
        return Analysis("positive", 1.0, ("price",), "en")


def test_set_analyser_replaces_the_analyser_for_everyone():
    assert get_analyser() is default_analyser()
    try:
        set_analyser(_Always())
        assert get_analyser().analyse("垃圾").sentiment == "positive"
        from patron.feedback.text import get_analyser as via_text

        assert isinstance(via_text(), _Always)
    finally:
        set_analyser(None)
    assert get_analyser() is default_analyser()
    assert get_analyser().analyse("垃圾").sentiment == "negative"
    with pytest.raises(TypeError):
        set_analyser(object())  # type: ignore[arg-type]


# --- determinism, threads, quiet and lazy jieba ----------------------------------------------


def test_results_are_deterministic_across_instances_and_threads(analyser):
    rows = read_labelled(EVAL_SET)
    texts = [r.text for r in rows]
    first = [analyser.analyse(t) for t in texts]
    assert [analyser.analyse(t) for t in texts] == first
    fresh = LexiconAnalyser()
    assert [fresh.analyse(t) for t in texts[:100]] == first[:100]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(analyser.analyse, texts)) == first


def test_jieba_loads_lazily_and_quietly():
    code = (
        "import sys\n"
        "from patron.feedback import get_analyser\n"
        "get_analyser().analyse('Fast delivery')\n"
        "assert 'jieba' not in sys.modules, 'English text loaded jieba'\n"
        "print(get_analyser().analyse('物流很快，客服很耐心').sentiment)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "positive"
    assert done.stderr == ""


# --- the labelled evaluation set -------------------------------------------------------------


def test_the_evaluation_set_is_well_formed():
    rows = read_labelled(EVAL_SET)
    for lang in ("zh-CN", "en"):
        mine = [r for r in rows if r.lang == lang]
        assert len(mine) >= 220, lang
        assert {r.label for r in mine} == set(SENTIMENTS)
        assert len({r.text for r in mine}) == len(mine), "duplicate sentences"
        assert all(detect_language(r.text) == lang for r in mine)
    assert {r.lang for r in rows} == {"zh-CN", "en"}
    assert set().union(*(r.topics for r in rows)) <= TOPIC_CODES


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_held_out_accuracy_is_at_least_the_floor(analyser, lang):
    # The rules were built looking at the dev split only.  Measured on the 72-sentence test
    # splits: 0.875 (zh-CN) and 0.847 (en); 0.75 leaves room for sampling noise (about
    # +-8 points at n=72) and is twice the majority-class rate (~0.37), so a change that
    # breaks negation, contrast or a dictionary fails here.
    rows = read_labelled(EVAL_SET)
    dev, test = split(rows, lang)
    held_out = evaluate(analyser, test)
    assert held_out.n >= 66
    assert held_out.accuracy >= 0.75, held_out.errors
    assert held_out.macro_f1 >= 0.70
    assert held_out.topic_recall >= 0.75 and held_out.topic_precision >= 0.70
    assert evaluate(analyser, dev).accuracy >= 0.75
