"""A built-in library of classic price–volume alphas, written in the project's language.

Two families:

- ``wq###``: formulas adapted from Kakushadze, *101 Formulaic Alphas* (2016). Our vocabulary has
  no ``SignedPower``/``scale``/``IndNeutralize``/conditionals, so only alphas expressible with our
  operators are included, and where the original adds a price to a dimensionless term we divide by
  ``close`` first (noted per entry). ``returns`` is ``TsReturn(close,1d)``; ``adv20`` is
  ``Mean(volume,20d)``; ``delay`` is ``Ref``; ``ts_max/ts_min`` are ``Max/Min``.
- ``ta_*``: textbook technical factors (momentum, reversal, volatility, volume ratios, candle
  shape) of the kind found in qlib's Alpha158 set, written from their published definitions.

The library is data: each entry is ``(name, formula, note)``; :func:`classic_alphas` returns it.
"""

from __future__ import annotations

RET = "TsReturn(close,1d)"

_CLASSIC: tuple[tuple[str, str, str], ...] = (
    ("wq002", "Neg(Corr(CSRank(Delta(Log(volume),2d)),CSRank(Div(Sub(close,open),open)),6d))",
     "Alpha#2"),
    ("wq003", "Neg(Corr(CSRank(open),CSRank(volume),10d))", "Alpha#3"),
    ("wq004", "Neg(TsRank(CSRank(low),9d))", "Alpha#4"),
    ("wq006", "Neg(Corr(open,volume,10d))", "Alpha#6"),
    ("wq012", "Mul(Sign(Delta(volume,1d)),Neg(Delta(close,1d)))", "Alpha#12"),
    ("wq013", "Neg(CSRank(Cov(CSRank(close),CSRank(volume),5d)))", "Alpha#13"),
    ("wq014", f"Mul(Neg(CSRank(Delta({RET},3d))),Corr(open,volume,10d))", "Alpha#14"),
    ("wq015", "Neg(Sum(CSRank(Corr(CSRank(high),CSRank(volume),3d)),3d))", "Alpha#15"),
    ("wq016", "Neg(CSRank(Cov(CSRank(high),CSRank(volume),5d)))", "Alpha#16"),
    ("wq018",
     "Neg(CSRank(Add(Div(Add(Std(Abs(Sub(close,open)),5d),Sub(close,open)),close),"
     "Corr(close,open,10d))))",
     "Alpha#18, price terms divided by close so the sum is dimensionless"),
    ("wq020",
     "Mul(Mul(Neg(CSRank(Sub(open,Ref(high,1d)))),CSRank(Sub(open,Ref(close,1d)))),"
     "CSRank(Sub(open,Ref(low,1d))))",
     "Alpha#20"),
    ("wq022", "Neg(Mul(Delta(Corr(high,volume,5d),5d),CSRank(Std(close,20d))))", "Alpha#22"),
    ("wq026", "Neg(Max(Corr(TsRank(volume,5d),TsRank(high,5d),5d),3d))", "Alpha#26"),
    ("wq033", "CSRank(Neg(Sub(1,Div(open,close))))", "Alpha#33"),
    ("wq034",
     f"CSRank(Add(Sub(1,CSRank(Div(Std({RET},2d),Std({RET},5d)))),"
     "Sub(1,CSRank(Delta(close,1d)))))",
     "Alpha#34"),
    ("wq035",
     f"Mul(Mul(TsRank(volume,32d),Sub(1,TsRank(Sub(Add(close,high),low),16d))),"
     f"Sub(1,TsRank({RET},32d)))",
     "Alpha#35"),
    ("wq038", "Mul(Neg(CSRank(TsRank(close,10d))),CSRank(Div(close,open)))", "Alpha#38"),
    ("wq040", "Mul(Neg(CSRank(Std(high,10d))),Corr(high,volume,10d))", "Alpha#40"),
    ("wq042", "Div(CSRank(Sub(vwap,close)),CSRank(Add(vwap,close)))", "Alpha#42"),
    ("wq043", "Mul(TsRank(Div(volume,Mean(volume,20d)),20d),TsRank(Neg(Delta(close,7d)),8d))",
     "Alpha#43, adv20 = 20-day mean volume"),
    ("wq044", "Neg(Corr(high,CSRank(volume),5d))", "Alpha#44"),
    ("wq053", "Neg(Delta(Div(Sub(Sub(close,low),Sub(high,close)),Sub(close,low)),9d))",
     "Alpha#53"),
    ("wq055",
     "Neg(Corr(CSRank(Div(Sub(close,Min(low,12d)),Sub(Max(high,12d),Min(low,12d)))),"
     "CSRank(volume),6d))",
     "Alpha#55"),
    ("wq101", "Div(Sub(close,open),Sub(high,low))",
     "Alpha#101 without the +0.001 (a zero range gives NaN instead)"),
    ("ta_mom20", "TsReturn(close,20d)", "20-day momentum"),
    ("ta_mom60", "TsReturn(close,60d)", "60-day momentum"),
    ("ta_rev5", "Neg(TsReturn(close,5d))", "5-day reversal"),
    ("ta_vol20", f"Neg(Std({RET},20d))", "low-volatility"),
    ("ta_skew20", f"Neg(Skew({RET},20d))", "return skewness"),
    ("ta_kurt20", f"Kurt({RET},20d)", "return kurtosis"),
    ("ta_vratio", "Div(Mean(volume,5d),Mean(volume,20d))", "volume ratio"),
    ("ta_cpv20", "Neg(Corr(close,volume,20d))", "price–volume correlation"),
    ("ta_crv10", f"Corr({RET},Log(volume),10d)", "return–log-volume correlation"),
    ("ta_vwapdev", "Div(Sub(close,vwap),vwap)", "close vs vwap"),
    ("ta_kmid", "Div(Sub(close,open),open)", "candle body"),
    ("ta_klen", "Div(Sub(high,low),open)", "candle range"),
    ("ta_ma20", "Div(Mean(close,20d),close)", "moving-average gap"),
    ("ta_max20", "Div(Max(high,20d),close)", "distance to the 20-day high"),
    ("ta_min20", "Div(Min(low,20d),close)", "distance to the 20-day low"),
    ("ta_std20", "Div(Std(close,20d),close)", "relative price volatility"),
    ("ta_argmax20", "Sub(ArgMax(high,20d),ArgMin(low,20d))", "timing of the 20-day extremes"),
    ("ta_zscore20", "TsZScore(close,20d)", "price z-score"),
    ("ta_wma10", "Div(WMA(close,10d),close)", "weighted moving-average gap"),
    ("ta_macd", "Div(EMA(close,12d),EMA(close,26d))", "MACD as a ratio"),
    ("ta_liq20", "Neg(CSRank(Mean(amount,20d)))", "illiquidity (small traded amount)"),
    ("ta_mad20", "Div(Mad(close,20d),close)", "relative mean absolute deviation"),
    ("ta_med20", "Div(Med(close,20d),close)", "median gap"),
    ("ta_turnz", "TsZScore(volume,20d)", "abnormal volume"),
)


def classic_alphas() -> list[dict[str, str]]:
    """The built-in classic set as ``[{"name", "formula", "note"}, ...]``."""
    return [{"name": n, "formula": f, "note": note} for n, f, note in _CLASSIC]
