"""Alpha2's program environment: Table 2, the register rules, masks by occupancy, length,
dimensions and degeneracy, and the state encoding."""

from __future__ import annotations

import numpy as np
import pytest

from alphaminer.expr import Evaluator, parse
from alphaminer.expr.dimensions import is_dimension_valid
from alphaminer.expr.vocab import Vocabulary
from alphaminer.mining.alpha2.miner import ALPHA2_VOCABULARY
from alphaminer.mining.alpha2.program import ActionTable

TABLE2 = [("Sub", "close", "open"), ("Sub", "high", "low"), ("Div", "Reg0", "Reg1"), ("End",)]


@pytest.fixture(scope="module")
def table() -> ActionTable:
    return ActionTable(Vocabulary.from_config(ALPHA2_VOCABULARY), n_registers=2, max_len=10)


def test_table2_program_is_close_location(table, market) -> None:
    panel, _, _ = market
    s = table.run(TABLE2)
    assert s.done and s.regs[1] is None
    assert s.alpha == parse("Div(Sub(close,open),Sub(high,low))")
    assert table.program_text(s) == ("Start; (Sub,close,open,Null); (Sub,high,low,Null); "
                                     "(Div,Reg0,Reg1,Null); End")
    got = Evaluator(panel).evaluate(s.alpha).numpy()
    f = {name: panel.values[:, :, i].numpy().astype(np.float64)
         for i, name in enumerate(panel.features)}
    with np.errstate(divide="ignore", invalid="ignore"):
        want = (f["close"] - f["open"]) / (f["high"] - f["low"])
    both = np.isfinite(got) & np.isfinite(want)
    assert both.sum() > 0.5 * got.size
    np.testing.assert_allclose(got[both], want[both], rtol=1e-4, atol=1e-5)
    assert not (np.isfinite(got) & ~np.isfinite(want)).any()


def test_no_register_writes_first_free_register(table) -> None:
    s = table.run([("Sub", "close", "open")])
    assert s.regs[0] == parse("Sub(close,open)") and s.regs[1] is None
    s = table.step(s, table.id(("Mean", "volume", "20")))
    assert s.regs == (parse("Sub(close,open)"), parse("Mean(volume,20d)"))
    ok, _ = table.masks(s)
    full = table.id(("Abs", "close"))
    assert not ok[full]  # no free register left
    with pytest.raises(ValueError, match="free register"):
        table.step(s, full)


def test_single_register_replaces_it(table) -> None:
    s = table.run([("Sub", "close", "open"), ("Sub", "high", "low"), ("Abs", "Reg1")])
    assert s.regs == (parse("Sub(close,open)"), parse("Abs(Sub(high,low))"))
    s = table.step(s, table.id(("Mean", "Reg0", "5")))
    assert s.regs == (parse("Mean(Sub(close,open),5d)"), parse("Abs(Sub(high,low))"))
    s2 = table.run([("Sub", "close", "open"), ("Mul", "Reg0", "Reg0")])  # one register, twice
    assert s2.regs == (parse("Mul(Sub(close,open),Sub(close,open))"), None)


def test_two_registers_write_reg0_and_empty_reg1(table) -> None:
    base = [("Sub", "close", "open"), ("Sub", "high", "low")]
    s = table.run([*base, ("Div", "Reg1", "Reg0")])
    assert s.regs == (parse("Div(Sub(high,low),Sub(close,open))"), None)
    ok, _ = table.masks(s)
    assert ok[table.end_id]  # Reg0 alone: the program may end
    # after the merge Reg1 is free again: a register-free instruction fills it
    s = table.step(s, table.id(("Abs", "close")))
    assert s.regs[1] == parse("Abs(close)")


