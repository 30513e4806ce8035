"""Codecs: canonical infix parser, alphagen and qlib importers, RPN encoding (docs/operators.md).

- :func:`parse` reads the canonical form printed by ``str(expr)``:
  ``Div(Sub(close,open),Sub(high,low))``, windows ``20d``/``-20d``, constants as Python float
  literals. ``$close`` and ``Constant(-0.5)`` are accepted too. Errors are :class:`ParseError`
  with the column and a caret under the offending character.
- :func:`parse_alphagen` reads alphagen's printout (``Mean($close,20d)``, ``Constant(-0.5)``,
  its ``Rank`` = our ``TsRank``).
- :func:`parse_qlib` reads qlib expressions (``Mean($close, 20)``, infix ``+ - * / **``,
  comparisons ``> >= < <= == !=``, unary minus) with Python's precedence; an integer in a
  rolling operator's window slot is the window. Names map to operators or compositions that give
  qlib 0.9.7's numbers (:data:`QLIB_NAMES`; comparisons become ``FillNaN(Gt(a,b),0.0)`` because
  pandas compares NaN as False, ``!=`` as True). Unsupported qlib operators, infix operators
  (``& | ~ %``) and window 0 (qlib's expanding windows) raise a :class:`ParseError` naming them.
- :func:`to_rpn` / :func:`from_rpn` convert to/from postfix token lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alphaminer.expr.ast import Call, Constant, ExprError, Feature, Node, Window
from alphaminer.expr.operators import OPERATORS, ArgType, OpKind


class ParseError(ValueError):
    """Syntax error with a position; ``str()`` shows the text and a caret."""

    def __init__(self, message: str, text: str, pos: int) -> None:
        self.message, self.text, self.pos = message, text, pos
        caret = " " * pos + "^"
        super().__init__(f"{message} at column {pos + 1}:\n  {text}\n  {caret}")


#: alphagen operator names that differ from ours.
ALPHAGEN_NAMES: dict[str, str] = {"Rank": "TsRank"}

#: qlib operator names → ours. Each gives qlib 0.9.7's numbers on full windows (and, with
#: ``Evaluator(min_periods=1)``, on qlib's partial windows too); see docs/operators.md.
QLIB_NAMES: dict[str, str] = {
    "Abs": "Abs", "Log": "Log", "Sign": "Sign", "Add": "Add", "Sub": "Sub", "Mul": "Mul",
    "Div": "Div", "Greater": "Greater", "Less": "Less", "Ref": "Ref", "Mean": "Mean",
    "Sum": "Sum", "Std": "Std", "Var": "Var", "Skew": "Skew", "Kurt": "Kurt", "Max": "Max",
    "Min": "Min", "Med": "Med", "Mad": "Mad", "Rank": "TsRank", "Delta": "Delta",
    "WMA": "QlibWMA", "EMA": "EWM", "Corr": "Corr", "Cov": "Cov", "Power": "Power",
    "IdxMax": "IdxMax", "IdxMin": "IdxMin", "Slope": "Slope", "Rsquare": "Rsquare",
    "Resi": "Resi", "Quantile": "Quantile", "If": "If",
    "Gt": "Gt", "Ge": "Ge", "Lt": "Lt", "Le": "Le", "Eq": "Eq", "Ne": "Ne",
}
#: qlib operators with no counterpart here (refused rather than silently approximated).
QLIB_UNSUPPORTED: frozenset[str] = frozenset({
    "Not", "And", "Or", "Mask", "ChangeInstrument", "Count", "TResample",
})
#: infix comparisons → comparison operators (1.0 / 0.0).
COMPARISONS: dict[str, str] = {">": "Gt", ">=": "Ge", "<": "Lt", "<=": "Le", "==": "Eq",
                               "!=": "Ne"}
#: infix operators Python (hence qlib) knows that this language does not, with their meaning.
_UNSUPPORTED_INFIX: dict[str, str] = {
    "&": "qlib And", "|": "qlib Or", "~": "qlib Not", "%": "modulo", "//": "floor division",
    "^": "bitwise xor", "!": "logical not", "=": "assignment",
}

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?P<dsuffix>d(?![A-Za-z0-9_]))?)
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<punct>\*\*|>=|<=|==|!=|//|[(),+\-*/<>&|~%^!=])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str  # number | window | name | punct | end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    prev_kind = "punct"
    while i < len(text):
        m = _TOKEN_RE.match(text, i)
        if m is None:
            raise ParseError(f"unexpected character {text[i]!r}", text, i)
        kind = m.lastgroup if m.lastgroup != "dsuffix" else "number"
        tok_text = m.group()
        if kind == "number" and tok_text[0] in "+-" and prev_kind in ("number", "window",
                                                                      "name") \
                or kind == "number" and tok_text[0] in "+-" and toks and toks[-1].text == ")":
            # binary +/- after an operand (qlib infix): split the sign off
            toks.append(_Tok("punct", tok_text[0], i))
            i += 1
            prev_kind = "punct"
            continue
        if kind != "ws":
            if kind == "number" and m.group("dsuffix"):
                kind = "window"
            toks.append(_Tok(kind, tok_text, i))
            prev_kind = kind if kind != "punct" else "punct"
        i = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


class _Parser:
    """Recursive-descent parser shared by the three dialects."""

    def __init__(self, text: str, dialect: str) -> None:
        self.text = text
        self.dialect = dialect
        self.toks = _tokenize(text)
        self.i = 0

    # -- token helpers
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> _Tok:
        t = self.peek()
        if t.text != text:
            found = "end of input" if t.kind == "end" else repr(t.text)
            raise ParseError(f"expected {text!r}, found {found}", self.text, t.pos)
        return self.take()

    def error(self, message: str, tok: _Tok) -> ParseError:
        return ParseError(message, self.text, tok.pos)

    # -- grammar
    def parse(self) -> Node:
        node = self.infix() if self.dialect == "qlib" else self.atom()
        t = self.peek()
        if t.kind != "end":
            self.refuse_infix(t)
            raise self.error(f"unexpected {t.text!r} after a complete expression", t)
        return node

    def refuse_infix(self, t: _Tok) -> None:
        """Raise a ParseError naming the infix operator ``t`` if it is not allowed here."""
        if t.kind != "punct":
            return
        if t.text in _UNSUPPORTED_INFIX:
            raise self.error(f"infix operator {t.text!r} ({_UNSUPPORTED_INFIX[t.text]}) is not "
                             f"supported", t)
        names = {**COMPARISONS, "+": "Add", "-": "Sub", "*": "Mul", "/": "Div", "**": "Power"}
        if self.dialect != "qlib" and t.text in names:
            raise self.error(f"infix {t.text!r} is not {self.dialect} syntax; write "
                             f"{names[t.text]}(x,y)", t)

    def infix(self) -> Node:
        node = self.additive()
        t = self.peek()
        if t.text in COMPARISONS:
            self.take()
            rhs = self.additive()
            node = self.qlib_compare(COMPARISONS[t.text], [node, rhs], t)
            nxt = self.peek()
            if nxt.text in COMPARISONS:
                raise self.error(f"chained comparison {t.text!r} ... {nxt.text!r} is not "
                                 f"supported; parenthesise", nxt)
        self.refuse_infix(self.peek())
        return node

    def qlib_compare(self, op: str, args: list[Node], tok: _Tok,
                     arg_toks: list[_Tok] | None = None) -> Node:
        """numpy/pandas compare NaN as False (``!=`` as True): qlib's ``a > b`` is 0.0 there."""
        fill = 1.0 if op == "Ne" else 0.0
        return Call("FillNaN", [self.build(op, args, tok, arg_toks), Constant(fill)])

    def additive(self) -> Node:
        node = self.term()
        while self.peek().text in ("+", "-"):
            op = self.take()
            rhs = self.term()
            node = self.build("Add" if op.text == "+" else "Sub", [node, rhs], op)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek().text in ("*", "/"):
            op = self.take()
            rhs = self.unary()
            node = self.build("Mul" if op.text == "*" else "Div", [node, rhs], op)
        return node

    def unary(self) -> Node:
        t = self.peek()
        if t.text == "-":
            self.take()
            operand = self.unary()
            if isinstance(operand, Constant):
                return Constant(-operand.value)
            return self.build("Neg", [operand], t)
        if t.text == "+":
            self.take()
            return self.unary()
        if t.text == "~":
            self.refuse_infix(t)
        node = self.primary()
        op = self.peek()
        if op.text == "**":  # Python: binds tighter than a unary minus on its left
            self.take()
            exponent = self.unary()
            return self.build("Power", [node, exponent], op)
        return node

    def primary(self) -> Node:
        t = self.peek()
        if t.text == "(":
            self.take()
            node = self.infix()
            self.expect(")")
            return node
        return self.atom()

    def atom(self) -> Node:
        t = self.peek()
        if t.kind == "number":
            self.take()
            return Constant(float(t.text))
        if t.kind == "window":
            self.take()
            num = t.text[:-1]
            if not re.fullmatch(r"[+-]?\d+", num):
                raise self.error(f"window {t.text!r} must be a whole number of days", t)
            return Window(int(num))
        if t.kind == "name":
            self.take()
            if self.peek().text == "(":
                return self.call(t)
            return self.feature(t)
        if t.kind == "string":
            raise self.error(f"string literal {t.text} is not supported", t)
        found = "end of input" if t.kind == "end" else repr(t.text)
        raise self.error(f"expected an expression, found {found}", t)

    def feature(self, t: _Tok) -> Node:
        name = t.text
        if self.dialect in ("qlib", "alphagen") and not name.startswith("$"):
            raise self.error(f"{self.dialect} features are written $name, got {name!r}", t)
        bare = name.lstrip("$")
        if bare in OPERATORS or bare == "Constant":
            raise self.error(f"operator {bare!r} needs arguments: {bare}(...)", t)
        return Feature(bare.lower() if self.dialect != "canonical" else bare)

    def call(self, name_tok: _Tok) -> Node:
        name = name_tok.text
        self.expect("(")
        if name == "Constant":
            sign = -1.0 if self.peek().text == "-" and self.take() else 1.0
            t = self.take()
            if t.kind != "number":
                raise self.error("Constant(...) takes a number", t)
            self.expect(")")
            return Constant(sign * float(t.text))
        op = self.resolve(name, name_tok)
        args: list[Node] = []
        arg_toks: list[_Tok] = []
        if self.peek().text != ")":
            while True:
                arg_toks.append(self.peek())
                args.append(self.infix() if self.dialect == "qlib" else self.atom())
                if self.peek().text == ",":
                    self.take()
                    continue
                self.refuse_infix(self.peek())
                break
        self.expect(")")
        spec = OPERATORS[op]
        if len(args) != spec.arity:
            raise self.error(f"{op} takes {spec.arity} arguments, got {len(args)}", name_tok)
        if self.dialect != "qlib":
            return self.build(op, args, name_tok, arg_toks)
        args = [self.qlib_window(name, a, kind, t)
                for a, kind, t in zip(args, spec.args, arg_toks)]
        if op in COMPARISONS.values():
            return self.qlib_compare(op, args, name_tok, arg_toks)
        if op == "If" and isinstance(args[0], Feature | Call) and not (
                isinstance(args[0], Call) and args[0].op == "FillNaN"):
            # numpy's where() takes a NaN condition as true
            args[0] = Call("FillNaN", [args[0], Constant(1.0)])
        return self.build(op, args, name_tok, arg_toks)

    def qlib_window(self, qlib_op: str, a: Node, kind: ArgType, tok: _Tok) -> Node:
        if kind is not ArgType.WINDOW or isinstance(a, Window):
            return a
        if isinstance(a, Constant) and a.value == int(a.value):
            if a.value == 0:
                what = "the first day's value" if qlib_op == "Ref" else "an expanding window"
                raise self.error(f"qlib {qlib_op}(x, 0) ({what}) has no equivalent here", tok)
            return Window(int(a.value))
        raise self.error(f"expected an integer window, got {a}", tok)

    def resolve(self, name: str, tok: _Tok) -> str:
        if self.dialect == "qlib":
            if name in QLIB_UNSUPPORTED:
                raise self.error(f"qlib operator {name!r} has no equivalent here", tok)
            if name in QLIB_NAMES:
                return QLIB_NAMES[name]
            raise self.error(f"unknown qlib operator {name!r}", tok)
        if self.dialect == "alphagen":
            name = ALPHAGEN_NAMES.get(name, name)
        if name not in OPERATORS:
            raise self.error(f"unknown operator {name!r}; known: {', '.join(OPERATORS)}", tok)
        return name

    def build(self, op: str, args: list[Node], tok: _Tok,
              arg_toks: list[_Tok] | None = None) -> Node:
        try:
            return Call(op, args)
        except ExprError as exc:
            m = re.match(r"argument (\d+) of", str(exc))
            if m and arg_toks and int(m.group(1)) <= len(arg_toks):
                tok = arg_toks[int(m.group(1)) - 1]
            raise self.error(str(exc), tok) from None


