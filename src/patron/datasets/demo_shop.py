"""A synthetic Chinese shop's order export, with the mess real exports have, and its truth.

Real exports cannot be shipped (they are people's data), and hand-made fixtures only hold
the mess their author thought of. This module simulates a shop whose customers follow the
models patron fits (BG/NBD purchasing, Gamma-Gamma spend), writes the order export the way
Chinese shop systems do (中文表头, ¥ amounts, 2024年3月5日 dates, GB18030, title rows in
Excel), damages a known share of rows in known ways, and can say exactly which rows and
how, so ingest, the summary and the models can all be tested against the truth.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["demo_shop"]

HEADER = ("订单编号", "客户编号", "客户姓名", "手机号", "下单时间", "实付金额", "渠道", "订单状态")
SHOP = "悦购商城"
SHEET = "订单列表"
CHANNELS = ("门店", "天猫", "京东", "小程序", "web")
_CHANNEL_P = np.array([0.26, 0.24, 0.20, 0.22, 0.08])
DONE, REFUNDED = "已完成", "已退款"

#: The true parameters of the simulated shop (time unit: week; money: yuan).
#: BG/NBD: purchase rate ~ Gamma(r, alpha), dropout after each repeat ~ Beta(a, b).
#: Gamma-Gamma: spend per order ~ Gamma(p, nu), nu ~ Gamma(q, gamma); mean order ~ ¥220.
PARAMS = {"r": 0.35, "alpha": 5.0, "a": 0.9, "b": 3.0, "p": 4.0, "q": 3.0, "gamma": 110.0}
REFUND_RATE = 0.03
MISSING_PHONE_RATE = 0.08
NUMERIC_ID_RATE = 0.12
ENGLISH_NAME_RATE = 0.04

#: The kinds of damage, in the order their counts are allocated, with their shares.
ISSUES = {
    "date_format": 0.22,  # a real but different date form: 2024/3/5 14:22, 2024年3月5日, 45356.6
    "amount_format": 0.22,  # ¥1,234.50, 1234.5元, ￥１２３, (12.00) for a refund
    "duplicate": 0.12,  # the same order exported twice, byte for byte
    "conflict": 0.06,  # the same order id again with a different amount
    "missing_customer_id": 0.10,
    "bad_date": 0.08,  # a date that does not exist: 2025年2月30日
    "future_date": 0.08,  # a typo year after the export period: 2052
    "bad_amount": 0.12,  # 待定, #VALUE!
}

_EPOCH = dt.datetime(1970, 1, 1)
_DAY = 86_400
_EXCEL_EPOCH_SERIAL = 25_569  # Excel's serial number of 1970-01-01
_FULLWIDTH = str.maketrans("0123456789.", "０１２３４５６７８９．")

# Hours of the day orders are placed: shops open 10:00-22:00; online peaks at night.
_STORE_HOURS = np.array([0] * 10 + [4, 6, 7, 6, 6, 7, 8, 8, 9, 9, 7, 4] + [0, 0], float)
_ONLINE_HOURS = np.array(
    [3, 2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 6, 6, 6, 7, 8, 10, 12, 11, 7], float
)

_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡")
_SURNAME_W = np.array(
    [7.1, 7.0, 6.8, 5.4, 4.5, 3.1, 2.2, 2.0, 1.9, 1.7] + [1.0] * (len(_SURNAMES) - 10)
)
_GIVEN = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国志红文辉鹏宇浩然子轩欣怡梓涵"
    "雨婷佳琪思远晨阳嘉诚俊峰雪梅晓东海燕丹凤博文"
)
_EN_FIRST = ("Emily", "David", "Jason", "Amy", "Kevin", "Grace", "Tom", "Linda", "Eric", "Coco")
_EN_LAST = ("Chen", "Wang", "Li", "Zhang", "Smith", "Brown", "Wong", "Lee", "Lin", "Müller")
# Names whose characters are outside GBK (䶮 is CJK Extension A, 𠮷 Extension B): a file that
# holds them must be GB18030 or UTF-8, which is the point of shipping them.
_RARE_NAMES = ("刘䶮", "𠮷田美咲", "王𠮷", "李䶮辰")
_PHONE_PREFIXES = tuple(
    str(p) for p in [*range(130, 140), 150, 151, 152, 153, 155, 156, 157, 158, 159]
) + ("166", "170", "176", "177", "178", "180", "181", "186", "187", "188", "189", "198", "199")

_ENCODINGS = ("utf-8", "utf-8-sig", "gb18030", "gbk")


def demo_shop(
    path: str | Path | None = None,
    *,
    customers: int = 2000,
    seed: int = 7,
    messy: float = 0.03,
    start: str | dt.date = "2024-01-01",
    end: str | dt.date = "2025-12-31",
    fmt: str = "csv",
    encoding: str = "utf-8",
    return_truth: bool = False,
) -> Path | tuple[Path, dict[str, Any]]:
    """Write a synthetic Chinese shop's order export and return its path.

    The shop's customers follow the models patron fits, so a fit on this file should
    recover :data:`PARAMS`; the export is damaged in the ways real exports are, so ingest
    can be tried on it; and ``return_truth`` says exactly what was damaged, so tests need
    no hand-kept expectations. The same arguments always give the same bytes.

    Parameters
    ----------
    path
        Where to write. ``None`` (default) writes ``demo_shop.csv`` (or ``.xlsx``) in a new
        temporary directory, so trying the demo never overwrites a file of the user's.
    customers
        How many customers make a first purchase in the period. Each buys about three times
        on average (~6,000 rows for 2,000 customers).
    seed
        Seed of the random generator; everything written follows from it.
    messy
        Share of rows to damage (0 to 0.5), split over the kinds in :data:`ISSUES`; each kind
        occurs at least once when there are at least as many damaged rows as kinds.
    start, end
        The export period (inclusive dates). First purchases are spread evenly over it.
    fmt
        ``"csv"`` or ``"xlsx"``. The workbook's first sheet has a title row, a blank row
        and the header on row 3, dates as date cells, amounts as numbers and the numeric
        customer ids and phone numbers stored as numbers (leading zeros lost, as Excel does);
        a second sheet ``说明`` holds notes.
    encoding
        For CSV: ``"utf-8"``, ``"utf-8-sig"`` (with BOM, as Excel writes), ``"gb18030"`` or
        ``"gbk"``. GBK cannot hold 䶮 or 𠮷: those characters are written as ``?``, as old
        exporters do, and counted in the truth; nor ¥, which GBK systems write as the
        full-width ￥. Ignored for xlsx.
    return_truth
        Also return what was written (see Returns).

    Returns
    -------
    pathlib.Path or (pathlib.Path, dict)
        The file written; with ``return_truth`` also a dict of exact counts of *rows in the
        file*: ``rows`` (data rows, header and title not counted), ``purchases`` (distinct
        sale orders), ``refunds`` (refund rows: amount negative, status 已退款, order id ending
        in ``-R``), ``duplicates`` and ``conflicts`` (extra rows; ``rows == purchases +
        refunds + duplicates + conflicts``), ``missing_customer_id``, ``bad_dates``,
        ``future_dates``, ``bad_amounts``, ``date_formats``, ``amount_formats``,
        ``missing_phones``, ``customers`` (distinct non-empty customer ids),
        ``numeric_id_cells`` (xlsx customer ids stored as numbers), ``replaced_characters``
        (GBK ``?``); ``header_line`` and ``first_data_line`` (1-based, as the file or sheet
        counts); ``lines``, the line numbers of each kind of damage; ``table``, one row per
        data row (``line``, ``order_id``, true ``customer_id``, ``ts`` and ``amount`` as the
        written cell means them, null where unreadable, ``refund``, ``issue``); and
        ``params``, ``seed``, ``start``, ``end``, ``format``, ``encoding``.

    Notes
    -----
    Each damaged row has exactly one issue, and duplicates and conflicts always come after
    the row they repeat. A date written without seconds or without a time means the
    minute or the midnight it names; an Excel serial means its time to the nearest second.

    Examples
    --------
    >>> from patron.datasets import demo_shop
    >>> path, truth = demo_shop(customers=50, return_truth=True)
    >>> parts = ("purchases", "refunds", "duplicates", "conflicts")
    >>> truth["rows"] == sum(truth[k] for k in parts)
    True
    >>> path.name, truth["header_line"]
    ('demo_shop.csv', 1)
    """
    first_day, last_day = _check(customers, messy, start, end, fmt)
    encoding = _encoding(encoding) if fmt == "csv" else None
    path = _target(path, fmt)
    rng = np.random.default_rng(seed)

    people = _customers(rng, customers)
    shop = _simulate(rng, customers, first_day, last_day)
    rows = _damage(rng, shop, messy, last_day)
    header_line = 1 if fmt == "csv" else 3
    if fmt == "csv":
        replaced = _write_csv(path, rows, people, encoding)
    else:
        replaced = 0
        _write_xlsx(path, rows, people, first_day, last_day, seed)
    if not return_truth:
        return path
    truth = _truth(rows, people, header_line, fmt, replaced)
    truth.update(
        seed=seed,
        start=_iso(first_day),
        end=_iso(last_day),
        format=fmt,
        encoding=encoding,
        params=dict(PARAMS),
    )
    return path, truth


def _check(customers: int, messy: float, start: Any, end: Any, fmt: str) -> tuple[int, int]:
    if isinstance(customers, bool) or not isinstance(customers, int | np.integer):
        raise TypeError(f"customers must be an int, not {type(customers).__name__}")
    if customers < 1:
        raise ValueError(f"customers must be at least 1, not {customers}")
    if not 0 <= messy <= 0.5:
        raise ValueError(f"messy is a share of rows between 0 and 0.5, not {messy}")
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"fmt must be 'csv' or 'xlsx', not {fmt!r}")
    first, last = (_day_number(d) for d in (start, end))
    if last < first:
        raise ValueError(f"end {end} is before start {start}")
    return first, last


def _day_number(value: str | dt.date) -> int:
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    if isinstance(day, dt.datetime):
        day = day.date()
    return (day - _EPOCH.date()).days


def _iso(day: int) -> str:
    return (_EPOCH.date() + dt.timedelta(days=day)).isoformat()


def _encoding(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    if name not in _ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(_ENCODINGS)}, not {encoding!r}")
    return name


def _target(path: str | Path | None, fmt: str) -> Path:
    if path is None:
        return Path(tempfile.mkdtemp(prefix="patron-demo-")) / f"demo_shop.{fmt}"
    path = Path(path)
    if path.is_dir():
        return path / f"demo_shop.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --- the shop ------------------------------------------------------------------------


def _customers(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Ids, names and phones; customer ``i`` is the ``i``-th to make a first purchase."""
    numeric = rng.random(n) < NUMERIC_ID_RATE
    ids = [f"{i + 1:08d}" if num else f"C{i + 1:06d}" for i, num in enumerate(numeric.tolist())]

    surname = rng.choice(len(_SURNAMES), n, p=_SURNAME_W / _SURNAME_W.sum())
    given = rng.integers(0, len(_GIVEN), (n, 2))
    two_chars = rng.random(n) < 0.7
    english = rng.random(n) < ENGLISH_NAME_RATE
    en_first = rng.integers(0, len(_EN_FIRST), n)
    en_last = rng.integers(0, len(_EN_LAST), n)
    names = [
        f"{_EN_FIRST[f]} {_EN_LAST[la]}"
        if en
        else _SURNAMES[s] + _GIVEN[g1] + (_GIVEN[g2] if two else "")
        for s, (g1, g2), two, en, f, la in zip(
            surname.tolist(),
            given.tolist(),
            two_chars.tolist(),
            english.tolist(),
            en_first.tolist(),
            en_last.tolist(),
            strict=True,
        )
    ]
    rare = rng.choice(n, size=min(len(_RARE_NAMES), n), replace=False)
    for i, name in zip(rare.tolist(), _RARE_NAMES, strict=False):
        names[i] = name

    prefix = rng.integers(0, len(_PHONE_PREFIXES), n)
    number = rng.integers(0, 10**8, n)
    no_phone = rng.random(n) < MISSING_PHONE_RATE
    phones = [
        "" if missing else f"{_PHONE_PREFIXES[p]}{x:08d}"
        for p, x, missing in zip(prefix.tolist(), number.tolist(), no_phone.tolist(), strict=True)
    ]
    return {"ids": ids, "numeric": numeric, "names": names, "phones": phones}


