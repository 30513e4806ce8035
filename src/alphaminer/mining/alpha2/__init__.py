"""Alpha2: RL-guided MCTS over alpha programs with dimension pruning (``docs/methods/alpha2.md``).

- :mod:`.program` — instructions, implicit register assignment, the action table and its masks;
- :mod:`.mcts` — PUCT search with the top-k value backup;
- :mod:`.network` — the flax policy/value network and its optax training step;
- :mod:`.miner` — self-play, replay, training, checkpoints and the alpha set.
"""

from alphaminer.mining.alpha2.program import ActionTable, Operand, ProgramState

__all__ = ["ActionTable", "Operand", "ProgramState"]
