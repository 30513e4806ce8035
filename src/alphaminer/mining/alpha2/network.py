"""Alpha2's policy/value network in JAX (flax + optax), with a target copy for value targets.

An MLP torso over the fixed-size program encoding feeds a policy head (one logit per
instruction of the action table) and a value head. Training minimises the cross-entropy to the
search's visit-count distribution over legal actions plus the squared error to n-step value
targets (``td_steps`` rewards + the *target* network's value, refreshed every
``target_update`` steps), with SGD + momentum (paper: lr 2e-4, momentum 0.9, batch 128).

Inference is batched and padded to power-of-two batch sizes so ``jit`` compiles a handful of
shapes only. Parameters and optimizer state flatten to lists of numpy arrays for the kit's
checkpoint format.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX and torch share a GPU

from typing import Any  # noqa: E402

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from alphaminer.mining.alpha2.net_config import NetConfig  # noqa: E402

__all__ = ["NetConfig", "PolicyValueNet", "Trainer"]


class PolicyValueNet(nn.Module):
    n_actions: int
    hidden: int = 128
    layers: int = 2

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        for _ in range(self.layers):
            x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.n_actions)(x), nn.Dense(1)(x)[..., 0]


def _bucket(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class Trainer:
    """Parameters, target parameters and optimizer of one :class:`PolicyValueNet`."""

    def __init__(self, n_inputs: int, n_actions: int, cfg: NetConfig, seed: int) -> None:
        self.cfg = cfg
        self.model = PolicyValueNet(n_actions, cfg.hidden, cfg.layers)
        self.params = self.model.init(jax.random.key(seed), jnp.zeros((1, n_inputs)))
        self.target_params = self.params
        self.tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                              optax.sgd(cfg.lr, momentum=cfg.momentum))
        self.opt_state = self.tx.init(self.params)
        self.steps = 0
        model, tx, scale, vc = self.model, self.tx, cfg.value_scale, cfg.value_coef

        def predict(params: Any, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
            logits, v = model.apply(params, x)
            return logits, v / scale

        def loss_fn(params: Any, x, mask, pi, z):  # noqa: ANN001
            logits, v = model.apply(params, x)
            logp = jax.nn.log_softmax(jnp.where(mask, logits, -1e9), axis=-1)
            policy = -jnp.sum(jnp.where(mask, pi * logp, 0.0), axis=-1).mean()
            value = jnp.mean((v - z * scale) ** 2)
            return policy + vc * value, (policy, value)

        def step(params, opt_state, x, mask, pi, z):  # noqa: ANN001
            (loss, (pl, vl)), g = jax.value_and_grad(loss_fn, has_aux=True)(params, x, mask, pi, z)
            updates, opt_state = tx.update(g, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss, pl, vl

        self._predict = jax.jit(predict)
        self._step = jax.jit(step)

    def predict(self, x: np.ndarray, target: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Policy logits ``[B, A]`` and values ``[B]`` (returns, unscaled) for a batch."""
        n = len(x)
        b = _bucket(n)
        xp = np.zeros((b, x.shape[1]), dtype=np.float32)
        xp[:n] = x
        logits, v = self._predict(self.target_params if target else self.params, xp)
        return np.asarray(logits)[:n], np.asarray(v)[:n]

    def train_step(self, x: np.ndarray, mask: np.ndarray, pi: np.ndarray, z: np.ndarray
                   ) -> dict[str, float]:
        self.params, self.opt_state, loss, pl, vl = self._step(
            self.params, self.opt_state, jnp.asarray(x), jnp.asarray(mask), jnp.asarray(pi),
            jnp.asarray(z))
        self.steps += 1
        return {"loss": float(loss), "policy_loss": float(pl), "value_loss": float(vl)}

    def update_target(self) -> None:
        self.target_params = self.params

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        leaves = jax.tree_util.tree_leaves
        return {"params": [np.asarray(a) for a in leaves(self.params)],
                "target": [np.asarray(a) for a in leaves(self.target_params)],
                "opt": [np.asarray(a) for a in leaves(self.opt_state)],
                "steps": self.steps}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        def rebuild(like: Any, arrays: list) -> Any:
            treedef = jax.tree_util.tree_structure(like)
            return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in arrays])

        self.params = rebuild(self.params, st["params"])
        self.target_params = rebuild(self.params, st["target"])
        self.opt_state = rebuild(self.opt_state, st["opt"])
        self.steps = int(st["steps"])