def _simulate(rng: np.random.Generator, n: int, first_day: int, last_day: int) -> dict:
    """Sales and refunds of ``n`` customers, sorted by time; every array has one row each.

    BG/NBD, exactly: after the first purchase a customer buys at rate ``lam`` while alive
    and drops out after each repeat purchase with probability ``drop``. Until dropout the
    repeats in the window are a Poisson process, so the first ``min(K, N)`` of ``N ~
    Poisson(lam * T)`` sorted uniform times are the observed ones, with ``K ~ Geometric(drop)``
    the repeat after which the customer leaves.
    """
    par = PARAMS
    join = np.sort(first_day + rng.integers(0, last_day - first_day + 1, n))
    lam = rng.gamma(par["r"], 1 / par["alpha"], n)
    drop = np.clip(rng.beta(par["a"], par["b"], n), 1e-12, 1.0)
    nu = rng.gamma(par["q"], 1 / par["gamma"], n)
    preferred = rng.choice(len(CHANNELS), n, p=_CHANNEL_P)

    weeks = (last_day + 1 - join) / 7.0
    arrivals = rng.poisson(lam * weeks)
    repeats = np.minimum(rng.geometric(drop), arrivals)
    owner = np.repeat(np.arange(n), arrivals)
    u = rng.random(owner.size) * weeks[owner]
    u = u[np.lexsort((u, owner))]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < repeats[owner]

    cust = np.concatenate([np.arange(n), owner[keep]])
    offset = np.concatenate([np.zeros(n, np.int64), np.floor(u[keep] * 7).astype(np.int64)])
    day = np.minimum(join[cust] + offset, last_day)
    m = cust.size

    channel = np.where(
        rng.random(m) < 0.8, preferred[cust], rng.choice(len(CHANNELS), m, p=_CHANNEL_P)
    )
    store_hour = rng.choice(24, m, p=_STORE_HOURS / _STORE_HOURS.sum())
    online_hour = rng.choice(24, m, p=_ONLINE_HOURS / _ONLINE_HOURS.sum())
    hour = np.where(channel == 0, store_hour, online_hour)
    ts = day * _DAY + hour * 3600 + rng.integers(0, 3600, m)

    spend = rng.gamma(par["p"], 1 / nu[cust])
    cents = np.round(spend, 2)
    style = rng.integers(0, 3, m)  # price points: ¥199.37, ¥199.00, ¥199.90
    amount = np.where(style == 0, cents, np.floor(spend) + np.where(style == 1, 0.0, 0.9))
    amount = np.maximum(amount, 9.9)

    order = np.lexsort((cust, ts))
    cust, ts, amount, channel = cust[order], ts[order], amount[order], channel[order]
    year = ts.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    seq = np.arange(m) - np.searchsorted(year, year) + 1
    order_id = np.array(
        [f"SO{y}{s:06d}" for y, s in zip(year.tolist(), seq.tolist(), strict=True)], object
    )

    # Refunds: a separate row a few days later, in office hours; dropped if after the period.
    picked = np.flatnonzero(rng.random(m) < REFUND_RATE)
    k = picked.size
    refund_day = ts[picked] // _DAY + rng.integers(1, 15, k)
    refund_ts = refund_day * _DAY + rng.integers(9 * 3600, 19 * 3600, k)
    partial = np.round(amount[picked] * rng.uniform(0.2, 0.9, k), 2)
    refund_amount = -np.where(rng.random(k) < 0.75, amount[picked], partial)
    inside = refund_day <= last_day
    picked = picked[inside]

    rows = {
        "cust": np.concatenate([cust, cust[picked]]),
        "ts": np.concatenate([ts, refund_ts[inside]]),
        "amount": np.concatenate([amount, refund_amount[inside]]),
        "channel": np.concatenate([channel, channel[picked]]),
        "refund": np.concatenate([np.zeros(m, bool), np.ones(picked.size, bool)]),
        "order_id": np.concatenate([order_id, order_id[picked] + "-R"]),
    }
    order = np.lexsort((np.arange(rows["ts"].size), rows["ts"]))
    return {key: value[order] for key, value in rows.items()}


