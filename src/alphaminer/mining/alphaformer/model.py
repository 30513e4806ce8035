"""AlphaFormer's network: dataset embedder, pool-factor embedder, encoder-decoder Transformer,
value head; implements :class:`alphaminer.mining.ppo.SequencePolicy`.

- **Dataset embedder**: the last ``window`` days of a market's normalised features per stock
  (:func:`market_features`) → a per-stock LSTM (last hidden state) → a Transformer encoder across
  stocks → the mean over stocks: one vector ``d`` per market.
- **Factor embedder**: an LSTM over each pool formula's RPN token ids (last hidden state) → ``f_i``.
- **Encoder input**: ``x_i = d + f_i`` for every pool member (``d`` alone for an empty pool); no
  positional encoding, so the encoder sees the pool as a set.
- **Decoder**: a causal Transformer decoder over the formula prefix (begin token + the tokens so
  far, learned positions) cross-attending to the encoder output; a linear layer gives the logits
  of the next token (the grammar mask is applied by :func:`alphaminer.mining.ppo.collect`).
- **Value head**: a 2-layer MLP on the encoder output (mean over its tokens). The value depends on
  the (dataset, pool) context only, so with γ = λ = 1 the advantage of every step of a formula is
  ``r − V`` (Algorithm 3).

The context every call takes (:meth:`AlphaFormer.make_context`) is a dict with per-sequence
tensors ``market [B]``, ``pool_tokens [B, K, Lf]`` (pad id ``n_tokens``) and ``pool_mask [B, K]``
and the shared list ``data`` of ``[S, window, F]`` market feature tensors (PPO slices the
per-sequence tensors for minibatches and passes the list through).

Weights are stored pickle-free: ``model.safetensors`` + ``config.json`` (architecture, vocabulary,
free-form meta) by :func:`save_model` / :func:`load_model`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from alphaminer.checkpoint import atomic_save_tensors, atomic_write_bytes
from alphaminer.expr.vocab import Vocabulary
from alphaminer.panel import Panel
from alphaminer.runtime import config_from

__all__ = ["FORMAT", "AlphaFormer", "AlphaFormerConfig", "SavedModel", "load_model",
           "market_features", "save_model"]

FORMAT = "alphaminer.alphaformer.v1"
#: features scaled as volumes (log, centred on the window mean); the rest are prices (log of the
#: ratio to the stock's last close in the window)
VOLUME_LIKE = frozenset({"volume", "amount"})


@dataclass(frozen=True)
class AlphaFormerConfig:
    """Architecture (AlphaFormer Table 8 in conf/paper: LSTMs 2 × 128, stock encoder 2 × 128,
    2 encoder and 4 decoder layers, FFN 512). CPU-sized defaults."""

    d_model: int = 64
    heads: int = 4
    ffn: int = 128
    lstm_layers: int = 1
    stock_layers: int = 1
    factor_lstm_layers: int = 1
    enc_layers: int = 1
    dec_layers: int = 2
    value_hidden: int = 64
    window: int = 20
    max_stocks: int = 64
    max_len: int = 20
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for k in ("d_model", "heads", "ffn", "lstm_layers", "stock_layers", "factor_lstm_layers",
                  "enc_layers", "dec_layers", "value_hidden", "window", "max_stocks", "max_len"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, d: Any) -> AlphaFormerConfig:
        return config_from(cls, d)


def market_features(panel: Panel, t_end: int, window: int, features: Sequence[str],
                    max_stocks: int) -> torch.Tensor:
    """``[S', window, F]`` normalised features of days ``[t_end − window, t_end)`` (nothing at or
    after ``t_end`` is read: no look-ahead).

    Prices: ``log(x / close)`` with the stock's close on the window's last day (scale-free);
    volume-like: ``log1p(x)`` minus its window mean. Clipped to ±5, NaN → 0. Stocks whose last
    close is missing are dropped; at most ``max_stocks`` evenly spaced ones are kept (a fixed,
    seed-free subset, so the embedding is a function of the data alone).
    """
    if not 0 < window <= t_end <= panel.T:
        raise ValueError(f"need 0 < window ({window}) <= t_end ({t_end}) <= T ({panel.T})")
    idx = [panel.features.index(f) for f in features]
    x = panel.values[t_end - window:t_end][:, :, idx].to(torch.float64).cpu()  # [L, S, F]
    close = panel.values[t_end - 1, :, panel.features.index("close")].to(torch.float64).cpu()
    ok = torch.isfinite(close) & (close > 0)
    out = torch.empty_like(x)
    for j, f in enumerate(features):
        v = x[:, :, j]
        if f in VOLUME_LIKE:
            lv = torch.log1p(torch.where(v >= 0, v, torch.nan))
            out[:, :, j] = lv - torch.nanmean(lv, dim=0, keepdim=True)
        else:
            out[:, :, j] = torch.log(torch.where(v > 0, v, torch.nan) / close)
    out = torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).clamp(-5, 5)
    keep = torch.nonzero(ok).squeeze(1)
    if keep.numel() == 0:
        raise ValueError(f"no stock has a close on day {t_end - 1}: cannot embed the market")
    if keep.numel() > max_stocks:
        keep = keep[np.linspace(0, keep.numel() - 1, max_stocks).round().astype(np.int64)]
    return out[:, keep].transpose(0, 1).to(torch.float32).contiguous()


def _decoder_layer_last(layer: nn.TransformerDecoderLayer, x: torch.Tensor, seen: torch.Tensor,
                        mem: torch.Tensor, mem_pad: torch.Tensor) -> torch.Tensor:
    """``layer``'s output at the newest position ``x [B, 1, d]`` given all its inputs so far
    ``seen [B, t+1, d]`` (``x`` last): the same sub-blocks as ``TransformerDecoderLayer.forward``
    with the causal self-attention reduced to its last query."""
    if layer.norm_first:
        kv = layer.norm1(seen)
        x = x + layer.dropout1(layer.self_attn(layer.norm1(x), kv, kv, need_weights=False)[0])
        x = x + layer._mha_block(layer.norm2(x), mem, None, mem_pad)
        return x + layer._ff_block(layer.norm3(x))
    x = layer.norm1(x + layer.dropout1(layer.self_attn(x, seen, seen, need_weights=False)[0]))
    x = layer.norm2(x + layer._mha_block(x, mem, None, mem_pad))
    return layer.norm3(x + layer._ff_block(x))


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class AlphaFormer(nn.Module):
    """The policy/value network (module docstring)."""

    def __init__(self, vocab: Vocabulary, config: AlphaFormerConfig | dict | None = None
                 ) -> None:
        super().__init__()
        cfg = config if isinstance(config, AlphaFormerConfig) \
            else AlphaFormerConfig.from_dict(config)
        self.config = cfg
        self.vocab = vocab
        self.n_tokens = len(vocab)
        self.pad = self.n_tokens  # pool formulas are padded with this id
        self.bos = self.n_tokens  # the decoder's begin token (its own embedding table)
        d = cfg.d_model
        nf = len(vocab.features)
        self.data_lstm = nn.LSTM(nf, d, num_layers=cfg.lstm_layers, batch_first=True)
        self.stock_encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True),
            cfg.stock_layers, enable_nested_tensor=False)
        self.factor_embed = nn.Embedding(self.n_tokens + 1, d, padding_idx=self.pad)
        self.factor_lstm = nn.LSTM(d, d, num_layers=cfg.factor_lstm_layers, batch_first=True)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True),
            cfg.enc_layers, enable_nested_tensor=False)
        self.tok_embed = nn.Embedding(self.n_tokens + 1, d)
        self.pos_embed = nn.Embedding(cfg.max_len + 2, d)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True),
            cfg.dec_layers)
        self.head = nn.Linear(d, self.n_tokens)
        self.value_head = _mlp(d, cfg.value_hidden, 1)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # ------------------------------------------------------------------ context
    def pool_tokens(self, formulas: Sequence[str]) -> torch.Tensor:
        """``[K, Lf]`` RPN token ids of pool formulas, padded with :attr:`pad`."""
        ids = [self.vocab.encode(f) for f in formulas]
        L = max((len(t) for t in ids), default=1)
        out = torch.full((len(ids), L), self.pad, dtype=torch.long)
        for i, t in enumerate(ids):
            out[i, :len(t)] = torch.tensor(t, dtype=torch.long)
        return out

    def make_context(self, data: Sequence[torch.Tensor], market: Sequence[int],
                     pools: Sequence[Sequence[str]]) -> dict[str, Any]:
        """The per-sequence context: sequence ``b`` is conditioned on market ``market[b]``
        (an index into ``data``) and the pool formulas ``pools[b]``."""
        B = len(market)
        if len(pools) != B:
            raise ValueError(f"{len(pools)} pools for {B} sequences")
        memo: dict[tuple[str, ...], torch.Tensor] = {}  # rows usually share one pool
        toks = [memo[k] if k in memo else memo.setdefault(k, self.pool_tokens(k))
                for k in (tuple(map(str, p)) for p in pools)]
        K = max((t.shape[0] for t in toks), default=0)
        Lf = max((t.shape[1] for t in toks if t.shape[0]), default=1)
        pt = torch.full((B, K, Lf), self.pad, dtype=torch.long)
        pm = torch.zeros((B, K), dtype=torch.bool)
        for b, t in enumerate(toks):
            pt[b, :t.shape[0], :t.shape[1]] = t
            pm[b, :t.shape[0]] = True
        return {"market": torch.as_tensor(list(market), dtype=torch.long), "pool_tokens": pt,
                "pool_mask": pm, "data": list(data)}

    # ------------------------------------------------------------------ embedders
    def embed_dataset(self, x: torch.Tensor) -> torch.Tensor:
        """``[S, window, F]`` market features → ``[d_model]``."""
        h, _ = self.data_lstm(x.to(self.device))
        z = self.stock_encoder(h[:, -1].unsqueeze(0))  # stocks are the sequence
        return z.mean(dim=1).squeeze(0)

    def embed_factors(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, Lf]`` padded RPN ids → ``[N, d_model]`` (the LSTM state after the last token)."""
        tokens = tokens.to(self.device)
        lengths = (tokens != self.pad).sum(dim=1).clamp(min=1)
        out, _ = self.factor_lstm(self.factor_embed(tokens))
        return out[torch.arange(tokens.shape[0], device=self.device), lengths - 1]

    def encode(self, context: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder memory ``[B, K', d]``, its padding mask ``[B, K']`` and the value ``[B]``.

        Sequences with the same (market, pool) context — a slot's whole share of a batch — are
        encoded once and shared.
        """
        market = context["market"]
        pt, pm = context["pool_tokens"], context["pool_mask"]
        key = torch.cat([market.view(-1, 1), pt.flatten(1)], dim=1)
        uniq_rows, inv = torch.unique(key, dim=0, return_inverse=True)
        if uniq_rows.shape[0] < key.shape[0]:
            first = torch.zeros(uniq_rows.shape[0], dtype=torch.long)
            first.scatter_(0, inv.flip(0), torch.arange(key.shape[0] - 1, -1, -1))
            sub = {**context, "market": market[first], "pool_tokens": pt[first],
                   "pool_mask": pm[first]}
            mem, pad, value = self._encode(sub)
            inv = inv.to(self.device)
            return mem[inv], pad[inv], value[inv]
        return self._encode(context)

    def _encode(self, context: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        market = context["market"]
        uniq, inv = torch.unique(market, return_inverse=True)
        d = torch.stack([self.embed_dataset(context["data"][int(m)]) for m in uniq])[
            inv.to(self.device)]  # [B, d]
        pm = context["pool_mask"].to(self.device)
        B, K = pm.shape
        if K == 0:
            x = d.unsqueeze(1)
            valid = torch.ones((B, 1), dtype=torch.bool, device=self.device)
        else:
            pt = context["pool_tokens"].to(self.device)
            f = torch.zeros((B, K, d.shape[1]), device=self.device, dtype=d.dtype)
            if bool(pm.any()):
                f[pm] = self.embed_factors(pt[pm])
            x = d.unsqueeze(1) + f  # x_i = d + f_i; an empty pool's row is d at position 0
            valid = pm.clone()
            valid[:, 0] = True
        mem = self.encoder(x, src_key_padding_mask=~valid)
        w = valid.unsqueeze(-1).to(mem.dtype)
        pooled = (mem * w).sum(dim=1) / w.sum(dim=1)
        value = self.value_head(pooled).squeeze(-1)
        return mem, ~valid, value

    def decode(self, inp: torch.Tensor, mem: torch.Tensor, mem_pad: torch.Tensor
               ) -> torch.Tensor:
        """Logits ``[B, L, V]`` for decoder inputs ``[B, L]`` (begin token first), causal."""
        L = inp.shape[1]
        pos = torch.arange(L, device=self.device)
        h = self.tok_embed(inp.to(self.device)) + self.pos_embed(pos).unsqueeze(0)
        causal = nn.Transformer.generate_square_subsequent_mask(L, device=self.device)
        out = self.decoder(h, mem, tgt_mask=causal, tgt_is_causal=True,
                           memory_key_padding_mask=mem_pad)
        return self.head(out)

    # ------------------------------------------------------------------ SequencePolicy
    def initial_state(self, batch: int, context: dict[str, Any]) -> dict[str, Any]:
        mem, mem_pad, value = self.encode(context)
        if mem.shape[0] != batch:
            raise ValueError(f"context has {mem.shape[0]} sequences, the batch {batch}")
        prefix = torch.full((batch, 1), self.bos, dtype=torch.long, device=self.device)
        return {"mem": mem, "mem_pad": mem_pad, "value": value, "prefix": prefix}

    def step(self, prev: torch.Tensor, state: dict[str, Any], context: Any = None
             ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Logits of the next token: :meth:`decode`'s last position, computed incrementally.

        The decoder is causal, so every layer's output at an earlier position is the one computed
        at that earlier step: ``state["cache"]`` keeps each layer's inputs so far, and a step runs
        only the newest position through the layers (self-attention over the cached inputs,
        which is the causal mask's last row) instead of the whole prefix again.
        """
        prefix = state["prefix"]
        if not bool((prev < 0).all()):
            prefix = torch.cat([prefix, prev.to(self.device).clamp(min=0).unsqueeze(1)], dim=1)
        t = prefix.shape[1] - 1
        x = self.tok_embed(prefix[:, t:]) + self.pos_embed.weight[t]  # [B, 1, d]
        old = state.get("cache")
        cache = []
        for i, layer in enumerate(self.decoder.layers):
            seen = x if old is None else torch.cat([old[i], x], dim=1)
            cache.append(seen)
            x = _decoder_layer_last(layer, x, seen, state["mem"], state["mem_pad"])
        if self.decoder.norm is not None:
            x = self.decoder.norm(x)
        logits = self.head(x[:, 0])
        return logits.cpu(), state["value"].cpu(), {**state, "prefix": prefix, "cache": cache}

    def evaluate(self, tokens: torch.Tensor, context: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        mem, mem_pad, value = self.encode(context)
        B, L = tokens.shape
        inp = torch.cat([torch.full((B, 1), self.bos, dtype=torch.long),
                         tokens[:, :-1].cpu()], dim=1)
        logits = self.decode(inp, mem, mem_pad)
        return logits.cpu(), value.cpu().unsqueeze(1).expand(B, L)


@dataclass
class SavedModel:
    """A model with its meta (training data, budget, learning-curve summary) and where it was
    loaded from: what the catalog's model dataset loads and saves."""

    model: AlphaFormer
    meta: dict[str, Any]
    source: str = ""
    #: the pre-training's learning curve (a DataFrame, one row per update), saved next to the
    #: weights as ``learning_curve.csv`` so that the report can draw it for any model folder
    history: Any = None


def save_model(model: AlphaFormer, folder: str | Path, meta: dict[str, Any] | None = None,
               history: Any = None) -> Path:
    """``folder/model.safetensors`` + ``folder/config.json`` (architecture, vocabulary, meta),
    and ``folder/learning_curve.csv`` when ``history`` (a DataFrame) is given."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save_tensors(tensors, folder / "model.safetensors")
    cfg = {"format": FORMAT, "model": asdict(model.config), "vocabulary": model.vocab.to_dict(),
           "meta": meta or {}}
    atomic_write_bytes(folder / "config.json", json.dumps(cfg, indent=2, default=str).encode())
    if history is not None:
        atomic_write_bytes(folder / "learning_curve.csv",
                           history.to_csv(index=False).encode())
    return folder


def load_model(folder: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[AlphaFormer, dict[str, Any]]:
    """The model saved by :func:`save_model` and its meta."""
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("format") != FORMAT:
        raise ValueError(f"{folder}: not an AlphaFormer model (format {cfg.get('format')!r})")
    model = AlphaFormer(Vocabulary.from_dict(cfg["vocabulary"]),
                        AlphaFormerConfig.from_dict(cfg["model"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.to(device), dict(cfg.get("meta", {}))
