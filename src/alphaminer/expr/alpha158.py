"""qlib's Alpha158 factor set as qlib expression strings (written from its published definitions).

The set is qlib's ``Alpha158DL.get_feature_config()`` default: 9 candle ("kbar") fields, 4 price
ratios (``OPEN0 HIGH0 LOW0 VWAP0``) and 29 rolling families over windows 5, 10, 20, 30 and 60,
158 fields in qlib's order with qlib's names (``KMID``, ``ROC5``, ...). The strings are qlib
syntax, imported with :func:`alphaminer.expr.parse_qlib` into operators that give qlib's numbers
(``Evaluator(panel, min_periods=1)`` also reproduces qlib's warm-up and NaN-skipping).

Many fields add ``1e-12`` to a price or a volume (qlib's guard against division by zero), so they
are not dimensionally valid in this language's unit rules; they evaluate as written.
"""

from __future__ import annotations

from alphaminer.expr.ast import Node
from alphaminer.expr.parser import parse_qlib

#: rolling windows of the default config
WINDOWS: tuple[int, ...] = (5, 10, 20, 30, 60)

_KBAR: tuple[tuple[str, str], ...] = (
    ("KMID", "($close-$open)/$open"),
    ("KLEN", "($high-$low)/$open"),
    ("KMID2", "($close-$open)/($high-$low+1e-12)"),
    ("KUP", "($high-Greater($open, $close))/$open"),
    ("KUP2", "($high-Greater($open, $close))/($high-$low+1e-12)"),
    ("KLOW", "(Less($open, $close)-$low)/$open"),
    ("KLOW2", "(Less($open, $close)-$low)/($high-$low+1e-12)"),
    ("KSFT", "(2*$close-$high-$low)/$open"),
    ("KSFT2", "(2*$close-$high-$low)/($high-$low+1e-12)"),
)

_PRICE: tuple[tuple[str, str], ...] = tuple(
    (f"{f.upper()}0", f"${f}/$close") for f in ("open", "high", "low", "vwap"))

_DC = "$close-Ref($close, 1)"
_DV = "$volume-Ref($volume, 1)"
_ABSRET_VOL = "Abs($close/Ref($close, 1)-1)*$volume"

#: family name → qlib expression template; ``{d}`` is the window
_ROLLING: tuple[tuple[str, str], ...] = (
    ("ROC", "Ref($close, {d})/$close"),
    ("MA", "Mean($close, {d})/$close"),
    ("STD", "Std($close, {d})/$close"),
    ("BETA", "Slope($close, {d})/$close"),
    ("RSQR", "Rsquare($close, {d})"),
    ("RESI", "Resi($close, {d})/$close"),
    ("MAX", "Max($high, {d})/$close"),
    ("MIN", "Min($low, {d})/$close"),
    ("QTLU", "Quantile($close, {d}, 0.8)/$close"),
    ("QTLD", "Quantile($close, {d}, 0.2)/$close"),
    ("RANK", "Rank($close, {d})"),
    ("RSV", "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)"),
    ("IMAX", "IdxMax($high, {d})/{d}"),
    ("IMIN", "IdxMin($low, {d})/{d}"),
    ("IMXD", "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}"),
    ("CORR", "Corr($close, Log($volume+1), {d})"),
    ("CORD", "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})"),
    ("CNTP", "Mean($close>Ref($close, 1), {d})"),
    ("CNTN", "Mean($close<Ref($close, 1), {d})"),
    ("CNTD", "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})"),
    ("SUMP", f"Sum(Greater({_DC}, 0), {{d}})/(Sum(Abs({_DC}), {{d}})+1e-12)"),
    ("SUMN", "Sum(Greater(Ref($close, 1)-$close, 0), {d})"
             f"/(Sum(Abs({_DC}), {{d}})+1e-12)"),
    ("SUMD", f"(Sum(Greater({_DC}, 0), {{d}})-Sum(Greater(Ref($close, 1)-$close, 0), {{d}}))"
             f"/(Sum(Abs({_DC}), {{d}})+1e-12)"),
    ("VMA", "Mean($volume, {d})/($volume+1e-12)"),
    ("VSTD", "Std($volume, {d})/($volume+1e-12)"),
    ("WVMA", f"Std({_ABSRET_VOL}, {{d}})/(Mean({_ABSRET_VOL}, {{d}})+1e-12)"),
    ("VSUMP", f"Sum(Greater({_DV}, 0), {{d}})/(Sum(Abs({_DV}), {{d}})+1e-12)"),
    ("VSUMN", "Sum(Greater(Ref($volume, 1)-$volume, 0), {d})"
              f"/(Sum(Abs({_DV}), {{d}})+1e-12)"),
    ("VSUMD", f"(Sum(Greater({_DV}, 0), {{d}})-Sum(Greater(Ref($volume, 1)-$volume, 0), {{d}}))"
              f"/(Sum(Abs({_DV}), {{d}})+1e-12)"),
)


def alpha158_qlib() -> list[tuple[str, str]]:
    """``[(name, qlib expression), ...]``: the 158 fields in qlib's order."""
    rolling = [(f"{name}{d}", tpl.format(d=d)) for name, tpl in _ROLLING for d in WINDOWS]
    return [*_KBAR, *_PRICE, *rolling]


def alpha158_exprs() -> dict[str, Node]:
    """name → the imported expression (operators giving qlib's numbers)."""
    return {name: parse_qlib(text) for name, text in alpha158_qlib()}


def alpha158_alphas() -> list[dict[str, str]]:
    """The set as ``[{"name", "formula", "note"}, ...]`` (canonical formulas), like ``classic``."""
    return [{"name": name, "formula": str(parse_qlib(text)), "note": f"qlib Alpha158: {text}"}
            for name, text in alpha158_qlib()]