# --- the mess ------------------------------------------------------------------------


def _allocate(total: int) -> dict[str, int]:
    """Split ``total`` damaged rows over :data:`ISSUES`: one each first, the rest by share."""
    kinds = list(ISSUES)
    base = np.ones(len(kinds), int) if total >= len(kinds) else np.zeros(len(kinds), int)
    share = (total - base.sum()) * np.array(list(ISSUES.values())) / sum(ISSUES.values())
    counts = np.floor(share).astype(int)
    left = total - base.sum() - counts.sum()
    counts[np.argsort(counts - share, kind="stable")[:left]] += 1
    return dict(zip(kinds, (base + counts).tolist(), strict=True))


def _damage(rng: np.random.Generator, shop: dict, messy: float, last_day: int) -> dict:
    """Damage rows in place and add duplicate and conflicting rows; return the export rows.

    Besides the simulated arrays the result has, per row, ``date``/``money`` (``None`` for
    the clean form, else the cell to write), the value that cell means (``true_ts``,
    ``true_amount``, NaN/-1 where unreadable), ``no_id`` and ``issue``.
    """
    n = shop["ts"].size
    counts = _allocate(int(np.floor(messy * n + 0.5)))
    sales = np.flatnonzero(~shop["refund"])
    n_extra = min(counts["duplicate"] + counts["conflict"], sales.size)
    counts["conflict"] = min(counts["conflict"], n_extra)
    counts["duplicate"] = n_extra - counts["conflict"]
    sources = rng.choice(sales, size=n_extra, replace=False)
    free = np.setdiff1d(np.arange(n), sources)
    in_place = [k for k in ISSUES if k not in ("duplicate", "conflict")]
    wanted = [min(counts[k], free.size) for k in in_place]
    targets = rng.choice(free, size=min(sum(wanted), free.size), replace=False)

    date: list[Any] = [None] * n
    money: list[Any] = [None] * n
    true_ts = shop["ts"].astype(np.float64)
    true_amount = shop["amount"].copy()
    no_id = np.zeros(n, bool)
    issue = np.full(n, None, object)

    start = 0
    for kind, count in zip(in_place, wanted, strict=True):
        rows = targets[start : start + count]
        start += count
        issue[rows] = kind
        for i in rows.tolist():
            ts, amount = int(shop["ts"][i]), float(shop["amount"][i])
            if kind == "missing_customer_id":
                no_id[i] = True
            elif kind == "date_format":
                date[i], true_ts[i] = _other_date_form(rng, ts)
            elif kind == "bad_date":
                date[i], true_ts[i] = _impossible_date(rng, ts), np.nan
            elif kind == "future_date":
                date[i], true_ts[i] = _typo_year(ts, last_day)
            elif kind == "amount_format":
                money[i], true_amount[i] = _other_amount_form(rng, amount)
            elif kind == "bad_amount":
                money[i], true_amount[i] = ("待定", "#VALUE!")[rng.integers(0, 2)], np.nan

    # Extra rows go somewhere after the row they repeat, as a re-exported page would.
    n_dup = counts["duplicate"]
    extra_key = sources + 0.5 + rng.random(n_extra) * (n - sources - 0.5)
    discount = rng.uniform(0.6, 0.95, n_extra - n_dup)
    conflict_amount = np.round(shop["amount"][sources[n_dup:]] * discount, 2)
    extra_amount = np.concatenate([shop["amount"][sources[:n_dup]], conflict_amount])
    extra_issue = np.array(["duplicate"] * n_dup + ["conflict"] * (n_extra - n_dup), object)

    every = np.concatenate([np.arange(n), sources])
    final = np.argsort(np.concatenate([np.arange(n, dtype=float), extra_key]), kind="stable")
    pick = every[final]
    rows = {key: value[pick] for key, value in shop.items()}
    rows["amount"] = np.concatenate([shop["amount"], extra_amount])[final]
    rows["true_ts"] = true_ts[pick]
    rows["true_amount"] = np.concatenate([true_amount[:n], extra_amount])[final]
    rows["no_id"] = no_id[pick]
    rows["issue"] = np.concatenate([issue, extra_issue])[final]
    rows["date"] = [date[i] for i in pick.tolist()]
    rows["money"] = [money[i] for i in pick.tolist()]
    return rows


