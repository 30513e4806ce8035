"""Why does evaluator selection (Algorithm 2) not beat the best single generator?

Library-level study on a finished ``synthetic_generation`` run (its trained models, the
ingestion panel and splits under ``--data-root``), without re-running the pipeline:

1. **Is the comparison decisive?** Discriminator AUC of every generator and of the selected
   data with repeated K-fold CV on identical real windows and folds (paired), and the paired
   per-fold difference selected − best generator with its standard error.
2. **Is the evaluator well trained?** Its mean per-day log-likelihood on held-out real
   sequences (validation split, real contexts; never used for training) vs on the train split
   vs on each generator's candidates drawn from the same kind of contexts, by horizon block
   (the evaluator is trained on ``train_window``-day windows but scores ``c + T`` days).
3. **Does argmax likelihood pick over-smooth candidates?** Return std and excess kurtosis of the
   kept vs the rejected candidates, next to the real data's.
4. **Alternative rules** on the same candidates: ``random`` (a uniform pick: the mixture with no
   evaluator, the control) and ``typical`` (the candidate whose per-day log-likelihood is
   closest to the evaluator's mean on real train sequences).

Usage::

    python benchmarks/synthetic_selection_study.py --data-root /tmp/synth_run --markets 4
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from alphaminer.data import Splits
from alphaminer.panel import Panel
from alphaminer.parameters import SyntheticParams
from alphaminer.synthetic import (
    MarketConfig,
    RealSequences,
    SyntheticModels,
    assemble_market,
    discriminator_scores,
    paired_difference,
    panel_facts,
    quality_report,
    rep_windows,
)

ROOT = Path(__file__).resolve().parents[1]


def _latest(path: Path) -> Path:
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    return versions[-1] / path.name


def _kurt(r: np.ndarray) -> np.ndarray:
    """Per-column bias-corrected excess kurtosis (as pandas) of ``[T, S]`` returns."""
    import pandas as pd

    return pd.DataFrame(r).kurt().to_numpy()


def _per_day_ll(ev, ctx: torch.Tensor, seq: torch.Tensor, blocks: list[tuple[int, int]]
                ) -> dict[str, float]:
    """Mean per-day evaluator log-likelihood of ``seq [S, T, F]`` after ``ctx`` by day block."""
    with torch.no_grad():
        full = torch.cat([ctx, seq], 1)
        lp = ev.step_log_probs(full)[:, ctx.shape[1]:]          # [S, T]
    out = {}
    for a, b in blocks:
        if b <= lp.shape[1]:
            out[f"days_{a}_{b}"] = float(lp[:, a:b].mean())
    out["all"] = float(lp.mean())
    return out


def real_sequences_ll(models: SyntheticModels, seqs: RealSequences, horizon: int, n: int,
                      rng: np.random.Generator, blocks: list[tuple[int, int]]
                      ) -> dict[str, float]:
    """Evaluator per-day LL on up to ``n`` real (context + ``horizon``) sequences."""
    c = models.context
    ok = seqs.window_ends(c + horizon).numpy()
    d, s = np.nonzero(ok)
    if len(d) == 0:
        return {"n": 0}
    pick = rng.choice(len(d), min(n, len(d)), replace=False)
    d, s = d[pick], s[pick]
    days = d[:, None] - np.arange(c + horizon - 1, -1, -1)
    x = models.scaler.transform(seqs.rep[days, s[:, None]])
    return {"n": int(len(d)), **_per_day_ll(models.evaluator, x[:, :c], x[:, c:], blocks)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="/tmp/synth_run")
    ap.add_argument("--markets", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--env", default="base", help="conf env whose synthetic.yml overrides base")
    ap.add_argument("--out", default="")
    ap.add_argument("--quality-out", default="",
                    help="also write the pipeline's quality_report JSON for these markets")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0, c0 = time.time(), time.process_time()
    root = Path(a.data_root)
    import yaml

    def merged(base: dict, over: dict) -> dict:
        return {**base, **{k: merged(base[k], v) if isinstance(v, dict)
                           and isinstance(base.get(k), dict) else v for k, v in over.items()}}

    conf = yaml.safe_load((ROOT / "conf/base/parameters/synthetic.yml").read_text())["synthetic"]
    if a.env != "base":
        conf = merged(conf, yaml.safe_load(
            (ROOT / f"conf/{a.env}/parameters/synthetic.yml").read_text())["synthetic"])
    params = SyntheticParams.coerce(conf)
    qcfg = params.quality.to_config()
    models = SyntheticModels.load(_latest(root / "06_models/synthetic/models"))
    panel = Panel.load(root / "03_primary/market_panel.parquet")
    splits = Splits.coerce(json.loads((root / "03_primary/splits.json").read_text()),
                           panel.dates, required=("train",))
    train = splits.slice(panel, "train")
    valid_panel = splits.slice(panel, "valid")
    real = RealSequences.from_panel(train)
    cfg: MarketConfig = params.markets.to_config()
    names = list(models.generators)
    rng = np.random.default_rng(a.seed)

    # -- build the quality markets with every candidate kept (as the quality node does)
    markets = [assemble_market(i, real, models.scaler, models.generators, models.evaluator,
                               models.context, cfg, a.seed, keep_candidates=True)
               for i in range(a.markets)]
    print(f"built {len(markets)} markets in {time.time() - t0:.0f}s", flush=True)
    if a.quality_out:  # exactly what the pipeline's quality node computes, on these markets
        stored = sorted((root / "05_model_input/synthetic_markets").glob("*.parquet"))
        wins: dict[str, int] = {}
        index = []
        for f in stored:
            sp = Panel.load(f)
            meta = sp.meta
            index.append({"market": f.stem, "stocks": sp.S, "days": sp.T,
                          "context_end": meta.get("context_end"),
                          **meta.get("generator_wins", {})})
            for g, k in meta.get("generator_wins", {}).items():
                wins[g] = wins.get(g, 0) + int(k)
        q_sources = {g: [m.candidates[g] for m in markets] for g in names}
        q_sources["selected"] = [m.panel for m in markets]
        report = quality_report(train, q_sources, wins, qcfg, seed=a.seed)
        report["markets"] = index
        Path(a.quality_out).write_text(json.dumps(report, indent=1, default=float))
        print(json.dumps({"target": report["target"], "auc": report["auc"],
                          "auc_std": report["auc_std"]}, default=float), flush=True)

    # -- 2. evaluator calibration: per-day LL of real held-out vs train vs candidates
    H = 60
    blocks = [(0, 20), (20, 60)]
    ev = {"valid_real": real_sequences_ll(models, RealSequences.from_panel(valid_panel), H, 400,
                                          rng, blocks),
          "train_real": real_sequences_ll(models, real, H, 400, rng, blocks)}
    long_blocks = [(0, 20), (20, 60), (60, 200), (200, 400)]
    for g in names:
        acc: dict[str, list[float]] = {}
        for m in markets:
            sq = RealSequences.from_panel(m.candidates[g])
            x = models.scaler.transform(sq.rep[1:].transpose(0, 1))       # day 0 has no rep
            e = m.panel.meta
            ctx_days = np.flatnonzero((real.dates >= np.datetime64(e["context_start"]))
                                      & (real.dates <= np.datetime64(e["context_end"])))
            cols = [list(real.instruments).index(s) for s in e["source_instruments"]]
            ctx = models.scaler.transform(real.rep[ctx_days][:, cols].transpose(0, 1))
            for k, v in _per_day_ll(models.evaluator, ctx, x, long_blocks).items():
                acc.setdefault(k, []).append(v)
        ev[g] = {k: float(np.mean(v)) for k, v in acc.items()}
    # per-day LL of the kept vs the rejected candidates (from the selection's own scores)
    kept, rejected = [], []
    for m in markets:
        ll = m.log_likelihood / m.panel.T
        mask = np.zeros_like(ll, bool)
        mask[m.winners, np.arange(ll.shape[1])] = True
        kept.append(ll[mask])
        rejected.append(ll[~mask])
    ev["kept_candidates"] = {"all": float(np.mean(np.concatenate(kept)))}
    ev["rejected_candidates"] = {"all": float(np.mean(np.concatenate(rejected)))}

    # -- 3. kept vs rejected: per-stock return std and kurtosis (markets differ in length)
    def per_stock(r: np.ndarray) -> np.ndarray:
        return np.stack([np.nanstd(r, 0, ddof=1), _kurt(r)], 1)          # [S, 2]

    def stats(rows: list[np.ndarray]) -> dict[str, float]:
        x = np.concatenate(rows) if rows else np.empty((0, 2))
        if not len(x):
            return {}
        return {"ret_std": float(np.nanmean(x[:, 0])),
                "excess_kurtosis": float(np.nanmean(x[:, 1])), "stocks": int(len(x))}

    real_r = np.where(real.valid.numpy(), real.rep[..., 0].numpy(), np.nan)
    smooth = {"real": stats([per_stock(real_r)])}
    for gi, g in enumerate(names):
        win_r, lose_r = [], []
        for m in markets:
            st = per_stock(RealSequences.from_panel(m.candidates[g]).rep[1:, :, 0].numpy())
            win_r.append(st[m.winners == gi])
            lose_r.append(st[m.winners != gi])
        smooth[g] = {"kept": stats(win_r), "rejected": stats(lose_r)}
    # same stocks (same context): the kept candidate minus the mean of the rejected ones
    diffs = []
    for m in markets:
        st = np.stack([per_stock(RealSequences.from_panel(m.candidates[g]).rep[1:, :, 0]
                                 .numpy()) for g in names])                # [G, S, 2]
        won = np.zeros(st.shape[:2], bool)
        won[m.winners, np.arange(st.shape[1])] = True
        kept_st = st[m.winners, np.arange(st.shape[1])]                      # [S, 2]
        rej_st = np.nanmean(np.where(won[..., None], np.nan, st), 0)
        diffs.append(kept_st - rej_st)
    d = np.concatenate(diffs)
    smooth["kept_minus_rejected_same_stock"] = {
        "ret_std": float(np.nanmean(d[:, 0])), "excess_kurtosis": float(np.nanmean(d[:, 1])),
        "share_kept_lower_std": float(np.mean(d[:, 0] < 0)), "stocks": int(len(d))}

    # -- 4. alternative rules on the same candidates
    ref = ev["train_real"]["all"]

    def pick(m, rule: str, i: int) -> np.ndarray:
        ll = m.log_likelihood / m.panel.T
        if rule == "max_likelihood":
            return m.winners
        if rule == "random":
            return np.random.default_rng([a.seed, 7, i]).integers(0, len(names), ll.shape[1])
        if rule == "typical":
            return np.argmin(np.abs(ll - ref), 0)
        raise ValueError(rule)

    def assembled(m, w: np.ndarray) -> Panel:
        vals = torch.stack([m.candidates[names[g]].values[:, s] for s, g in enumerate(w)], 1)
        return replace(m.candidates[names[0]], values=vals)

    sources = {g: [m.candidates[g] for m in markets] for g in names}
    rule_share = {}
    for rule in ("max_likelihood", "random", "typical"):
        ws = [pick(m, rule, i) for i, m in enumerate(markets)]
        sources[f"rule:{rule}"] = [assembled(m, w) for m, w in zip(markets, ws)]
        cnt = np.bincount(np.concatenate(ws), minlength=len(names))
        rule_share[rule] = {g: float(c / cnt.sum()) for g, c in zip(names, cnt)}
    # sanity: the max-likelihood assembly equals the stored selected panels
    same = all(torch.equal(p.values, m.panel.values)
               for p, m in zip(sources["rule:max_likelihood"], markets))

    # -- 1. decisive comparison: repeated, paired CV on the same real windows and folds
    real_w = rep_windows(train, qcfg.window)
    scores, facts = {}, {}
    for n, ps in sources.items():
        syn = np.concatenate([rep_windows(p, qcfg.window) for p in ps])
        scores[n] = discriminator_scores(real_w, syn, classifier=qcfg.classifier,
                                         folds=qcfg.folds, max_windows=qcfg.max_windows,
                                         seed=a.seed, repeats=a.repeats)
        f = panel_facts(ps, qcfg.acf_lags)
        facts[n] = {k: f[k] for k in ("ret_std", "ret_excess_kurtosis", "acf_abs_ret_1",
                                      "vol_absret_corr", "cross_corr")}
        print(f"{n:22s} AUC {scores[n].mean():.4f} ± {scores[n].std(ddof=1):.4f} "
              f"({len(scores[n])} folds, {len(syn)} windows)", flush=True)
    best = min(names, key=lambda g: scores[g].mean())
    out = {
        "markets": [{"stocks": m.panel.S, "days": m.panel.T, **m.wins} for m in markets],
        "auc": {n: {"mean": float(s.mean()), "std": float(s.std(ddof=1)), "folds": len(s)}
                for n, s in scores.items()},
        "best_generator": best,
        "paired_vs_best": {n: paired_difference(scores[n], scores[best])
                           for n in scores if n != best},
        "facts": facts, "evaluator_per_day_ll": ev, "kept_vs_rejected": smooth,
        "rule_win_share": rule_share, "max_likelihood_rule_equals_selected": bool(same),
        "real_windows": int(len(real_w)), "wall_s": time.time() - t0,
        "cpu_s": time.process_time() - c0,
    }
    text = json.dumps(out, indent=1, default=float)
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
