"""Grammar masks: exact against brute-force enumeration, random walks, builder API."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from alphaminer.expr import (
    OPERATORS,
    Call,
    ExprError,
    Feature,
    dimension_of,
    from_rpn,
    parse,
    to_rpn,
)
from alphaminer.expr.dimensions import DimensionError
from alphaminer.expr.grammar import (
    Grammar,
    GrammarError,
    RPNBuilder,
    check_formula,
    valid_masks,
)
from alphaminer.expr.parser import RPNError
from alphaminer.expr.vocab import Vocabulary

# unary, log (dimension rule), binary (non-degenerate and degenerate), TS with a minimum window
# above one vocabulary window, pair-TS: small enough to enumerate every sequence.
SMALL = Vocabulary.from_config({
    "operators": ["Abs", "Log", "Add", "Sub", "Div", "Std", "Corr"],
    "features": ["close", "volume"], "constants": [-1.0, 0.5], "windows": [1, 5]})
#: independent statement of the degenerate calls among SMALL's operators
SMALL_DEGENERATE = {"Sub", "Div", "Corr"}
BRUTE_LEN = 6


#: a second vocabulary with the table's newer shapes, when present: a CONSTANT argument with
#: a domain (Quantile's q in [0, 1]; 2.0 is outside) after the window, a ternary If and a
#: comparison
QLIB_OPS = ["Quantile", "If", "Gt", "Sub", "Mean"]
QLIB_DEGENERATE = {"Sub": (0, 1), "Gt": (0, 1), "If": (1, 2)}


def _is_degenerate(e, pairs: dict | None = None) -> bool:  # noqa: ANN001
    pairs = pairs if pairs is not None else {op: (0, 1) for op in SMALL_DEGENERATE}
    if not isinstance(e, Call):
        return False
    if e.op in pairs:
        i, j = pairs[e.op]
        if str(e.args[i]) == str(e.args[j]):
            return True
    return any(_is_degenerate(a, pairs) for a in e.args)


def _parse_all(vocab: Vocabulary, max_len: int) -> dict[tuple[str, ...], object]:
    """Every token sequence up to max_len that from_rpn accepts, with its tree."""
    words = [t for t in vocab.tokens if t != "END"]
    out = {}
    for n in range(1, max_len + 1):
        for seq in itertools.product(words, repeat=n):
            try:
                out[seq] = from_rpn(list(seq))
            except RPNError:
                continue
    return out


def _stack_enumerate(vocab: Vocabulary, max_len: int) -> dict[tuple[str, ...], object]:
    """The same set, faster: a plain RPN stack machine over Call, cut where a prefix fails
    (a sequence whose prefix from_rpn rejects is rejected too)."""
    words = [t for t in vocab.tokens if t != "END"]
    leaves = {w: from_rpn([w]) for w in words if w not in OPERATORS}
    out = {}

    def grow(seq: tuple[str, ...], stack: tuple) -> None:
        if len(stack) == 1:
            out[seq] = stack[0]
        if len(seq) == max_len:
            return
        for w in words:
            if w in leaves:
                grow(seq + (w,), stack + (leaves[w],))
                continue
            n = OPERATORS[w].arity
            if len(stack) < n:
                continue
            try:
                node = Call(w, stack[len(stack) - n:])
            except ExprError:
                continue
            grow(seq + (w,), stack[:len(stack) - n] + (node,))

    grow((), ())
    return out


@pytest.fixture(scope="module")
def parsed() -> dict[tuple[str, ...], object]:
    return _stack_enumerate(SMALL, BRUTE_LEN)


def test_stack_enumeration_matches_from_rpn() -> None:
    assert _stack_enumerate(SMALL, 4) == _parse_all(SMALL, 4)


def _reference_valid(parsed: dict, max_len: int, dims: bool, degenerate: bool,
                     pairs: dict | None = None) -> set:
    ok = set()
    for seq, e in parsed.items():
        if len(seq) > max_len or not isinstance(e, Feature | Call):
            continue
        if dims:
            try:
                dimension_of(e)
            except DimensionError:
                continue
        if degenerate and _is_degenerate(e, pairs):
            continue
        ok.add(seq)
    return ok


@pytest.mark.parametrize("max_len", [2, 3, 4, BRUTE_LEN])
@pytest.mark.parametrize("dims", [False, True])
@pytest.mark.parametrize("degenerate", [False, True])
def test_masks_equal_brute_force(parsed: dict, max_len: int, dims: bool,
                                 degenerate: bool) -> None:
    valid = _reference_valid(parsed, max_len, dims, degenerate)
    _check_masks(SMALL, valid, max_len, dims, degenerate)


@pytest.mark.parametrize("dims", [False, True])
@pytest.mark.parametrize("degenerate", [False, True])
def test_masks_equal_brute_force_qlib_shapes(dims: bool, degenerate: bool) -> None:
    missing = [op for op in QLIB_OPS if op not in OPERATORS]
    if missing:
        pytest.skip(f"operator table has no {missing}")
    vocab = Vocabulary.from_config({"operators": QLIB_OPS, "features": ["close", "volume"],
                                    "constants": [0.5, 2.0], "windows": [1, 5]})
    parsed = _stack_enumerate(vocab, 5)
    assert any(isinstance(e, Call) and e.op == "Quantile" for e in parsed.values())
    assert ("close", "5d", "2.0", "Quantile") not in parsed  # q outside [0, 1]
    valid = _reference_valid(parsed, 5, dims, degenerate, QLIB_DEGENERATE)
    _check_masks(vocab, valid, 5, dims, degenerate)


def _check_masks(vocab: Vocabulary, valid: set, max_len: int, dims: bool,
                 degenerate: bool) -> None:
    """Walk every builder state: its mask must equal the brute-force completable set."""
    prefixes = {seq[:i] for seq in valid for i in range(len(seq) + 1)}
    grammar = Grammar(vocab, dims=dims or None, reject_degenerate=degenerate)
    emitted: set[tuple[str, ...]] = set()
    words = vocab.tokens

    def walk(b: RPNBuilder, seq: tuple[str, ...]) -> None:
        assert seq in prefixes, seq  # the builder only ever reaches completable prefixes
        mask = b.valid_mask()
        expect = [(seq + (w,)) in prefixes if w != "END" else seq in valid for w in words]
        assert mask.tolist() == expect, (seq, [w for w, m, x in zip(words, mask, expect)
                                               if m != x])
        if mask[vocab.end_id]:
            done = b.copy()
            node = done.finish()
            assert to_rpn(node) == list(seq) and done.valid_mask().sum() == 0
            emitted.add(seq)
        for t in np.flatnonzero(mask):
            if t != vocab.end_id:
                child = b.copy()
                child.push(int(t))
                walk(child, seq + (words[t],))
        for t in np.flatnonzero(~mask)[:3]:
            with pytest.raises(GrammarError):
                b.copy().push(int(t))

    walk(RPNBuilder(vocab, max_len=max_len, grammar=grammar), ())
    assert emitted == valid
    assert len(valid) > (3 if max_len == 2 else 20)  # the enumeration is not trivially empty


def test_brute_force_bites(parsed: dict) -> None:
    # the options really remove formulas, so the equalities above are not vacuous
    loose = _reference_valid(parsed, BRUTE_LEN, False, False)
    dims = _reference_valid(parsed, BRUTE_LEN, True, False)
    degen = _reference_valid(parsed, BRUTE_LEN, False, True)
    assert ("close", "volume", "Add") in loose - dims
    assert ("close", "close", "Sub") in loose - degen
    assert ("close", "1d", "Std") not in loose  # below Std's minimum window
    assert len(_reference_valid(parsed, 3, True, True)) < len(_reference_valid(
        parsed, BRUTE_LEN, True, True))


def _valid_texts(seq: list[str], max_len: int, dims: bool, vocab: Vocabulary) -> bool:
    if len(seq) > max_len:
        return False
    try:
        e = from_rpn(seq)
    except RPNError:
        return False
    if not isinstance(e, Feature | Call):
        return False
    if dims:
        try:
            dimension_of(e)
        except DimensionError:
            return False
    degenerate_ops = {"Sub", "Div", "Greater", "Less", "Cov", "Corr"}

    def degen(x) -> bool:  # noqa: ANN001
        return isinstance(x, Call) and (
            (x.op in degenerate_ops and x.args[0] == x.args[1]) or any(map(degen, x.args)))

    return not degen(e)


@pytest.mark.parametrize("dims", [False, True])
def test_random_walks_default_vocab(dims: bool) -> None:
    vocab = Vocabulary.default()
    grammar = Grammar(vocab, dims=dims or None)
    rng = np.random.default_rng(7)
    words = [t for t in vocab.tokens if t != "END"]
    checked_tail = 0
    for w in range(1000):
        b = RPNBuilder(vocab, max_len=20, grammar=grammar)
        while not b.done:
            mask = b.valid_mask()
            assert mask.any(), b.texts
            if b.remaining == 1 and checked_tail < 25 and w % 7 == 0:
                # exact near the limit: compare with every completion of at most 0 tokens
                checked_tail += 1
                for t, word in enumerate(words):
                    assert mask[t] == _valid_texts(b.texts + [word], 20, dims, vocab), word
                assert mask[vocab.end_id] == _valid_texts(b.texts, 20, dims, vocab)
            if b.remaining == 2 and w % 150 == 0:
                for t, word in enumerate(words):
                    ok = any(_valid_texts(b.texts + [word] + tail, 20, dims, vocab)
                             for tail in [[], *([x] for x in words)])
                    assert mask[t] == ok, (b.texts, word)
            b.push(int(rng.choice(np.flatnonzero(mask))))
        e = b.finish()
        assert len(b.tokens) <= 20
        assert from_rpn(b.texts) == e
        assert _valid_texts(b.texts, 20, dims, vocab), str(e)
        if dims:
            dimension_of(e)
    assert checked_tail > 0


def test_mask_speed_is_reported() -> None:
    # not a benchmark: guards against an accidental exponential search (generous bound)
    vocab = Vocabulary.default()
    rng = np.random.default_rng(3)
    for dims in (None, True):
        grammar = Grammar(vocab, dims=dims)
        times = []
        for _ in range(200):
            b = RPNBuilder(vocab, 20, grammar=grammar)
            while not b.done:
                t0 = time.perf_counter()
                m = b.valid_mask()
                times.append(time.perf_counter() - t0)
                b.push(int(rng.choice(np.flatnonzero(m))))
        assert np.mean(times) < 0.02


def test_max_len_bites_on_default_vocab() -> None:
    v = Vocabulary.default()
    b = RPNBuilder(v, max_len=3)
    b.extend(["close", "volume"])
    allowed = {v.token(t) for t in b.valid_tokens()}
    # one token left: only binary operators; Corr/Cov need a window (two tokens)
    assert allowed == {"Add", "Sub", "Mul", "Div", "Greater", "Less"}
    b2 = RPNBuilder(v, max_len=3, dims=True)
    b2.extend(["close", "volume"])
    assert {v.token(t) for t in b2.valid_tokens()} == {"Mul", "Div"}
    b3 = RPNBuilder(v, max_len=4)
    b3.extend(["close", "close"])
    allowed3 = {v.token(t) for t in b3.valid_tokens()}
    # Sub/Div/Greater/Less(close,close) are degenerate; close close 10d Mean leaves two items
    # and Corr/Cov(close,close,10d) are degenerate, so no window fits in 4 tokens
    # (Sub(close,Abs(close)) still fits)
    assert allowed3 == {"Add", "Mul", "Abs", "Log"}
    b3 = RPNBuilder(v, max_len=5)
    b3.extend(["close", "close"])
    assert {"10d", "Abs", "Log", "Add", "Mul"} <= {v.token(t) for t in b3.valid_tokens()}
    b3.push("10d")
    assert {v.token(t) for t in b3.valid_tokens()} == {
        "Ref", "Mean", "Med", "Sum", "Std", "Var", "Max", "Min", "Mad", "Delta", "WMA", "EMA"}


def test_degenerate_only_completion_is_masked() -> None:
    # one feature, only Sub: [close] can never become valid beyond itself
    v = Vocabulary.from_config({"operators": ["Sub", "Abs"], "features": ["close"],
                                "constants": [1.0], "windows": [5]})
    b = RPNBuilder(v, max_len=3)
    b.push("close")
    allowed = {v.token(t) for t in b.valid_tokens()}
    # close close Sub is degenerate; close 1.0 Sub and close Abs are fine; a second close
    # could only be completed by Sub(close,close) within 3 tokens
    assert allowed == {"END", "1.0", "Abs"}
    b4 = RPNBuilder(v, max_len=4)
    b4.push("close")
    assert "close" in {v.token(t) for t in b4.valid_tokens()}  # close close Abs Sub


def test_builder_api() -> None:
    v = Vocabulary.default()
    b = RPNBuilder(v, max_len=20, dims=True)
    with pytest.raises(GrammarError, match="needs 2 operands"):
        b.push("Add")
    b.extend(["close", "open"])
    c = b.copy()
    c.push("Sub")
    assert len(b.stack) == 2 and len(c.stack) == 1
    with pytest.raises(GrammarError, match="END needs exactly one series"):
        b.push("END")
    with pytest.raises(GrammarError, match="cannot apply"):
        RPNBuilder(v, 20, dims=True).extend(["close", "volume", "Add"])
    with pytest.raises(GrammarError, match="degenerate"):
        RPNBuilder(v, 20).extend(["close", "close", "Sub"])
    assert str(c.finish()) == "Sub(close,open)" and c.done
    with pytest.raises(GrammarError, match="finished"):
        c.push("close")
    batch = valid_masks([b, c, RPNBuilder(v, 20)])
    assert batch.shape == (3, len(v)) and batch.dtype == bool
    assert (batch[0] == b.valid_mask()).all() and not batch[1].any()
    assert batch[2].tolist() == [v.kind(i).value in ("feature", "constant") for i in range(len(v))]
    with pytest.raises(GrammarError, match="could not be built|not valid|max_len"):
        full = RPNBuilder(v, max_len=1)
        full.extend(["close", "Abs"])


def test_first_tokens_and_constants() -> None:
    v = Vocabulary.default()
    m = RPNBuilder(v, max_len=20).valid_mask()
    # features and constants can start a formula (Add(-0.5, close)); windows cannot
    assert m.tolist() == [v.kind(i).value in ("feature", "constant") for i in range(len(v))]
    assert not RPNBuilder(v, max_len=1).valid_mask()[v.id("-0.5")]


def test_check_formula_reasons() -> None:
    v = Vocabulary.default()
    assert check_formula(parse("Div(Sub(close,open),Sub(high,low))"), v, dims=True) is None
    assert "degenerate" in check_formula(parse("Mean(Sub(close,close),10d)"), v)
    assert check_formula(parse("Mean(Sub(close,close),10d)"), v, reject_degenerate=False) \
        is None
    assert "dimension" in check_formula(parse("Add(close,volume)"), v, dims=True)
    assert "not in the vocabulary" in check_formula(parse("Mean(close,7d)"), v)
    assert "not in the vocabulary" in check_formula(parse("CSRank(close)"), v)
    assert "exceed" in check_formula(parse("Abs(Abs(close))"), v, max_len=2)
    assert "not a series" in check_formula(parse("1.0"), v)
    assert check_formula(parse("Corr(close,close,10d)"), v) is not None


def test_check_formula_agrees_with_builder() -> None:
    # replaying a formula token by token succeeds exactly when check_formula passes
    v = Vocabulary.default()
    texts = ["Div(Sub(close,open),Sub(high,low))", "Sub(close,close)", "Add(close,volume)",
             "Corr(Mean(close,10d),Mean(close,10d),20d)", "Greater(Log(close),Log(open))",
             "Mul(Log(volume),2.0)", "Cov(close,volume,10d)", "Sub(Log(close),Log(open))"]
    for dims in (None, True):
        for text in texts:
            e = parse(text)
            b = RPNBuilder(v, 20, dims=dims)
            try:
                b.extend(v.encode(e, add_end=True))
                ok = True
            except GrammarError:
                ok = False
            assert ok == (check_formula(e, v, max_len=20, dims=dims) is None), (text, dims)


def test_grammar_cache_and_missing_dims() -> None:
    v = Vocabulary.default()
    assert Grammar.get(v, True) is Grammar.get(Vocabulary.default(), True)
    assert Grammar.get(v, None) is not Grammar.get(v, True)
    custom = Vocabulary.from_config({"features": ["close", "turnover"]},
                                    known_features=["close", "turnover"])
    with pytest.raises(ValueError, match="turnover"):
        RPNBuilder(custom, 20, dims=True)
    from alphaminer.expr.dimensions import NONE

    b = RPNBuilder(custom, 20, dims={"turnover": NONE})
    b.extend(["close", "turnover", "Mul", "END"])
    assert b.finish() == parse("Mul(close,turnover)")
