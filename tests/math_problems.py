"""MATH-style problems with LaTeX, generated from templates, and the ways their copies are written.

Each problem is ``{"problem", "solution"}`` like the MATH dataset: fractions, roots,
exponents, binomials and matrices in ``$...$``, a worked solution ending in ``\\boxed{}``.
Wording is drawn from several slots, so that problems differ in words, not only in numbers,
as real ones do. The rewriters give the forms a copy takes on the web: LaTeX stripped,
other commands for the same notation, Unicode rendering, numbers changed.

Also GSM8K-style word problems (distinct problems, the same style) as clean text that an
index of GSM8K's test set must not match.
"""

import random
import re

SUBJECTS = ["Alice", "Bob", "Carmen", "Dmitri", "Esther", "Farid", "Greta", "Hiroshi", "Ines", "Jamal", "Kofi", "Lena"]
OBJECTS = ["garden", "tank", "ribbon", "track", "bookshelf", "poster", "field", "tunnel", "canvas", "fence", "pool", "ramp"]
VERBS = ["measures", "computes", "records", "writes down", "estimates", "checks"]
ASKS = ["Express your answer as a common fraction.", "Express your answer in simplest radical form.",
        "Give your answer as an integer.", "Express your answer as a decimal to the nearest tenth."]


def math_problem(rng: random.Random) -> dict[str, str]:
    a, b, c, d = (rng.randint(2, 19) for _ in range(4))
    k, n = rng.randint(2, 5), rng.randint(20, 400)
    who, thing, verb, ask = rng.choice(SUBJECTS), rng.choice(OBJECTS), rng.choice(VERBS), rng.choice(ASKS)
    templates = [
        (f"{who} {verb} the length of a {thing} as $\\frac{{{a}}}{{{b}}}$ meters and its width as "
         f"$\\frac{{{c}}}{{{d}}}$ meters. What is the value of $\\frac{{{a}}}{{{b}}} \\cdot \\frac{{{c}}}{{{d}}}$, the area of the {thing}? {ask}",
         f"The area is the product of the sides, $\\frac{{{a}}}{{{b}}} \\cdot \\frac{{{c}}}{{{d}}} = \\frac{{{a * c}}}{{{b * d}}}$. "
         f"Simplifying gives $\\boxed{{\\frac{{{a * c}}}{{{b * d}}}}}$."),
        (f"The diagonal of a square {thing} is $\\sqrt{{{n}}}$ units long, and {who} {verb} its side as $x$. "
         f"If $x^{{2}} \\le {n}$ and $x$ is a positive integer, what is the largest possible value of $x^{{{k}}}$? {ask}",
         f"Since $x^{{2}} \\le {n}$, we need $x \\le \\sqrt{{{n}}}$. The largest integer is $x = {int(n ** 0.5)}$, "
         f"so $x^{{{k}}} = \\boxed{{{int(n ** 0.5) ** k}}}$."),
        (f"{who} {verb} how many ways a committee of ${k}$ can be chosen from the ${a + b}$ members who keep the {thing}. "
         f"Compute $\\binom{{{a + b}}}{{{k}}}$ and then divide the result by $\\pi r^{{2}}$ with $r = {c}$. {ask}",
         f"We have $\\binom{{{a + b}}}{{{k}}} = \\frac{{({a + b})!}}{{{k}!\\,({a + b - k})!}}$, which is divided by $\\pi \\cdot {c}^{{2}}$ "
         f"to give $\\boxed{{\\frac{{\\binom{{{a + b}}}{{{k}}}}}{{{c * c}\\pi}}}}$."),
        (f"For the {thing} project, {who} {verb} the product $\\begin{{pmatrix}} {a} & {b} \\\\ {c} & {d} \\end{{pmatrix}} "
         f"\\begin{{pmatrix}} {k} \\\\ {n} \\end{{pmatrix}}$. What is the sum of the entries of the resulting vector? {ask}",
         f"Multiplying, the vector is $\\begin{{pmatrix}} {a * k + b * n} \\\\ {c * k + d * n} \\end{{pmatrix}}$, "
         f"and the sum of its entries is $\\boxed{{{a * k + b * n + c * k + d * n}}}$."),
        (f"Let $f(x) = {a}x^{{{k}}} - {b}x + {c}$ describe the height of a {thing} that {who} {verb}. "
         f"Find $f({d}) - f(-{d})$, given that $\\sqrt{{{d * d}}} = {d}$. {ask}",
         f"The even powers cancel when $k$ is even; computing directly, $f({d}) - f(-{d}) = "
         f"{a * d ** k - b * d + c - (a * (-d) ** k + b * d + c)}$, so the answer is $\\boxed{{{a * d ** k - b * d + c - (a * (-d) ** k + b * d + c)}}}$."),
    ]
    problem, solution = rng.choice(templates)
    return {"problem": problem, "solution": solution}


