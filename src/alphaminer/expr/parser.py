"""Codecs: canonical infix parser, alphagen and qlib importers, RPN encoding (DESIGN §4).

- :func:`parse` reads the canonical form printed by ``str(expr)``:
  ``Div(Sub(close,open),Sub(high,low))``, windows ``20d``/``-20d``, constants as Python float
  literals. ``$close`` and ``Constant(-0.5)`` are accepted too. Errors are :class:`ParseError`
  with the column and a caret under the offending character.
- :func:`parse_alphagen` reads alphagen's printout (``Mean($close,20d)``, ``Constant(-0.5)``,
  its ``Rank`` = our ``TsRank``).
- :func:`parse_qlib` reads qlib expressions (``Mean($close, 20)``, infix ``+ - * /``, unary
  minus); an integer in a rolling operator's last slot is the window. Unsupported qlib operators
  raise a :class:`ParseError` naming them.
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

#: qlib operator names → ours (same semantics; see docs/operators.md).
QLIB_NAMES: dict[str, str] = {
    "Abs": "Abs", "Log": "Log", "Sign": "Sign", "Add": "Add", "Sub": "Sub", "Mul": "Mul",
    "Div": "Div", "Greater": "Greater", "Less": "Less", "Ref": "Ref", "Mean": "Mean",
    "Sum": "Sum", "Std": "Std", "Var": "Var", "Skew": "Skew", "Kurt": "Kurt", "Max": "Max",
    "Min": "Min", "Med": "Med", "Mad": "Mad", "Rank": "TsRank", "Delta": "Delta",
    "WMA": "WMA", "EMA": "EMA", "Corr": "Corr", "Cov": "Cov",
}
#: qlib operators with no exact counterpart here (refused rather than silently approximated).
QLIB_UNSUPPORTED: frozenset[str] = frozenset({
    "Power", "Not", "And", "Or", "Gt", "Ge", "Lt", "Le", "Eq", "Ne", "If", "Mask",
    "ChangeInstrument", "IdxMax", "IdxMin", "Quantile", "Count", "Slope", "Rsquare", "Resi",
})

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?P<dsuffix>d(?![A-Za-z0-9_]))?)
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),+\-*/])
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
            raise self.error(f"unexpected {t.text!r} after a complete expression", t)
        return node

    def infix(self) -> Node:
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
                break
        self.expect(")")
        spec = OPERATORS[op]
        if len(args) != spec.arity:
            raise self.error(f"{op} takes {spec.arity} arguments, got {len(args)}", name_tok)
        if self.dialect == "qlib":
            args = [self.qlib_window(a, kind, t)
                    for a, kind, t in zip(args, spec.args, arg_toks)]
        return self.build(op, args, name_tok, arg_toks)

    def qlib_window(self, a: Node, kind: ArgType, tok: _Tok) -> Node:
        if kind is not ArgType.WINDOW or isinstance(a, Window):
            return a
        if isinstance(a, Constant) and a.value == int(a.value):
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
    "ALPHAGEN_NAMES", "QLIB_NAMES", "QLIB_UNSUPPORTED", "OpKind", "ParseError", "RPNError",
    "from_rpn", "is_series", "parse", "parse_alphagen", "parse_qlib", "to_rpn",
]
