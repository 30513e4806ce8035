"""Alpha2's program environment: instructions, registers, the offline action table and its masks.

An alpha *program* is a sequence of instructions ``(operator, operand1, operand2, operand3)``
between the indicators ``Start`` and ``End`` (paper §4.1.1). Operands are features, scalars
(constants, and windows, which are the scalar operand of a time-series operator such as
``(Mean, close, 20, Null)``), registers, or ``Null`` for an unused slot. Register assignment is
implicit (paper §4.1.2, Table 2):

- an instruction that uses no register writes its result to the first free register;
- one that uses a single register (possibly twice, ``Mul(Reg0, Reg0)``) replaces it;
- one that uses two registers writes to Reg0 and empties Reg1. With more than two registers
  (``n_registers > 2``, an extension) it writes to the lower of the two and empties the other.

Reg0 holds the current alpha. Each register holds an AST node of :mod:`alphaminer.expr`, so a
program translates to our expression language by construction (``ProgramState.alpha``).

The table of every instruction is built once from a :class:`~alphaminer.expr.vocab.Vocabulary`
(the operator table's argument types and the vocabulary's accepted leaves per slot decide which
operands each slot takes). Per state it is masked by register occupancy, program length (the
program must still be able to merge its registers into Reg0 and end within ``max_len``),
degeneracy (the kit's :data:`~alphaminer.expr.grammar.DEGENERATE_PAIRS`: ``Sub(x, x)`` ...)
and, when pruning is on, by dimensions tracked per register with
:data:`~alphaminer.expr.dimensions.RULES` (the unit rules are the kit's; only their
application per register lives here).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alphaminer.expr.ast import Call, Constant, ExprError, Feature, Node, Window
from alphaminer.expr.dimensions import FEATURE_DIMS, NONE, RULES, Dim, DimensionError
from alphaminer.expr.grammar import DEGENERATE_PAIRS, degenerate_reason
from alphaminer.expr.operators import ArgType, get_operator
from alphaminer.expr.vocab import TokenKind, Vocabulary

__all__ = ["END", "NULL", "ActionTable", "Operand", "ProgramState"]

START, END_OP = "Start", "End"


@dataclass(frozen=True)
class Operand:
    """One operand slot: ``kind`` is ``null``, ``feature``, ``const``, ``window`` or ``reg``."""

    kind: str
    value: str | float | int | None = None

    def __str__(self) -> str:
        if self.kind == "null":
            return "Null"
        if self.kind == "reg":
            return f"Reg{self.value}"
        if self.kind == "window":
            return f"{self.value}d"
        return str(self.value)


NULL = Operand("null")
#: the End indicator's action (always the last action id of a table)
END = (END_OP, NULL, NULL, NULL)


def _dim_of(spec_name: str, arg_dims: Sequence[Dim]) -> Dim | None:
    """The result dimension by the kit's rule for the operator, ``None`` when illegal."""
    try:
        return RULES[get_operator(spec_name).dim_rule](*arg_dims)
    except DimensionError:
        return None