def _other_date_form(rng: np.random.Generator, ts: int) -> tuple[Any, float]:
    """A real date form other than ``2024-03-05 14:22:01``, and the time it means."""
    t = _EPOCH + dt.timedelta(seconds=ts)
    form = int(rng.integers(0, 4))
    if form == 0:  # 2024/3/5 14:22: no seconds
        return f"{t.year}/{t.month}/{t.day} {t:%H:%M}", float(ts - ts % 60)
    if form == 1:  # 2024年3月5日: no time
        return f"{t.year}年{t.month}月{t.day}日", float(ts - ts % _DAY)
    if form == 2:  # Excel serial number, what a date cell turns into when it loses its format
        return round(ts / _DAY + _EXCEL_EPOCH_SERIAL, 6), float(ts)
    return f"{t:%Y/%m/%d %H:%M:%S}", float(ts)


def _impossible_date(rng: np.random.Generator, ts: int) -> str:
    t = _EPOCH + dt.timedelta(seconds=ts)
    month, day = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31))[rng.integers(0, 6)]
    if rng.random() < 0.5:
        return f"{t.year}年{month}月{day}日"
    return f"{t.year}-{month:02d}-{day:02d} {t:%H:%M:%S}"


def _typo_year(ts: int, last_day: int) -> tuple[dt.datetime, float]:
    """The date with its year mistyped into the future (2025 -> 2052), as a datetime."""
    t = _EPOCH + dt.timedelta(seconds=ts)
    last_year = (_EPOCH + dt.timedelta(days=last_day)).year
    digits = str(t.year)
    year = int(digits[:-2] + digits[-1] + digits[-2])
    if year <= last_year:
        year = t.year + 10 if t.year + 10 > last_year else t.year + 100
    typo = t.replace(year=year, day=min(t.day, 28) if t.month == 2 else t.day)
    return typo, (typo - _EPOCH).total_seconds()


