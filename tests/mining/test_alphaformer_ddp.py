"""AlphaFormer pre-training on two gloo processes (CPU, 127.0.0.1, a free port).

- One PPO step on two ranks, each with its own rollout of 4 formulas, gives the weights of one
  process stepping on the mean of the two rollouts' PPO losses (the same total batch of 8),
  computed here by hand from the loss pieces with plain autograd, clipping and Adam.
- ``Pretrainer`` under the process group: each rank gets its own market, both end with
  identical weights, only rank 0 writes checkpoints.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from alphaminer.expr.grammar import RPNBuilder
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alphaformer import (
    AlphaFormer,
    AlphaFormerConfig,
    Pretrainer,
    prepare_markets,
)
from alphaminer.mining.alphaformer import distributed as ddp
from alphaminer.mining.ppo import (
    PPO,
    PPOConfig,
    _entropy,
    collect,
    gae,
    masked_log_softmax,
    ppo_losses,
)

TINY = {"d_model": 16, "heads": 2, "ffn": 32, "value_hidden": 16, "window": 10,
        "max_stocks": 16, "max_len": 10, "dec_layers": 1}
PPO_CFG = {"lr": 1e-2, "epochs": 1, "minibatch_size": 4, "normalize_advantages": False,
           "gamma": 1.0, "gae_lambda": 1.0, "max_grad_norm": 0.5}
RUN = {"updates": 1, "batch_size": 4, "slots": 2, "capacities": [1, 2], "horizon": 5,
       "min_stocks": 10, "ppo": {"epochs": 1, "minibatch_size": 4}}
PER_RANK = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model(vocab: Vocabulary) -> AlphaFormer:
    torch.manual_seed(0)
    return AlphaFormer(vocab, TINY)


def _rollout(model: AlphaFormer, vocab: Vocabulary, markets: list, rank: int):  # noqa: ANN202
    pools = [[], ["Abs(close)"], [], ["Mean(close,20d)"]]
    ctx = model.make_context([m.features for m in markets], [rank % len(markets)] * PER_RANK,
                             pools)
    ro = collect(model, lambda: RPNBuilder(vocab, max_len=TINY["max_len"]), PER_RANK,
                 TINY["max_len"] + 1, generator=torch.Generator().manual_seed(100 + rank),
                 context=ctx)
    ro.set_rewards([0.05 * (rank + 1), -1.0, 0.02, 0.1 - 0.03 * rank])
    return ro


def _rank_main(rank: int, world: int, port: int, out: str, markets: list) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        vocab = Vocabulary.default()
        model = _model(vocab)
        ddp.broadcast_parameters(model)
        ddp.average_gradients(model)
        PPO(model, PPOConfig(**PPO_CFG)).update(_rollout(model, vocab, markets, rank),
                                                generator=torch.Generator().manual_seed(7))
        # PPO leaves the last minibatch's (here: the only one's) averaged, clipped gradients
        torch.save({"state": model.state_dict(),
                    "grad": {k: p.grad for k, p in model.named_parameters()}},
                   Path(out) / f"step_{rank}.pt")

        res = Pretrainer(markets, vocab, TINY, RUN).run(checkpoint_dir=Path(out) / "ck",
                                                        progress=False)
        torch.save({"state": res.model.state_dict(), "markets": res.meta["markets"],
                    "world": res.meta["world_size"]}, Path(out) / f"pre_{rank}.pt")
    finally:
        dist.destroy_process_group()


def _half_loss(model: AlphaFormer, ro, cfg: PPOConfig) -> torch.Tensor:  # noqa: ANN001
    adv, ret = gae(ro.rewards, ro.values, ro.steps, cfg.gamma, cfg.gae_lambda)
    logits, values = model.evaluate(ro.tokens, ro.context)
    st = ro.steps
    mask = torch.where(st.unsqueeze(-1), ro.masks, torch.ones_like(ro.masks))
    logp_all = masked_log_softmax(logits.float(), mask)
    logp = logp_all.gather(-1, ro.tokens.unsqueeze(-1)).squeeze(-1)
    parts = ppo_losses(logp[st], ro.logp[st], adv[st], values.float()[st], ret[st],
                       _entropy(logp_all, mask)[st], cfg.clip)
    return parts["policy"] + cfg.value_coef * parts["value"] - cfg.entropy_coef * parts["entropy"]


@pytest.fixture(scope="module")
def markets(market) -> list:  # noqa: ANN001
    panel = market[0]
    parts = [panel.slice_dates(0, 120), panel.slice_dates(120, 260)]
    return prepare_markets(parts, Vocabulary.default(), AlphaFormerConfig.from_dict(TINY),
                           horizon=5)


def test_two_gloo_ranks_step_like_one_process_with_the_total_batch(markets, tmp_path: Path
                                                                   ) -> None:
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path), markets), nprocs=2, join=True)

    # the single-process reference: the mean of the two rollouts' losses, by hand
    vocab = Vocabulary.default()
    cfg = PPOConfig(**PPO_CFG)
    ref = _model(vocab)
    r0, r1 = _rollout(ref, vocab, markets, 0), _rollout(ref, vocab, markets, 1)
    opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr)
    opt.zero_grad()
    (0.5 * (_half_loss(ref, r0, cfg) + _half_loss(ref, r1, cfg))).backward()
    torch.nn.utils.clip_grad_norm_(ref.parameters(), cfg.max_grad_norm)
    opt.step()
    start = _model(vocab).state_dict()
    grads = {k: p.grad for k, p in ref.named_parameters()}
    for rank in (0, 1):
        got = torch.load(tmp_path / f"step_{rank}.pt")
        moved = 0.0
        for k, want in ref.state_dict().items():
            g, w = got["grad"][k], grads[k]
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)
            # Adam's first step is lr·g/(|g|+eps): only a gradient well above rounding noise
            # fixes its sign, so the weights are compared where |g| > 1e-5
            sure = w.abs() > 1e-5
            torch.testing.assert_close(got["state"][k][sure], want[sure], rtol=0, atol=1e-6)
            moved = max(moved, float((want - start[k]).abs().max()))
        assert moved > 1e-3  # the step really changed the weights
    # and the two ranks hold the same weights, bit for bit
    s0, s1 = torch.load(tmp_path / "step_0.pt"), torch.load(tmp_path / "step_1.pt")
    for k, v in s0["state"].items():
        torch.testing.assert_close(s1["state"][k], v, rtol=0, atol=0)

    # Pretrainer: one market per rank, identical weights after the update, one checkpoint writer
    p0, p1 = torch.load(tmp_path / "pre_0.pt"), torch.load(tmp_path / "pre_1.pt")
    assert (p0["markets"], p1["markets"], p0["world"]) == (["market_0"], ["market_1"], 2)
    for k, v in p0["state"].items():
        torch.testing.assert_close(p1["state"][k], v, rtol=0, atol=0, msg=k)
    runs = [p for p in (tmp_path / "ck").iterdir() if p.is_dir()]
    assert len(runs) == 1  # rank 1 (another run key: its own market) wrote nothing


def test_single_process_is_world_one_and_shards_nothing() -> None:
    ctx = ddp.init_from_env()  # no WORLD_SIZE: nothing to join
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.active) == (0, 1, True, False)
    assert ddp.shard([1, 2, 3], ctx) == [1, 2, 3]
    assert ddp.shard(list(range(5)), ddp.DistContext(rank=1, world_size=2)) == [1, 3]
    with pytest.raises(ValueError, match="1 market"):
        ddp.shard([1], ddp.DistContext(rank=0, world_size=2))
    assert ddp.average_gradients(torch.nn.Linear(2, 1), ctx) == []