def parse(text: str) -> Node:
    """Parse the canonical infix form (``str(expr)`` output); ``parse(str(e)) == e``."""
    if isinstance(text, Node):
        return text
    return _Parser(str(text), "canonical").parse()


def parse_alphagen(text: str) -> Node:
    """Import an alphagen expression string (``Mean($close,20d)``, ``Constant(-0.5)``)."""
    return _Parser(str(text), "alphagen").parse()


def parse_qlib(text: str) -> Node:
    """Import a qlib expression (``Mean($close, 20)``, ``($close-$open)/$open``)."""
    return _Parser(str(text), "qlib").parse()


# ----------------------------------------------------------------------------- RPN
def to_rpn(e: Node) -> list[str]:
    """Postfix tokens: features by name, constants as float literals, windows as ``20d``."""
    if isinstance(e, Call):
        out: list[str] = []
        for a in e.args:
            out.extend(to_rpn(a))
        out.append(e.op)
        return out
    return [str(e)]


class RPNError(ValueError):
    """Invalid RPN sequence; names the token index."""


def from_rpn(tokens: list[str] | tuple[str, ...]) -> Node:
    """Rebuild an expression from postfix tokens (inverse of :func:`to_rpn`)."""
    stack: list[Node] = []
    for i, raw in enumerate(tokens):
        tok = str(raw)
        if tok in OPERATORS:
            spec = OPERATORS[tok]
            if len(stack) < spec.arity:
                raise RPNError(f"token {i} ({tok}) needs {spec.arity} operands, "
                               f"stack has {len(stack)}")
            args = stack[len(stack) - spec.arity:]
            del stack[len(stack) - spec.arity:]
            try:
                stack.append(Call(tok, args))
            except ExprError as exc:
                raise RPNError(f"token {i} ({tok}): {exc}") from None
            continue
        try:
            node = _Parser(tok, "canonical").parse()
        except (ParseError, ExprError) as exc:
            raise RPNError(f"token {i} ({tok!r}) is not a feature, constant, window or "
                           f"operator: {exc}") from None
        if isinstance(node, Call):
            raise RPNError(f"token {i} ({tok!r}) must be a single token")
        stack.append(node)
    if len(stack) != 1:
        raise RPNError(f"RPN sequence leaves {len(stack)} items on the stack, expected 1")
    return stack[0]


def is_series(e: Node) -> bool:
    """True for nodes that evaluate to a ``[T, S]`` series (features and operator calls)."""
    return isinstance(e, Feature | Call)


__all__ = [
    "ALPHAGEN_NAMES", "COMPARISONS", "QLIB_NAMES", "QLIB_UNSUPPORTED", "OpKind", "ParseError",
    "RPNError", "from_rpn", "is_series", "parse", "parse_alphagen", "parse_qlib", "to_rpn",
]
