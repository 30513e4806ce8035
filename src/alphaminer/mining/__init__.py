"""Formula miners and the pieces they share (docs/mining_kit.md, docs/methods/).

The mining kit: the vocabulary and grammar (:mod:`alphaminer.expr.vocab`,
:mod:`alphaminer.expr.grammar`), typed random trees (:mod:`alphaminer.expr.trees`), the candidate
scorer and pool (:mod:`alphaminer.evaluation`), one PPO (:mod:`alphaminer.mining.ppo`) and one
checkpoint format (:mod:`alphaminer.checkpoint`). Miners (``gp``, ``alphagen``, ``alpha2``,
``alphaformer``) are built on these and never write their own IC, mask, pool or checkpoint code.
"""
