import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.ingest.identifiers import _normalise, normalise_ids


@pytest.mark.parametrize(
    ("text", "expected", "restored"),
    [
        ("C001", "C001", 0),
        ("  C001\t", "C001", 0),
        ("\u3000Ｃ００１\u3000", "C001", 0),
        ("ｓｏ-５００", "so-500", 0),
        ("SO 500", "SO 500", 0),
        ("13812345678", "13812345678", 0),
        ("1234567890123456789", "1234567890123456789", 0),
        ("13812345678.0", "13812345678", 1),
        ("SO500001.0", "SO500001", 1),
        ("123.00", "123", 1),
        ("ABC.0", "ABC.0", 0),
        ("v1.5", "v1.5", 0),
        ("123456789012345.0", "123456789012345", 1),
        ("1.3812345678E+10", "13812345678", 1),
        ("1.3812345678e+10", "13812345678", 1),
        ("1.30E+2", "130", 1),
        ("12E34", "12E34", 0),
    ],
)
def test_accepted_and_restored(text, expected, restored):
    ids, reasons, count = normalise_ids(pa.array([text]))
    assert ids.to_pylist() == [expected]
    assert reasons.to_pylist() == [None]
    assert count == restored


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "id_missing"),
        ("", "id_missing"),
        (" \u3000", "id_missing"),
        ("1.38E+10", "id_precision_lost"),
        ("1.381234567E+10", "id_precision_lost"),
        ("1E+5", "id_precision_lost"),
        ("1.5E-05", "id_precision_lost"),
        ("1.38123456789E+10", "id_precision_lost"),
        ("1.2345678901234568e+17", "id_precision_lost"),
        ("1234567890123456.0", "id_precision_lost"),
        ("1.234567890123456E+15", "id_precision_lost"),
    ],
)
def test_rejected(text, reason):
    ids, reasons, count = normalise_ids(pa.array([text], pa.string()))
    assert ids.to_pylist() == [None]
    assert reasons.to_pylist() == [reason]
    assert count == 0


def test_lost_leading_zeros_are_restored_to_the_usual_width():
    ids, _, restored = normalise_ids(
        pa.array(["00123", "04567", "12345", "123", "123", "C9", "12"])
    )
    assert ids.to_pylist() == ["00123", "04567", "12345", "00123", "00123", "C9", "00012"]
    assert restored == 3


def test_damaged_and_zero_stripped_row_counts_once():
    ids, _, restored = normalise_ids(pa.array(["00123", "04567", "123.0"]))
    assert ids.to_pylist() == ["00123", "04567", "00123"]
    assert restored == 1


@pytest.mark.parametrize(
    "texts",
    [
        ["10001", "10002", "123"],  # the usual width has no leading zero
        ["00123", "123", "456", "12"],  # no width holds most ids
        ["0012", "00123", "04567", "123456"],  # nothing is shorter than a tie loser
    ],
)
def test_no_padding_without_evidence(texts):
    ids, _, restored = normalise_ids(pa.array(texts))
    assert ids.to_pylist() == texts
    assert restored == 0


def test_typed_numbers():
    ids, reasons, restored = normalise_ids(pa.array([13812345678, None, -5], pa.int64()))
    assert ids.to_pylist() == ["13812345678", None, "-5"]
    assert reasons.to_pylist() == [None, "id_missing", None]
    assert restored == 0
    floats = pa.array([13812345678.0, float("nan"), None, 1.2345678901234568e17, 13812345678.0])
    ids, reasons, restored = normalise_ids(floats)
    assert ids.to_pylist() == ["13812345678", None, None, None, "13812345678"]
    assert reasons.to_pylist() == [None, "id_missing", "id_missing", "id_precision_lost", None]
    assert restored == 2


def test_text_types_and_chunks():
    texts = ["C001", "13812345678.0", None]
    for values in (
        pa.array(texts, pa.large_string()),
        pa.array(texts).dictionary_encode(),
        pa.chunked_array([pa.array(texts[:1]), pa.array(texts[1:])]),
        texts,
    ):
        ids, reasons, restored = normalise_ids(values)
        assert isinstance(ids, pa.Array)
        assert ids.type == pa.string()
        assert ids.to_pylist() == ["C001", "13812345678", None]
        assert reasons.to_pylist() == [None, None, "id_missing"]
        assert restored == 1


def test_empty_and_all_null_columns():
    ids, reasons, restored = normalise_ids(pa.array([], pa.string()))
    assert (ids.to_pylist(), restored) == ([], 0)
    ids, reasons, restored = normalise_ids(pa.nulls(2))
    assert reasons.to_pylist() == ["id_missing"] * 2


def test_unsupported_type_is_a_type_error():
    with pytest.raises(TypeError):
        normalise_ids(pa.array([True]))


# -- properties --------------------------------------------------------------------------

excel_exact = st.integers(1, 10**15 - 1)


@given(excel_exact)
def test_round_trip_through_excel_float(n):
    for column in (pa.array([repr(float(n))]), pa.array([float(n)])):
        ids, reasons, restored = normalise_ids(column)
        assert ids.to_pylist() == [str(n)]
        assert restored == 1


@given(excel_exact)
def test_round_trip_through_full_scientific_notation(n):
    text = f"{n:.{len(str(n)) - 1}E}"
    assert normalise_ids(pa.array([text]))[0].to_pylist() == [str(n)]


@given(st.integers(10**15, 10**19))
def test_sixteen_digits_through_a_float_are_lost(n):
    for column in (pa.array([repr(float(n))]), pa.array([float(n)])):
        assert normalise_ids(column)[1].to_pylist() == ["id_precision_lost"]


@given(st.lists(st.text(), max_size=20))
def test_arbitrary_text_never_raises(texts):
    ids, reasons, restored = normalise_ids(pa.array(texts, pa.string()))
    assert len(ids) == len(texts) and 0 <= restored <= len(texts)
    assert all(
        (i is None) != (r is None)
        for i, r in zip(ids.to_pylist(), reasons.to_pylist(), strict=True)
    )


cells = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.text("0123456789", min_size=1, max_size=6),
    st.text("0123456789.eE+-SO ", max_size=14),
    st.integers(0, 10**17).map(lambda n: repr(float(n))),
    st.integers(0, 10**6).map(lambda n: f"{n:06d}"),
)


@given(st.lists(cells, max_size=40))
@settings(max_examples=300)
def test_column_equals_scalar_elementwise_up_to_zero_padding(texts):
    ids, reasons, restored = normalise_ids(pa.array(texts, pa.string()))
    scalar = [_normalise(t) if t is not None else (None, "id_missing", False) for t in texts]
    assert reasons.to_pylist() == [r for _, r, _ in scalar]
    padded = 0
    for got, (want, _, _) in zip(ids.to_pylist(), scalar, strict=True):
        if got != want:
            assert want.isdigit() and len(got) > len(want) and got == want.zfill(len(got))
            padded += 1
    fixed = sum(1 for (want, _, was_restored), got in zip(scalar, ids.to_pylist(), strict=True)
                if was_restored or (want is not None and got != want))  # fmt: skip
    assert restored == fixed
    assert padded == 0 or restored >= padded
