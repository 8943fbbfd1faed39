"""Math notation in one form, for index and scan alike.

A math problem is copied in many spellings: as LaTeX (``\\frac{3}{4}``, ``x^{2}``), with its
LaTeX stripped (``3/4``, ``x^2``), with other commands for the same thing (``\\dfrac``,
``\\times`` for ``\\cdot``, ``\\leq`` for ``\\le``) or rendered as Unicode (``¾``, ``x²``,
``√``, ``π``, ``≤``). Word tokens drop punctuation already, so ``\\frac{3}{4}`` and ``3/4``
differ only in the token ``frac``, and ``x²`` is one token ``x2`` once NFKC folds it. Before
folding, then:

* commands that only format or relate (``\\frac``, ``\\left``, ``\\text``, ``\\cdot``,
  ``\\times``, ``\\le``, ``\\begin{pmatrix}``, ...) become spaces, as ``*``, ``/``, ``<=``,
  ``×`` and ``≤`` are already, being punctuation;
* command variants become one name (``\\dbinom`` is ``\\binom``, ``\\varepsilon`` is ``\\epsilon``);
* symbols become the names of their commands (``√`` is ``sqrt``, ``π`` is ``pi``, a Greek
  letter standing alone is its name), superscript and subscript characters become ``^`` and
  ``_`` with the plain character (``x²`` is ``x^2``).

Each character of the result comes from a span of the original text, so a redaction cuts
the original where a copy's tokens were.
"""

import re

import numpy as np

DROPPED_COMMANDS = (
    "frac", "dfrac", "tfrac", "cfrac", "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
    "displaystyle", "textstyle", "mathrm", "mathbf", "mathit", "mathsf", "mathtt", "mathbb", "mathcal", "boldsymbol",
    "text", "textbf", "textit", "textrm", "operatorname", "mbox",
    "cdot", "cdotp", "times", "ast", "div", "le", "leq", "leqslant", "ge", "geq", "geqslant", "ne", "neq", "pm", "mp",
    "approx", "equiv", "sim", "simeq", "cong", "to", "rightarrow", "Rightarrow", "implies", "iff", "longrightarrow",
    "quad", "qquad", "circ", "degree", "prime", "dots", "ldots", "cdots",
)
COMMAND_ALIASES = {
    "dbinom": "binom", "tbinom": "binom", "varepsilon": "epsilon", "varphi": "phi", "vartheta": "theta",
    "lvert": "vert", "rvert": "vert", "lbrace": "", "rbrace": "", "lbrack": "", "rbrack": "",
}
SYMBOL_NAMES = {
    "√": "sqrt", "∛": "sqrt", "∜": "sqrt", "π": "pi", "∞": "infty", "∑": "sum", "∏": "prod", "∫": "int",
    "∈": "in", "∉": "notin", "∪": "cup", "∩": "cap", "⊂": "subset", "⊆": "subseteq", "∅": "emptyset",
    "∠": "angle", "△": "triangle", "∥": "parallel", "⊥": "perp",
}
GREEK_NAMES = dict(zip(
    "αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΦΨΩ",
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon "
    "phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega".split(),
))
SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni"))
SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎", "0123456789+-=()"))

_COMMAND = re.compile(
    r"\\(?:begin|end)\{[A-Za-z*]+\}"  # an environment's bounds: \begin{pmatrix}
    r"|\\[,;:! ]"  # spacing
    r"|\\(" + "|".join(sorted((*DROPPED_COMMANDS, *COMMAND_ALIASES), key=len, reverse=True)) + r")(?![A-Za-z])"
)
_SYMBOL = re.compile(
    "[" + re.escape("".join(SYMBOL_NAMES) + "".join(SUPERSCRIPTS) + "".join(SUBSCRIPTS)) + "]"
    + "|(?<![^\\W\\d_])[" + "".join(GREEK_NAMES) + "](?![^\\W\\d_])"  # a Greek letter alone, not inside a Greek word
)
_MATH = re.compile(_COMMAND.pattern + "|" + _SYMBOL.pattern)
# Every character a notation starts with, as a table over code points: the notations are
# matched only where one of them is, which one gather per character finds ten times faster
# than a regular expression can scan (its alternatives are tried at every position).
_NOTATION_START = np.zeros(0x110000, dtype=bool)
_NOTATION_START[[ord(ch) for ch in ("\\", *SYMBOL_NAMES, *SUPERSCRIPTS, *SUBSCRIPTS, *GREEK_NAMES)]] = True


def notations(text: str) -> list[re.Match]:
    """The math notations of ``text``, in order, none overlapping."""
    if "\\" not in text and text.isascii():
        return []
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    found, end = [], 0
    for start in np.flatnonzero(_NOTATION_START.take(codes)).tolist():
        if start >= end and (match := _MATH.match(text, start)):
            found.append(match)
            end = match.end()
    return found


def _replacement(match: re.Match) -> str:
    found = match.group()
    if found.startswith("\\"):
        command = match.group(1)
        return f" {COMMAND_ALIASES[command]} " if command in COMMAND_ALIASES else " "
    if found in SUPERSCRIPTS:
        return "^" + SUPERSCRIPTS[found]
    if found in SUBSCRIPTS:
        return "_" + SUBSCRIPTS[found]
    name = SYMBOL_NAMES.get(found) or GREEK_NAMES.get(found)
    return f" {name} " if name else " "


def canonical_math(text: str) -> str:
    """``text`` with its math notation in the one form (module docstring)."""
    rewritten = canonical_math_with_sources(text)
    return text if rewritten is None else rewritten[0]


def canonical_math_with_sources(text: str) -> tuple[str, np.ndarray, np.ndarray] | None:
    """:func:`canonical_math`, and for each of its characters the span of ``text`` it comes
    from (start, exclusive end): itself where the text is unchanged, the whole notation it
    replaced where it is not. None for a text without math notation (most of them)."""
    found = notations(text)
    if not found:
        return None
    pieces, first, last = [], [], []
    cursor = 0
    for match in found:
        start, end = match.span()
        replacement = _replacement(match)
        pieces += [text[cursor:start], replacement]
        first += [np.arange(cursor, start), np.full(len(replacement), start)]
        last += [np.arange(cursor + 1, start + 1), np.full(len(replacement), end)]
        cursor = end
    pieces.append(text[cursor:])
    first.append(np.arange(cursor, len(text)))
    last.append(np.arange(cursor + 1, len(text) + 1))
    return "".join(pieces), np.concatenate(first), np.concatenate(last)