class ActionTable:
    """Every instruction of a vocabulary, built once; action ``len(table) - 1`` is ``End``.

    Args:
        vocab: operators, features, constants and windows (the kit's vocabulary).
        n_registers: registers available (the paper's Table 2 uses two).
        max_len: most instructions in a program (``Start``/``End`` not counted).
        dims: dimension pruning on (switch off for the ablation).
        feature_dims: dimensions of non-standard features (extends ``FEATURE_DIMS``).
    """

    def __init__(self, vocab: Vocabulary, n_registers: int = 2, max_len: int = 10,
                 dims: bool = True, feature_dims: dict[str, Dim] | None = None) -> None:
        if n_registers < 1 or max_len < 1:
            raise ValueError("n_registers and max_len must be >= 1")
        self.vocab = vocab
        self.n_registers = int(n_registers)
        self.max_len = int(max_len)
        self.dims = bool(dims)
        self.feature_dims = {**FEATURE_DIMS, **(feature_dims or {})}
        missing = [f for f in vocab.features if f not in self.feature_dims]
        if dims and missing:
            raise ValueError(f"no dimension for features {missing}; pass feature_dims")
        self.operators: tuple[str, ...] = tuple(vocab.operators)
        # operand vocabulary (for the state encoding): Null, features, registers, consts, windows
        self.operands: tuple[Operand, ...] = (
            NULL, *(Operand("feature", f) for f in vocab.features),
            *(Operand("reg", r) for r in range(self.n_registers)),
            *(Operand("const", c) for c in vocab.constants),
            *(Operand("window", w) for w in vocab.windows))
        self._operand_id = {o: i for i, o in enumerate(self.operands)}
        self.instructions: list[tuple[str, Operand, Operand, Operand]] = []
        self._build()
        A = len(self.instructions)
        R = self.n_registers
        #: [A, R] register r is an operand; [A] distinct registers used; [A] static legality
        self.uses = np.zeros((A, R), dtype=bool)
        for a, ins in enumerate(self.instructions):
            for o in ins[1:]:
                if o.kind == "reg":
                    self.uses[a, int(o.value)] = True
        self.n_used = self.uses.sum(axis=1)
        self.is_end = np.zeros(A, dtype=bool)
        self.is_end[-1] = True
        # dimension and node of register-free instructions are state independent
        self._static_node: dict[int, Node] = {}
        self.static_dim_ok = np.ones(A, dtype=bool)
        self._static_dim: dict[int, Dim] = {}
        for a, ins in enumerate(self.instructions[:-1]):
            if self.n_used[a] == 0:
                node = self._call(ins, (None,) * R)
                self._static_node[a] = node
                d = self._apply_dims(ins, (None,) * R) if self.dims else NONE
                self.static_dim_ok[a] = d is not None
                if d is not None:
                    self._static_dim[a] = d
        # degeneracy through two registers with equal contents: (action, reg i, reg j)
        deg = [(a, int(ins[1 + i].value), int(ins[1 + j].value))
               for a, ins in enumerate(self.instructions[:-1])
               for i, j in DEGENERATE_PAIRS.get(ins[0], ())
               if ins[1 + i].kind == "reg" and ins[1 + j].kind == "reg"]
        self._deg = np.array(deg, dtype=np.int64).reshape(-1, 3)
        self._dim_memo: dict[tuple, np.ndarray] = {}
        self.encoding_size = self.max_len * (len(self.operators) + 3 * len(self.operands)) \
            + self.n_registers * 4 + 1

    # ------------------------------------------------------------------ the table
    def _slot_choices(self, op: str, pos: int, kind: ArgType) -> list[Operand]:
        vocab = self.vocab
        leaves = sorted(vocab.accepted_leaves(op, pos))
        out: list[Operand] = []
        for i in leaves:
            k = vocab.kind(i)
            leaf = vocab.leaf(i)
            if k is TokenKind.FEATURE:
                out.append(Operand("feature", leaf.name))
            elif k is TokenKind.CONSTANT:
                out.append(Operand("const", leaf.value))
            elif k is TokenKind.WINDOW:
                out.append(Operand("window", leaf.days))
        if kind in (ArgType.SERIES, ArgType.OPERAND) and vocab.accepts_series(op, pos):
            out.extend(Operand("reg", r) for r in range(self.n_registers))
        return out

    def _build(self) -> None:
        R = self.n_registers
        for op in self.operators:
            spec = get_operator(op)
            if spec.arity > 3:
                continue  # an instruction has three operand slots
            choices = [self._slot_choices(op, p, k) for p, k in enumerate(spec.args)]
            for combo in itertools.product(*choices):
                regs = [int(o.value) for o in combo if o.kind == "reg"]
                if len(set(regs)) > 2:
                    continue
                ins = (op, *combo, *([NULL] * (3 - len(combo))))
                try:  # the operator table's own argument rules (a series operand, windows)
                    node = self._call(ins, tuple(Feature(f"r{r}") for r in range(R)))
                except ExprError:
                    continue
                if not regs and degenerate_reason(node):
                    continue  # Sub(close, close): constant whatever the data
                if any(ins[1 + i] == ins[1 + j] and ins[1 + i].kind == "reg"
                       for i, j in DEGENERATE_PAIRS.get(op, ())):
                    continue  # Sub(Reg0, Reg0)
                self.instructions.append(ins)
        self.instructions.append(END)

    def __len__(self) -> int:
        return len(self.instructions)

    @property
    def end_id(self) -> int:
        return len(self.instructions) - 1

    def text(self, a: int) -> str:
        """``(Sub,close,open,Null)``."""
        op, *ops = self.instructions[a]
        return f"({op},{','.join(str(o) for o in ops)})"

    def id(self, instruction: Sequence) -> int:
        """The action id of ``(op, operand1, operand2, operand3)``; operands as :class:`Operand`
        or text (``close``, ``Reg0``, ``20``/``20d``, ``0.5``, ``Null``)."""
        op, *rest = instruction
        rest = list(rest) + [NULL] * (3 - len(rest))
        key = (str(op), *(self._parse_operand(op, i, o) for i, o in enumerate(rest)))
        try:
            return self.instructions.index(key)
        except ValueError:
            raise KeyError(f"instruction {key} is not in the table") from None

    def _parse_operand(self, op: str, pos: int, o: Operand | str | float | int | None) -> Operand:
        if isinstance(o, Operand):
            return o
        if o is None or str(o) == "Null":
            return NULL
        s = str(o)
        if s.startswith("Reg"):
            return Operand("reg", int(s[3:]))
        if s in self.vocab.features:
            return Operand("feature", s)
        spec = get_operator(op) if op != END_OP else None
        if spec is not None and pos < spec.arity and spec.args[pos] is ArgType.WINDOW:
            return Operand("window", int(s.removesuffix("d")))
        return Operand("const", float(s))

    def _call(self, ins: tuple, regs: tuple[Node | None, ...]) -> Node:
        op, *ops = ins
        spec = get_operator(op)
        args: list[Node] = []
        for o in ops[:spec.arity]:
            if o.kind == "feature":
                args.append(Feature(o.value))
            elif o.kind == "const":
                args.append(Constant(o.value))
            elif o.kind == "window":
                args.append(Window(o.value))
            else:
                node = regs[int(o.value)]
                if node is None:
                    raise ExprError(f"register Reg{o.value} is empty")
                args.append(node)
        return Call(op, args)

    def _apply_dims(self, ins: tuple, reg_dims: tuple[Dim | None, ...]) -> Dim | None:
        op, *ops = ins
        spec = get_operator(op)
        arg_dims: list[Dim] = []
        for o, kind in zip(ops, spec.args):
            if kind is ArgType.WINDOW:
                continue
            if o.kind == "feature":
                arg_dims.append(self.feature_dims[o.value])
            elif o.kind == "reg":
                d = reg_dims[int(o.value)]
                if d is None:
                    return None
                arg_dims.append(d)
            else:
                arg_dims.append(NONE)
        return _dim_of(op, arg_dims)

    # ------------------------------------------------------------------ masks
    def dim_mask(self, reg_dims: tuple[Dim | None, ...]) -> np.ndarray:
        """``[A]`` instructions whose units are legal given the registers' dimensions (memoised
        per register-dimension signature: a handful of distinct ones occur in a search)."""
        key = reg_dims
        m = self._dim_memo.get(key)
        if m is None:
            m = self.static_dim_ok.copy()
            for a in np.flatnonzero(self.n_used > 0):
                m[a] = self._apply_dims(self.instructions[a], reg_dims) is not None
            self._dim_memo[key] = m
        return m

    def masks(self, state: ProgramState) -> tuple[np.ndarray, np.ndarray]:
        """``(legal, structural)``: the legal actions of ``state``, and those legal without the
        dimension rules (their difference is what dimension pruning removed)."""
        A = len(self.instructions)
        if state.done:
            z = np.zeros(A, dtype=bool)
            return z, z
        occ = np.array([r is not None for r in state.regs])
        n_occ = int(occ.sum())
        missing = (self.uses & ~occ).any(axis=1)
        no_reg = self.n_used == 0
        ok = ~missing & ~self.is_end
        ok &= ~no_reg | (n_occ < self.n_registers)
        after = n_occ + no_reg.astype(np.int64) - np.maximum(self.n_used - 1, 0)
        ok &= (state.length + 1 + np.maximum(after - 1, 0)) <= self.max_len
        if len(self._deg):
            same = np.array([[state.regs[i] is not None and state.regs[i] == state.regs[j]
                              for j in range(self.n_registers)]
                             for i in range(self.n_registers)])
            bad = same[self._deg[:, 1], self._deg[:, 2]]
            ok[self._deg[bad, 0]] = False
        structural = ok.copy()
        if state.length >= 1 and occ[0] and n_occ == 1:
            structural[-1] = True
        if self.dims:
            ok &= self.dim_mask(state.dims)
        if structural[-1]:
            ok[-1] = True
        elif not ok.any() and occ[0]:
            # registers that can no longer be merged into Reg0 (units, budget): the program
            # ends with Reg0 as its alpha rather than leaving the search at a dead end
            ok[-1] = structural[-1] = True
        return ok, structural

    # ------------------------------------------------------------------ stepping
    def initial(self) -> ProgramState:
        return ProgramState((None,) * self.n_registers, (None,) * self.n_registers, (), False)

    def step(self, state: ProgramState, a: int) -> ProgramState:
        """Apply action ``a`` with the implicit register assignment (module docstring)."""
        if state.done:
            raise ValueError("the program has ended")
        if a == self.end_id:
            return ProgramState(state.regs, state.dims, state.actions + (a,), True)
        ins = self.instructions[a]
        used = sorted({int(o.value) for o in ins[1:] if o.kind == "reg"})
        if a in self._static_node:
            node = self._static_node[a]
            dim = self._static_dim.get(a) if self.dims else None
        else:
            node = self._call(ins, state.regs)
            dim = self._apply_dims(ins, state.dims) if self.dims else None
        regs, dims = list(state.regs), list(state.dims)
        if not used:
            free = [r for r, v in enumerate(regs) if v is None]
            if not free:
                raise ValueError(f"{self.text(a)} needs a free register; all are occupied")
            dest = free[0]
        else:
            dest = used[0]
            for r in used[1:]:
                regs[r], dims[r] = None, None
        regs[dest], dims[dest] = node, dim
        return ProgramState(tuple(regs), tuple(dims), state.actions + (a,), False)

    def run(self, actions: Sequence[int | Sequence]) -> ProgramState:
        """The state after ``actions`` (ids or instruction tuples) from the empty program."""
        s = self.initial()
        for a in actions:
            s = self.step(s, a if isinstance(a, int | np.integer) else self.id(a))
        return s

    def program_text(self, state: ProgramState) -> str:
        """``Start; (Sub,close,open,Null); ...; End``."""
        body = [self.text(a) for a in state.actions if a != self.end_id]
        return "; ".join([START, *body, END_OP] if state.done else [START, *body])

    # ------------------------------------------------------------------ encoding
    def encode(self, state: ProgramState) -> np.ndarray:
        """Fixed-size float32 state vector: per program line a one-hot operator and three
        one-hot operands, then per register occupancy and dimension exponents, then the
        fraction of the length budget used."""
        n_op, n_o = len(self.operators), len(self.operands)
        line = n_op + 3 * n_o
        v = np.zeros(self.encoding_size, dtype=np.float32)
        op_index = {o: i for i, o in enumerate(self.operators)}
        for t, a in enumerate(a for a in state.actions if a != self.end_id):
            op, *ops = self.instructions[a]
            base = t * line
            v[base + op_index[op]] = 1.0
            for k, o in enumerate(ops):
                v[base + n_op + k * n_o + self._operand_id[o]] = 1.0
        base = self.max_len * line
        for r, (node, d) in enumerate(zip(state.regs, state.dims)):
            if node is None:
                continue
            v[base + 4 * r] = 1.0
            if d is not None:
                v[base + 4 * r + 1: base + 4 * r + 4] = (d.currency, d.shares, float(d.log))
        v[-1] = state.length / self.max_len
        return v


@dataclass(frozen=True)
class ProgramState:
    """Registers (AST nodes or ``None``), their dimensions (``None`` when not tracked), the
    actions taken and whether ``End`` was played."""

    regs: tuple[Node | None, ...]
    dims: tuple[Dim | None, ...]
    actions: tuple[int, ...]
    done: bool

    @property
    def length(self) -> int:
        """Instructions so far (``End`` not counted)."""
        return len(self.actions) - int(self.done)

    @property
    def alpha(self) -> Node | None:
        """Reg0: the current alpha."""
        return self.regs[0]
