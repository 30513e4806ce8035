"""Alpha2 ablations (paper §5.3): the same search with one switch changed, judged the same way.

Variants (``DEFAULT_VARIANTS``): the configured run, dimension pruning off, the backup's β at 0
(max) and 1 (mean), and the diversity term off (Perf = IC). Each variant mines on the train
split through its own fresh :class:`~alphaminer.evaluation.scorer.CandidateScorer` (so no
variant sees another's cache or reference set) and is judged on the TEST split: the IC of its top
alphas (ranked by train |IC|, signs aligned to train), how many planted formulas it recovers
(:func:`~alphaminer.evaluation.recovery.recovery_table`), the mined set's mean mutual |corr|,
candidates scored, simulations and wall time. One row per (variant, seed), plus a per-variant
summary (means over seeds), so a report can print the table directly.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from alphaminer.evaluation.alphaset import AlphaSet
from alphaminer.evaluation.metrics import daily_ic, ic_stats
from alphaminer.evaluation.recovery import mean_mutual_abs_corr, recovery_table
from alphaminer.expr import Evaluator
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alpha2.miner import Alpha2Config, Alpha2Miner

__all__ = ["DEFAULT_VARIANTS", "merge_config", "run_ablations", "summarise"]

#: name → overrides of the base miner configuration (nested dicts merge into ``search``/``net``)
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "no_dims": {"dims": False},
    "beta_0": {"search": {"beta": 0.0}},
    "beta_0.5": {"search": {"beta": 0.5}},
    "beta_1": {"search": {"beta": 1.0}},
    "no_diversity": {"diversity": False},
}


def merge_config(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` applied; dict values merge one level down (``search``, ``net``)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = {**out[k], **v}
        else:
            out[k] = copy.deepcopy(v)
    return out


def _ic(values: torch.Tensor, target: torch.Tensor, min_stocks: int) -> np.ndarray:
    if values.shape[0] == 0:
        return np.zeros(0)
    return ic_stats(daily_ic(values, target, min_stocks))[0].cpu().numpy().astype(np.float64)


def _judge(formulas: list[str], panel: Any, target: torch.Tensor,
           ranges: Mapping[str, tuple[int, int]], planted: AlphaSet | None, top_k: int,
           min_stocks: int) -> dict[str, Any]:
    """Test-split figures of one mined set (train only ranks the alphas and fixes their sign)."""
    ev = Evaluator(panel)
    (r0, r1), (t0, t1) = ranges["train"], ranges["test"]
    out: dict[str, Any] = {"n_alphas": len(formulas)}
    if not formulas:
        out.update(top_formulas=[], top_train_ic=[], top_test_ic=[], top_test_ic_mean=np.nan,
                   test_ic_mean=np.nan, mean_mutual_abs_corr=np.nan)
        if planted is not None:
            out.update(recovered=0, planted_abs_corr={n: np.nan for n in planted.names},
                       planted_best_alpha={n: None for n in planted.names})
        return out
    vals = AlphaSet("mined", formulas).values(panel, ev)
    ic_tr = _ic(vals[:, r0:r1], target[r0:r1], min_stocks)
    ic_te = _ic(vals[:, t0:t1], target[t0:t1], min_stocks)
    sign = np.where(ic_tr < 0, -1.0, 1.0)
    order = np.argsort(-np.nan_to_num(np.abs(ic_tr), nan=-1.0), kind="stable")[:top_k]
    aligned = sign * ic_te
    out.update(top_formulas=[formulas[i] for i in order],
               top_train_ic=[float(ic_tr[i]) for i in order],
               top_test_ic=[float(aligned[i]) for i in order],
               top_test_ic_mean=float(np.nanmean(aligned[order])),
               test_ic_mean=float(np.nanmean(aligned)),
               mean_mutual_abs_corr=mean_mutual_abs_corr(vals[:, t0:t1], min_stocks))
    if planted is not None:
        pv = planted.values(panel, ev)[:, t0:t1]
        rec = recovery_table(vals[:, t0:t1], formulas, pv, planted.names, min_stocks)
        out.update(recovered=int(rec["recovered"].sum()),
                   planted_abs_corr={str(r.planted): float(r.abs_corr) for r in rec.itertuples()},
                   planted_best_alpha={str(r.planted): r.best_alpha for r in rec.itertuples()})
    return out


def run_ablations(make_scorer: Callable[[], Any], panel: Any, target: torch.Tensor,
                  ranges: Mapping[str, tuple[int, int]], planted: AlphaSet | None,
                  base_config: Mapping[str, Any], variants: Mapping[str, Mapping] | None = None,
                  seeds: Sequence[int] = (0,), vocab: Vocabulary | None = None, top_k: int = 5,
                  min_stocks: int = 10,
                  log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Mine once per (variant, seed) and judge each run on the test split.

    ``make_scorer()`` returns a fresh train-split scorer (one per run: the mined set G lives in
    the scorer's reference set). Returns ``{"rows": [...], "summary": [...], "variants": ...,
    "seeds": ..., "top_k": ...}``; ``log`` gets each row as soon as it is done.
    """
    variants = dict(DEFAULT_VARIANTS if variants is None else variants)
    rows: list[dict[str, Any]] = []
    done: dict[tuple[str, int], dict[str, Any]] = {}  # resolved config → its row
    for name, over in variants.items():
        for seed in seeds:
            cfg = merge_config(base_config, {**over, "seed": int(seed)})
            key = (repr(sorted(asdict(Alpha2Config.from_dict(cfg)).items())), int(seed))
            if key in done:  # e.g. beta_0.5 when the base β is 0.5: same run, not mined twice
                row = {**done[key], "variant": name, "overrides": dict(over),
                       "same_as": done[key]["variant"]}
                rows.append(row)
                if log is not None:
                    log(row)
                continue
            scorer = make_scorer()
            t = time.perf_counter()
            res = Alpha2Miner(scorer, vocab, cfg).run(progress=False)
            wall = time.perf_counter() - t
            st = res.search_stats
            row = {"variant": name, "seed": int(seed), "overrides": dict(over),
                   "dims": bool(cfg.get("dims", True)),
                   "diversity": bool(cfg.get("diversity", True)),
                   "beta": float(Alpha2Config.from_dict(cfg).search_config.beta),
                   "wall_seconds": float(wall), "candidates": int(st["candidates_scored"]),
                   "simulations": int(st["simulations"]),
                   "simulations_per_second": st["simulations_per_second"],
                   "candidates_per_second": st["candidates_per_second"],
                   "pruned_fraction_by_depth": st["pruned_fraction_by_depth"],
                   **_judge(res.formulas, panel, target, ranges, planted, top_k, min_stocks),
                   "formulas": list(res.formulas)}
            done[key] = row
            rows.append(row)
            if log is not None:
                log(row)
    return {"rows": rows, "summary": summarise(rows), "variants": variants,
            "seeds": [int(s) for s in seeds], "top_k": int(top_k)}


_MEAN_KEYS = ("n_alphas", "candidates", "simulations", "wall_seconds", "top_test_ic_mean",
              "test_ic_mean", "mean_mutual_abs_corr", "recovered")


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per variant (first-seen order): means over seeds of the numeric figures, and the
    recovered counts per seed."""
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == name]
        s: dict[str, Any] = {"variant": name, "runs": len(rs)}
        for k in _MEAN_KEYS:
            xs = [float(r[k]) for r in rs if k in r and r[k] is not None]
            s[k] = float(np.nanmean(xs)) if xs and np.isfinite(xs).any() else float("nan")
        if "recovered" in rs[0]:
            s["recovered_per_seed"] = [int(r["recovered"]) for r in rs]
            s["planted_abs_corr"] = {
                p: float(np.nanmean([r["planted_abs_corr"][p] for r in rs]))
                for p in rs[0]["planted_abs_corr"]}
        out.append(s)
    return out