def math_problems(count: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [math_problem(rng) for _ in range(count)]


# --- how copies are written ----------------------------------------------------------------

FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
SQRT = re.compile(r"\\sqrt\{([^{}]*)\}")
POWER = re.compile(r"\^\{([^{}]*)\}")
MATRIX = re.compile(r"\\begin\{pmatrix\}(.*?)\\end\{pmatrix\}")
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
NUMBER = re.compile(r"\d+")


def latex_stripped(text: str) -> str:
    """As a page that drops the markup writes it: a/b, sqrt(x), x^2, *, <=, pi, [[a, b], [c, d]]."""
    text = MATRIX.sub(lambda m: "[" + "], [".join(row.strip().replace(" & ", ", ") for row in m[1].split("\\\\")) + "]", text)
    text = FRAC.sub(r"\1/\2", text)
    text = SQRT.sub(r"sqrt(\1)", text)
    text = POWER.sub(r"^\1", text)
    for latex, plain in (("\\cdot", "*"), ("\\le", "<="), ("\\pi", "pi"), ("\\binom", "C"), ("\\boxed", ""), ("\\,", " ")):
        text = text.replace(latex, plain)
    return text.replace("$", "").replace("{", "(").replace("}", ")")


def latex_variant(text: str) -> str:
    """The same LaTeX with other commands: \\dfrac, \\times, \\leq, \\dbinom."""
    return (text.replace("\\frac", "\\dfrac").replace("\\cdot", "\\times").replace("\\le ", "\\leq ")
            .replace("\\binom", "\\dbinom"))


def unicode_rendered(text: str) -> str:
    """As rendered math copied out of a page: √x, x², π, ·, ≤, a⁄b."""
    text = FRAC.sub(r"\1⁄\2", text)
    text = SQRT.sub(r"√\1", text)
    text = POWER.sub(lambda m: m[1].translate(SUPERSCRIPT) if m[1].isdigit() else "^" + m[1], text)
    for latex, symbol in (("\\cdot", "·"), ("\\le", "≤"), ("\\pi", "π"), ("\\binom", "C"), ("\\boxed", ""), ("\\,", " ")):
        text = text.replace(latex, symbol)
    text = MATRIX.sub(lambda m: "(" + "; ".join(row.strip().replace(" & ", " ") for row in m[1].split("\\\\")) + ")", text)
    return text.replace("$", "").replace("{", "").replace("}", "")


def numbers_changed(text: str, rng: random.Random) -> str:
    return NUMBER.sub(lambda m: str(int(m[0]) + rng.randint(1, 9)), text)


def prefix(text: str, share: float = 0.6) -> str:
    words = text.split()
    return " ".join(words[: max(1, round(len(words) * share))])


# --- GSM8K-style word problems ---------------------------------------------------------------

PEOPLE = ["Maya", "Tom", "Priya", "Luis", "Hannah", "Omar", "Zoe", "Ken", "Ruth", "Sam", "Ava", "Noah"]
ITEMS = ["apples", "stickers", "marbles", "pencils", "cupcakes", "books", "stamps", "tickets", "shells", "cards"]
PLACES = ["the market", "school", "the fair", "the library", "her aunt's house", "the bakery", "the park", "the store"]
WORD_PROBLEMS = [
    "{p} has {a} {i}. {q} gives {p} {b} more {i} at {pl}, and then {p} shares {c} of them with friends. How many {i} does {p} have now?",
    "At {pl}, {p} buys {a} packs of {i} with {b} {i} in each pack. If {p} already had {c} {i}, how many {i} does {p} have in total?",
    "{p} earns ${a} a day selling {i} at {pl}. After {b} days {p} spends ${c} on supplies. How much money does {p} have left?",
    "{p} and {q} collect {i}. {p} has {a} {i}, and {q} has {b} times as many. If they give away {c} {i}, how many do they have together?",
    "A box at {pl} holds {a} {i}. {p} fills {b} boxes and {q} fills {c} boxes. How many {i} did they pack altogether?",
    "{p} reads about {i} for {a} minutes every day. {q} reads {b} minutes less each day. How many minutes does {q} read in {c} days?",
]


def word_problems(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    problems = set()
    while len(problems) < count:
        p, q = rng.sample(PEOPLE, 2)
        problems.add(rng.choice(WORD_PROBLEMS).format(
            p=p, q=q, i=rng.choice(ITEMS), pl=rng.choice(PLACES), a=rng.randint(2, 90), b=rng.randint(2, 30), c=rng.randint(2, 40)))
    return sorted(problems)
