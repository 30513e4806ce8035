"""AlphaFormer pre-training with a held-out reward (``PretrainConfig.reward_holdout``): the day
split, the reward against a plain-numpy reference, and no look-ahead from the held-out days into
the fitted pool or the dataset embedding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import (
    AlphaFormerConfig,
    PretrainConfig,
    Pretrainer,
    market_features,
    prepare_markets,
)
from alphaminer.mining.base import offer_to_pool

TINY = {"d_model": 16, "heads": 2, "ffn": 32, "value_hidden": 16, "window": 10,
        "max_stocks": 16, "max_len": 10, "dec_layers": 1}
H = 5
RUN = {"updates": 2, "batch_size": 8, "slots": 2, "capacities": [2], "horizon": H,
       "min_stocks": 10, "reward_holdout": 0.3, "ppo": {"epochs": 1, "minibatch_size": 8}}


def _prepare(panels, holdout=0.3):  # noqa: ANN001, ANN202
    return prepare_markets(panels, Vocabulary.default(), AlphaFormerConfig.from_dict(TINY),
                           horizon=H, holdout=holdout)


def _feature(panel, name: str) -> np.ndarray:  # noqa: ANN001
    v = panel.values[..., panel.features.index(name)].numpy().astype(np.float64)
    return np.where(panel.universe.numpy(), v, np.nan)


def _reference_ic(values: list[np.ndarray], w: np.ndarray, y: np.ndarray,
                  min_stocks: int = 10) -> float:
    """Mean over days of Pearson(Σ w_k z_k, y), z_k the day's z-score of factor k over the cells
    where it and the label are finite (0 elsewhere); days with fewer than min_stocks pairs
    skipped."""
    ics = []
    for t in range(y.shape[0]):
        comb = np.zeros(y.shape[1])
        for wk, v in zip(w, values):
            ok = np.isfinite(v[t]) & np.isfinite(y[t])
            if ok.sum() < 2:
                continue
            x = v[t][ok]
            sd = x.std()
            z = np.zeros(y.shape[1])
            if sd > 0:
                z[ok] = (x - x.mean()) / sd
            comb += wk * z
        ok = np.isfinite(y[t])
        if ok.sum() < min_stocks:
            continue
        ics.append(np.corrcoef(comb[ok], y[t][ok])[0, 1])
    return float(np.mean(ics))


def test_holdout_days_and_window_end(market) -> None:  # noqa: ANN001
    panel = market[0].slice_dates(0, 200)
    (mk,) = _prepare([panel])
    t_end = int(np.nonzero(np.isfinite(mk.target.numpy()).any(axis=1))[0][-1]) + 1
    t_ho = t_end - round(0.3 * t_end)
    assert mk.holdout_days == (t_ho, t_end)
    assert mk.fit_days == (0, t_ho - H)  # a horizon gap: no fitting label reads a held-out close
    # the dataset window ends where the fitting data does (as at inference), not at t_end
    want = market_features(panel, t_ho, TINY["window"], Vocabulary.default().features,
                           TINY["max_stocks"])
    assert torch.equal(mk.features, want)
    (plain,) = _prepare([panel], holdout=0.0)
    assert plain.fit_days is None and plain.holdout_days is None


def test_holdout_reward_matches_numpy(market) -> None:  # noqa: ANN001
    panel = market[0].slice_dates(0, 200)
    markets = _prepare([panel])
    pt = Pretrainer(markets, Vocabulary.default(), TINY, RUN)
    slot = pt._new_slot()
    assert slot.scorer.days == markets[0].fit_days
    offer_to_pool(slot.scorer, ["Sub(close,open)", "Div(high,low)"])
    pool = slot.scorer.pool
    assert len(pool) == 2
    t0, t1 = markets[0].holdout_days
    y = markets[0].target.numpy().astype(np.float64)[t0:t1]
    vals = {"Sub(close,open)": _feature(panel, "close") - _feature(panel, "open"),
            "Div(high,low)": _feature(panel, "high") / _feature(panel, "low")}
    ref = _reference_ic([vals[n][t0:t1] for n in pool.names], np.asarray(pool.weights), y)
    assert pt._reward(slot) == pytest.approx(ref, abs=1e-5)
    # and it is not the in-sample pool IC
    assert abs(pt._reward(slot) - pool.pool_ic()) > 1e-4


def test_holdout_days_cannot_change_the_fitted_pool(market) -> None:  # noqa: ANN001
    panel = market[0].slice_dates(0, 200)
    (mk,) = _prepare([panel])
    t_ho = mk.holdout_days[0]
    fut = panel.values.clone()
    fut[t_ho:] = torch.flip(fut[t_ho:], dims=[1]) * 1.7
    (mk2,) = _prepare([replace(panel, values=fut)])
    assert torch.equal(mk2.features, mk.features)
    t_fit = mk.fit_days[1]
    torch.testing.assert_close(mk2.target[:t_fit], mk.target[:t_fit], rtol=0, atol=0,
                               equal_nan=True)  # labels of the fitting days read no held-out day
    rewards, pools = [], []
    for m in (mk, mk2):
        pt = Pretrainer([m], Vocabulary.default(), TINY, RUN)
        slot = pt._new_slot()
        offer_to_pool(slot.scorer, ["Sub(close,open)", "Mean(volume,10d)", "Div(high,low)"])
        pools.append((slot.scorer.pool.names, np.asarray(slot.scorer.pool.weights)))
        rewards.append(pt._reward(slot))
    assert pools[0][0] == pools[1][0]
    np.testing.assert_array_equal(pools[0][1], pools[1][1])
    assert rewards[0] != rewards[1]  # the reward does read the held-out days


def test_holdout_pretraining_runs_and_logs(market) -> None:  # noqa: ANN001
    panel = market[0]
    markets = _prepare([panel.slice_dates(0, 150), panel.slice_dates(150, 300)])
    pt = Pretrainer(markets, Vocabulary.default(), TINY, RUN)
    res = pt.run(progress=False)
    assert len(res.history) == RUN["updates"]
    assert all(np.isfinite(h["mean_holdout_pool_ic"]) for h in res.history)
    assert res.meta["pretrain"]["reward_holdout"] == 0.3


def test_holdout_config_and_market_mismatch(market) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="reward_holdout"):
        PretrainConfig(reward_holdout=1.0)
    panel = market[0].slice_dates(0, 200)
    with pytest.raises(ValueError, match="reward_holdout"):
        Pretrainer(_prepare([panel], holdout=0.0), Vocabulary.default(), TINY, RUN)
    with pytest.raises(ValueError, match="too few"):
        _prepare([market[0].slice_dates(0, 40)], holdout=0.5)


def test_unchanged_invalid_reward_is_the_pool_as_it_stands(market) -> None:  # noqa: ANN001
    """``invalid_reward: unchanged``: an unscorable formula leaves the pool as it is, so its
    reward is that pool's (held-out) IC, the numpy reference; 0 while the pool is empty."""
    panel = market[0].slice_dates(0, 200)
    markets = _prepare([panel])
    pt = Pretrainer(markets, Vocabulary.default(), TINY, {**RUN, "invalid_reward": "unchanged"})
    slot = pt._new_slot()
    bad = "Sub(close,Ref(open,150d))"  # far too few valid days: the scorer cannot score it
    assert not slot.scorer.score([bad])[0].ok
    t0, t1 = markets[0].holdout_days
    y = markets[0].target.numpy().astype(np.float64)[t0:t1]
    vals = {"Sub(close,open)": _feature(panel, "close") - _feature(panel, "open"),
            "Div(high,low)": _feature(panel, "high") / _feature(panel, "low")}

    def reference() -> float:
        pool = slot.scorer.pool
        return _reference_ic([vals[n][t0:t1] for n in pool.names], np.asarray(pool.weights), y)

    rewards, ok = pt._rewards(slot, [bad, "Sub(close,open)", bad])
    one = reference()
    r2, ok2 = pt._rewards(slot, ["Div(high,low)", bad])
    two = reference()
    rewards, ok = rewards + r2, ok + ok2
    assert ok == 2 and len(slot.scorer.pool) == 2
    assert rewards[0] == 0.0
    assert rewards[1] == pytest.approx(one, abs=1e-5)
    assert rewards[2] == rewards[1]
    assert rewards[3] == pytest.approx(two, abs=1e-5)
    assert rewards[4] == rewards[3]
    # a number stays a number; anything else is refused
    pt2 = Pretrainer(markets, Vocabulary.default(), TINY, {**RUN, "invalid_reward": -0.5})
    assert pt2._rewards(pt2._new_slot(), [bad])[0] == [-0.5]
    with pytest.raises(ValueError, match="unchanged"):
        PretrainConfig(invalid_reward="previous")