def _other_amount_form(rng: np.random.Generator, amount: float) -> tuple[str, float]:
    """A real amount form other than ``1234.50``, and the amount it means."""
    form = int(rng.integers(0, 4 if amount > 0 else 3))
    if amount < 0:
        if form == 0:  # accountants' negative
            return f"({-amount:,.2f})", amount
        if form == 1:
            return f"-¥{-amount:,.2f}", amount
        return f"{amount:.2f}".rstrip("0").rstrip(".") + "元", amount
    if form == 0 or (form == 3 and amount < 1000):  # a plain 1,234.50 needs thousands
        return f"¥{amount:,.2f}", amount
    if form == 1:
        return f"{amount:.2f}".rstrip("0").rstrip(".") + "元", amount
    if form == 2:  # full-width, typed in an input method: whole yuan only
        whole = int(np.floor(amount + 0.5))
        return "￥" + str(whole).translate(_FULLWIDTH), float(whole)
    return f"{amount:,.2f}", amount


# --- writing -------------------------------------------------------------------------


def _clean_dates(ts: np.ndarray) -> list[str]:
    text = np.datetime_as_string(ts.astype("datetime64[s]"), unit="s")
    return [s.replace("T", " ") for s in text.tolist()]


def _write_csv(path: Path, rows: dict, people: dict, encoding: str) -> int:
    """Write the CSV; return how many characters GBK had to replace with ``?``."""
    names, replaced = people["names"], 0
    if encoding == "gbk":
        names = [n.encode("gbk", "replace").decode("gbk") for n in names]
        lost = np.array([n.count("?") for n in names]) - [n.count("?") for n in people["names"]]
        replaced = int(lost[rows["cust"]].sum())
    cust = rows["cust"].tolist()
    ids = [people["ids"][c] for c in cust]
    ids = ["" if missing else i for i, missing in zip(ids, rows["no_id"].tolist(), strict=True)]
    dates = [
        d if c is None else (c.strftime("%Y-%m-%d %H:%M:%S") if isinstance(c, dt.datetime) else c)
        for d, c in zip(_clean_dates(rows["ts"]), rows["date"], strict=True)
    ]
    money = [
        f"{a:.2f}" if c is None else c
        for a, c in zip(rows["amount"].tolist(), rows["money"], strict=True)
    ]
    if encoding == "gbk":  # GBK has no ¥ (U+00A5); GBK systems write the full-width ￥
        money = [m.replace("¥", "￥") if isinstance(m, str) else m for m in money]
    body = zip(
        rows["order_id"].tolist(),
        ids,
        [names[c] for c in cust],
        [people["phones"][c] for c in cust],
        dates,
        money,
        [CHANNELS[c] for c in rows["channel"].tolist()],
        [REFUNDED if r else DONE for r in rows["refund"].tolist()],
        strict=True,
    )
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(body)
    return replaced