def test_occupancy_and_end_masks(table) -> None:
    s0 = table.initial()
    ok, _ = table.masks(s0)
    uses_reg = table.uses.any(axis=1)
    assert not ok[uses_reg].any()        # every register is empty
    assert not ok[table.end_id]          # nothing to end with
    s = table.run([("Sub", "close", "open"), ("Sub", "high", "low")])
    ok, _ = table.masks(s)
    assert not ok[table.end_id]          # Reg1 still holds a value
    s = table.run([("Sub", "close", "open")])
    ok, _ = table.masks(s)
    assert ok[table.end_id] and not ok[table.uses[:, 1]].any()


def test_length_mask_leaves_room_to_merge() -> None:
    t = ActionTable(Vocabulary.from_config(ALPHA2_VOCABULARY), n_registers=2, max_len=3)
    s = t.run([("Sub", "close", "open"), ("Sub", "high", "low")])
    ok, _ = t.masks(s)
    # one instruction left and two registers occupied: only merges of Reg0 and Reg1 remain
    legal = np.flatnonzero(ok)
    assert len(legal) > 0 and all(t.uses[a].all() for a in legal)
    s = t.run([("Sub", "close", "open")])
    ok, _ = t.masks(s)
    # two left: a register-free instruction would need one more merge, still fits
    assert ok[t.id(("Abs", "close"))]
    s = t.run([("Sub", "close", "open"), ("Abs", "Reg0")])
    ok, _ = t.masks(s)
    assert not ok[t.id(("Abs", "close"))]  # 3 + 1 merge > max_len
    assert ok[t.id(("Abs", "Reg0"))]


def test_dimension_masks(table) -> None:
    s = table.run([("Sub", "close", "open")])
    ok, structural = table.masks(s)
    add_vol, add_high = table.id(("Add", "Reg0", "volume")), table.id(("Add", "Reg0", "high"))
    assert not ok[add_vol] and structural[add_vol]
    assert ok[add_high]
    off = ActionTable(table.vocab, 2, 10, dims=False)
    ok_off, _ = off.masks(off.run([("Sub", "close", "open")]))
    assert ok_off[off.id(("Add", "Reg0", "volume"))]


def test_dimension_mask_agrees_with_dimension_of(table) -> None:
    """Per register state, the memoised mask equals the kit's dimension_of on the built AST."""
    for prog in ([("Sub", "close", "open")], [("Log", "close"), ("Mean", "volume", "5")],
                 [("Corr", "close", "volume", "10"), ("Mul", "close", "volume")]):
        s = table.run(prog)
        ok, structural = table.masks(s)
        for a in np.flatnonzero(structural[:-1]):
            node = table._call(table.instructions[a], s.regs)
            assert ok[a] == is_dimension_valid(node), (prog, table.text(a))


def test_degenerate_programs_are_masked(table) -> None:
    texts = {table.text(a) for a in range(len(table))}
    assert "(Sub,close,close,Null)" not in texts and "(Sub,Reg0,Reg0,Null)" not in texts
    assert "(Corr,close,close,10d)" not in texts
    s = table.run([("Mean", "close", "5"), ("Mean", "close", "5")])
    ok, _ = table.masks(s)
    assert not ok[table.id(("Sub", "Reg0", "Reg1"))]
    assert not ok[table.id(("Div", "Reg1", "Reg0"))]
    assert ok[table.id(("Add", "Reg0", "Reg1"))]
    s = table.run([("Mean", "close", "5"), ("Mean", "close", "10")])
    ok, _ = table.masks(s)
    assert ok[table.id(("Sub", "Reg0", "Reg1"))]


def test_encoding_is_fixed_size_and_distinguishes_states(table) -> None:
    a = table.encode(table.run(TABLE2[:2]))
    b = table.encode(table.run(TABLE2[:3]))
    c = table.encode(table.initial())
    assert a.shape == b.shape == c.shape == (table.encoding_size,)
    assert not np.array_equal(a, b) and c[:-1].sum() == 0
    # line 0 holds Sub with operands close, open, Null
    n_op = len(table.operators)
    assert a[table.operators.index("Sub")] == 1
    assert a[n_op + table.operands.index(table._parse_operand("Sub", 0, "close"))] == 1
