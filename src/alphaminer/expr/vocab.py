"""Mining vocabulary: the token set every miner (GP, RL, MCTS, Transformer) builds formulas from.

Token ids are derived from the operator table and the chosen parameters, in the fixed order
features, constants, windows, operators (operator-table order, restricted to the chosen names),
END. A token's text is its RPN form (:func:`alphaminer.expr.parser.to_rpn`): ``close``,
``-0.5``, ``20d``, ``Mean``. The vocabulary also answers *which leaf tokens an operator accepts
at each argument position*, probed through :class:`~alphaminer.expr.ast.Call` itself, so new
argument types or constant domains in the table need no change here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from alphaminer.expr.ast import Call, Constant, ExprError, Feature, Node, Window
from alphaminer.expr.operators import OPERATORS, ArgType, Operator
from alphaminer.expr.parser import from_rpn, to_rpn
from alphaminer.panel import BASE_FEATURES

#: AlphaFormer Tables 4-6.
DEFAULT_OPERATORS: tuple[str, ...] = (
    "Abs", "Log", "Add", "Sub", "Mul", "Div", "Greater", "Less", "Ref", "Mean", "Med", "Sum",
    "Std", "Var", "Max", "Min", "Mad", "Delta", "WMA", "EMA", "Cov", "Corr")
DEFAULT_FEATURES: tuple[str, ...] = ("open", "close", "high", "low", "volume", "vwap")
DEFAULT_CONSTANTS: tuple[float, ...] = (
    -30.0, -10.0, -5.0, -2.0, -1.0, -0.5, -0.01, 0.01, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
DEFAULT_WINDOWS: tuple[int, ...] = (10, 20, 30, 40, 50)

END = "END"


class TokenKind(StrEnum):
    FEATURE = "feature"
    CONSTANT = "constant"
    WINDOW = "window"
    OPERATOR = "operator"
    END = "end"


def _no_duplicates(values: Sequence[Any], what: str) -> None:
    seen: set[Any] = set()
    dup = [v for v in values if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
    if dup:
        raise ValueError(f"duplicate {what}: {dup}")


class VocabularyConfig(BaseModel):
    """Validated vocabulary parameters (the ``vocabulary:`` block of a miner's parameters).

    Windows may be written ``20`` or ``"20d"``; they must be positive (negative windows read the
    future and are for labels only). A window below an operator's minimum is allowed in the
    vocabulary; that operator simply cannot use it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    operators: tuple[str, ...] = DEFAULT_OPERATORS
    features: tuple[str, ...] = DEFAULT_FEATURES
    constants: tuple[float, ...] = DEFAULT_CONSTANTS
    windows: tuple[int, ...] = DEFAULT_WINDOWS

    @field_validator("operators")
    @classmethod
    def _known_operators(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in v if name not in OPERATORS]
        if unknown:
            raise ValueError(f"unknown operators {unknown}; valid: {', '.join(OPERATORS)}")
        if not v:
            raise ValueError("the vocabulary needs at least one operator")
        _no_duplicates(v, "operators")
        return v

    @field_validator("features")
    @classmethod
    def _features_syntax(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("the vocabulary needs at least one feature")
        for name in v:
            try:
                Feature(name)
            except ExprError as exc:
                raise ValueError(str(exc)) from None
        _no_duplicates(v, "features")
        return v

    @field_validator("constants")
    @classmethod
    def _finite_constants(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        bad = [c for c in v if not math.isfinite(c)]
        if bad:
            raise ValueError(f"constants must be finite, got {bad}")
        _no_duplicates(v, "constants")
        return tuple(float(c) for c in v)

    @field_validator("windows", mode="before")
    @classmethod
    def _parse_windows(cls, v: Any) -> tuple[int, ...]:
        out = []
        for w in v:
            text = str(w).strip()
            if text.endswith("d"):
                text = text[:-1]
            try:
                days = int(text)
            except ValueError:
                raise ValueError(f"window {w!r} is not a whole number of days") from None
            if isinstance(w, float) and w != days:
                raise ValueError(f"window {w!r} is not a whole number of days")
            if days < 1:
                raise ValueError(f"windows must be >= 1 day, got {w!r}")
            out.append(days)
        if not out:
            raise ValueError("the vocabulary needs at least one window")
        _no_duplicates(out, "windows")
        return tuple(out)


class Vocabulary:
    """Immutable token set with ids; equal (and hashable) by its parameters.

    >>> v = Vocabulary.default()
    >>> v.token(v.id("close")), v.kind(v.end_id)
    ('close', <TokenKind.END: 'end'>)
    """

    def __init__(self, config: VocabularyConfig | None = None,
                 known_features: Iterable[str] | None = None) -> None:
        cfg = config or VocabularyConfig()
        known = tuple(known_features) if known_features is not None else BASE_FEATURES
        unknown = [f for f in cfg.features if f not in known]
        if unknown:
            raise ValueError(f"unknown features {unknown}; valid: {', '.join(known)} "
                             "(pass known_features to allow others)")
        self.config = cfg
        self.features: tuple[str, ...] = cfg.features
        self.constants: tuple[float, ...] = cfg.constants
        self.windows: tuple[int, ...] = cfg.windows
        chosen = set(cfg.operators)
        #: operators in operator-table order (not config order), so ids do not depend on it
        self.operators: tuple[str, ...] = tuple(n for n in OPERATORS if n in chosen)
        self.leaves: tuple[Node, ...] = (
            *(Feature(f) for f in self.features), *(Constant(c) for c in self.constants),
            *(Window(w) for w in self.windows))
        self._texts: tuple[str, ...] = (*(str(n) for n in self.leaves), *self.operators, END)
        self._ids: dict[str, int] = {t: i for i, t in enumerate(self._texts)}
        n_f, n_c, n_w = len(self.features), len(self.constants), len(self.windows)
        self._kinds: tuple[TokenKind, ...] = (
            *([TokenKind.FEATURE] * n_f), *([TokenKind.CONSTANT] * n_c),
            *([TokenKind.WINDOW] * n_w), *([TokenKind.OPERATOR] * len(self.operators)),
            TokenKind.END)
        self.n_leaves = n_f + n_c + n_w
        self.first_operator_id = self.n_leaves
        self.end_id = len(self._texts) - 1
        self._key = (self.features, self.constants, self.windows, self.operators)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | VocabularyConfig | None = None,
                    known_features: Iterable[str] | None = None) -> Vocabulary:
        """Build from a parameters mapping (missing keys take the AlphaFormer defaults)."""
        if config is None or isinstance(config, VocabularyConfig):
            return cls(config, known_features)
        return cls(VocabularyConfig.model_validate(dict(config)), known_features)

    @classmethod
    def default(cls) -> Vocabulary:
        """AlphaFormer Tables 4-6."""
        return cls()

    def to_dict(self) -> dict[str, list]:
        """Plain JSON-able parameters; ``from_dict(to_dict())`` gives an equal vocabulary."""
        return {"operators": list(self.operators), "features": list(self.features),
                "constants": list(self.constants), "windows": list(self.windows)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], known_features: Iterable[str] | None = None
                  ) -> Vocabulary:
        return cls.from_config(d, known_features)

    # ------------------------------------------------------------------ tokens
    def __len__(self) -> int:
        return len(self._texts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return (f"Vocabulary({len(self.features)} features, {len(self.constants)} constants, "
                f"{len(self.windows)} windows, {len(self.operators)} operators)")

    @property
    def tokens(self) -> tuple[str, ...]:
        """All token texts in id order (END last)."""
        return self._texts

    def token(self, i: int) -> str:
        """RPN text of token ``i``."""
        return self._texts[i]

    def id(self, text: str | Node) -> int:
        """Id of an RPN token; ``-0.5``/``Constant(-0.5)``/``20``-style spellings normalise."""
        key = str(text)
        if key in self._ids:
            return self._ids[key]
        try:
            norm = str(from_rpn([key]))
        except ValueError:
            norm = key
        if norm in self._ids:
            return self._ids[norm]
        raise KeyError(f"token {text!r} is not in the vocabulary")

    def __contains__(self, text: object) -> bool:
        try:
            self.id(text)  # type: ignore[arg-type]
        except KeyError:
            return False
        return True

    def kind(self, i: int) -> TokenKind:
        return self._kinds[i]

    def leaf(self, i: int) -> Node:
        """The AST node of a leaf token (feature, constant or window)."""
        if not 0 <= i < self.n_leaves:
            raise ValueError(f"token {i} ({self.token(i)}) is not a leaf")
        return self.leaves[i]

    def operator(self, i: int) -> Operator:
        if self.kind(i) is not TokenKind.OPERATOR:
            raise ValueError(f"token {i} ({self.token(i)}) is not an operator")
        return OPERATORS[self._texts[i]]

    def ids_of_kind(self, kind: TokenKind | str) -> list[int]:
        kind = TokenKind(kind)
        return [i for i, k in enumerate(self._kinds) if k is kind]

    # ------------------------------------------------------------------ codecs
    def encode(self, expr: Node | str, add_end: bool = False) -> list[int]:
        """Token ids of ``expr``'s RPN (``add_end`` appends END); tokens must be in the vocab."""
        if isinstance(expr, str):
            from alphaminer.expr.parser import parse

            expr = parse(expr)
        ids = []
        for tok in to_rpn(expr):
            if tok not in self._ids or tok == END:
                raise KeyError(f"token {tok!r} of {expr} is not in the vocabulary")
            ids.append(self._ids[tok])
        if add_end:
            ids.append(self.end_id)
        return ids

    def decode(self, ids: Iterable[int]) -> Node:
        """Expression from token ids (stops at END; nothing may follow END)."""
        toks: list[str] = []
        ended = False
        for raw in ids:
            i = int(raw)
            if ended:
                raise ValueError("tokens after END")
            if not 0 <= i < len(self):
                raise ValueError(f"token id {i} out of range 0..{len(self) - 1}")
            if i == self.end_id:
                ended = True
                continue
            toks.append(self._texts[i])
        return from_rpn(toks)

    # ------------------------------------------------------------------ argument slots
    @cached_property
    def _acceptance(self) -> dict[str, tuple[frozenset[int], ...]]:
        return {name: self._probe(OPERATORS[name]) for name in self.operators}

    def accepted_leaves(self, op: str, position: int) -> frozenset[int]:
        """Leaf token ids that ``op`` accepts at argument ``position`` ("series" = features).

        Probed with :class:`Call` (other positions filled with accepted leaves), so it follows
        the table's argument types, minimum windows and constant domains without a list here.
        """
        return self._acceptance[op][position]

    def accepts_series(self, op: str, position: int) -> bool:
        """Whether a series (feature or operator result) may stand at ``position``."""
        acc = self._acceptance[op][position]
        return bool(acc) and min(acc) < len(self.features)

    def _probe(self, spec: Operator) -> tuple[frozenset[int], ...]:
        import itertools

        n_f = len(self.features)
        series_rep = 0  # token id of the first feature: every series behaves alike in Call
        candidates = [series_rep, *range(n_f, self.n_leaves)]
        window_ids = range(n_f + len(self.constants), self.n_leaves)
        # a filler per position: a series where series go, the largest window (the most
        # permissive) where windows go; argument types unknown here get the first candidates
        # that make a valid call
        fillers: list[int | None] = []
        unknown: list[int] = []
        for pos, kind in enumerate(spec.args):
            if kind in (ArgType.SERIES, ArgType.OPERAND):
                fillers.append(series_rep)
            elif kind is ArgType.WINDOW:
                fillers.append(max(window_ids, key=lambda i: self.leaves[i].days, default=None))
            else:
                fillers.append(None)
                unknown.append(pos)
        if unknown:
            for combo in itertools.product(candidates, repeat=len(unknown)):
                trial = list(fillers)
                for p, c in zip(unknown, combo):
                    trial[p] = c
                if self._call_ok(spec, trial):
                    fillers = trial
                    break
        out = []
        for pos in range(spec.arity):
            acc: set[int] = set()
            for cand in candidates:
                args = list(fillers)
                args[pos] = cand
                if self._call_ok(spec, args):
                    acc.add(cand)
            if series_rep in acc:  # every feature is a series
                acc |= set(range(n_f))
            out.append(frozenset(acc))
        return tuple(out)

    def _call_ok(self, spec: Operator, args: Sequence[int | None]) -> bool:
        if any(a is None for a in args):
            return False
        try:
            Call(spec.name, [self.leaves[a] for a in args])  # type: ignore[index]
        except ExprError:
            return False
        return True


__all__ = ["DEFAULT_CONSTANTS", "DEFAULT_FEATURES", "DEFAULT_OPERATORS", "DEFAULT_WINDOWS",
           "END", "TokenKind", "Vocabulary", "VocabularyConfig"]