def _write_xlsx(path: Path, rows: dict, people: dict, first_day: int, last_day: int, seed: int):
    """Write the workbook, byte-reproducibly: fixed document times and zip entry times."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    when = _EPOCH + dt.timedelta(days=last_day + 1)
    wb = Workbook(write_only=True)
    wb.properties.created = wb.properties.modified = when
    ws = wb.create_sheet(SHEET)
    ws.append([f"{SHOP} 订单导出 {_iso(first_day)} 至 {_iso(last_day)}"])
    ws.append([])
    ws.append(list(HEADER))
    numeric, ids = people["numeric"].tolist(), people["ids"]
    names, phones = people["names"], people["phones"]
    for c, no_id, ts, date, amount, money, order_id, channel, refund in zip(
        rows["cust"].tolist(),
        rows["no_id"].tolist(),
        rows["ts"].tolist(),
        rows["date"],
        rows["amount"].tolist(),
        rows["money"],
        rows["order_id"].tolist(),
        rows["channel"].tolist(),
        rows["refund"].tolist(),
        strict=True,
    ):
        ws.append(
            [
                order_id,
                None if no_id else (int(ids[c]) if numeric[c] else ids[c]),
                names[c],
                int(phones[c]) if phones[c] else None,
                _EPOCH + dt.timedelta(seconds=ts) if date is None else date,
                amount if money is None else money,
                CHANNELS[channel],
                REFUNDED if refund else DONE,
            ]
        )
    notes = wb.create_sheet("说明")
    for line in (
        ["说明"],
        ["本表为模拟订单数据（patron.datasets.demo_shop 生成），仅供演示和测试。"],
        ["姓名、手机号均为随机生成，不含真实个人信息。"],
        [f"导出期间：{_iso(first_day)} 至 {_iso(last_day)}"],
        ["金额单位：人民币元。退款单独成行，金额为负数，订单编号以 -R 结尾。"],
        [f"随机种子：{seed}"],
    ):
        notes.append(line)

    buffer = io.BytesIO()
    ExcelWriter(wb, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))


# --- the truth -----------------------------------------------------------------------


def _truth(rows: dict, people: dict, header_line: int, fmt: str, replaced: int) -> dict:
    import pyarrow as pa

    issue = rows["issue"]
    first = header_line + 1
    line = np.arange(issue.size) + first
    counts = {k: int(np.sum(issue == k)) for k in ISSUES}
    cust = rows["cust"]
    has_id = ~rows["no_id"]
    phones = np.array([people["phones"][c] == "" for c in range(len(people["phones"]))])
    extra = counts["duplicate"] + counts["conflict"]
    ts = rows["true_ts"]
    table = pa.table(
        {
            "line": pa.array(line, pa.int64()),
            "order_id": pa.array(rows["order_id"].tolist(), pa.string()),
            "customer_id": pa.array([people["ids"][c] for c in cust.tolist()], pa.string()),
            "ts": pa.array(
                np.where(np.isnan(ts), 0, ts).astype(np.int64) * 1_000_000,
                pa.timestamp("us"),
                mask=np.isnan(ts),
            ),
            "amount": pa.array(rows["true_amount"], pa.float64(), from_pandas=True),
            "refund": pa.array(rows["refund"], pa.bool_()),
            "issue": pa.array(issue.tolist(), pa.string()),
        }
    )
    return {
        "rows": int(issue.size),
        "purchases": int(np.sum(~rows["refund"])) - extra,
        "refunds": int(np.sum(rows["refund"])),
        "duplicates": counts["duplicate"],
        "conflicts": counts["conflict"],
        "missing_customer_id": counts["missing_customer_id"],
        "bad_dates": counts["bad_date"],
        "future_dates": counts["future_date"],
        "bad_amounts": counts["bad_amount"],
        "date_formats": counts["date_format"],
        "amount_formats": counts["amount_format"],
        "missing_phones": int(np.sum(phones[cust])),
        "customers": int(np.unique(cust[has_id]).size),
        "numeric_id_cells": int(np.sum(people["numeric"][cust] & has_id)) if fmt == "xlsx" else 0,
        "replaced_characters": replaced,
        "header_line": header_line,
        "first_data_line": first,
        "lines": {k: line[issue == k].tolist() for k in ISSUES},
        "table": table,
    }
