"""Web documents of the demo crawl: one builder per page kind, all drawing from one seeded Context."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from demo.sites import LABELS, SITES, Site
from demo.sources import Sources, scaled
from demo.text import BenchItem, CodeUnit, DocEntry, WikiExtract
from demo.vocabulary import (
    ANSWER_INTROS,
    BOILERPLATE_MESSAGES,
    CODE_EXERCISE_INTROS,
    CODE_QUESTION_BODIES,
    CODE_QUESTION_TITLES,
    FOLLOW_UPS,
    GENERAL_QUESTION_BODIES,
    GENERAL_QUESTION_TITLES,
    HOMEWORK_INTROS,
    LEGAL_LINKS,
    NEAR_DUP_APPENDIX,
    NEAR_DUP_INSERTS,
    RELATED_INTROS,
    SPAM_CITIES,
    SPAM_HOOKS,
    SPAM_PRODUCTS,
    SPAM_TLDS,
    SPAM_WORDS,
    USER_ADJECTIVES,
    USER_NOUNS,
)
from demo.words import change_numbers, first_half, shingle_jaccard, slug, word_count

WEB_COUNTS = {  # documents per kind at scale 1.0
    "wiki": 720, "code": 300, "docs": 300, "forum": 375, "spam": 200, "boilerplate": 125,
    "wiki_fr": 100, "wiki_es": 100, "exact_dup": 100, "near_dup": 100, "hard_negative": 50,
    "contaminated": 50, "web_pdf": 6,
}
CONTAMINATED_ITEM_FRACTION = 0.6
NEAR_DUP_MIN_JACCARD = 0.86
NEAR_DUP_MIN_WORDS = 200
CONTAMINATION_KINDS = ("verbatim", "numbers_changed", "half")
FORUM_EPOCH = datetime(2021, 1, 1, tzinfo=timezone.utc)
DOMAIN_OF_KIND = {
    "wiki": "wiki", "wiki_fr": "wiki", "wiki_es": "wiki", "hard_negative": "wiki",
    "code": "code", "docs": "docs", "forum": "forum", "spam": "web", "boilerplate": "web",
}
# Text blocks become the ground-truth text; "meta" and "post" blocks are page chrome.
TEXT_BLOCKS = frozenset({"h2", "p", "pre", "ul", "links", "quote"})

LICENSE_WEIGHTS = {
    "none": 50, "cc-by": 10, "cc-by-sa": 14, "cc0": 5, "public-domain": 3, "noai": 8,
    "all-rights-reserved": 10,
}
CHARSET_WEIGHTS = {"utf-8": 2, "windows-1252": 1, "iso-8859-1": 1}
CHARSET_DECLARATIONS = ("header", "meta", "both")


@dataclass(frozen=True)
class Block:
    """A piece of main content. kind: h2 | p | pre | ul | links | quote (text) or
    meta | post (chrome: a byline, a forum post header with attrs user/votes/time/role)."""

    kind: str
    text: str
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass
class WebDoc:
    url: str
    kind: str
    domain: str
    site: Site
    title: str
    blocks: list[Block]
    sidebar: tuple[str, ...]
    license: str = "none"
    charset: str = "utf-8"
    charset_declared_in: str = "both"
    heavy_chrome: bool = False
    topic: str | None = None
    dup_of: str | None = None
    dup_kind: str | None = None
    hard_negative_of: str | None = None
    contaminated_with: str | None = None
    contamination_kind: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if b.kind in TEXT_BLOCKS)


def contamination_copy(item: BenchItem, kind: str, rng: random.Random) -> str:
    if kind == "verbatim":
        return item.question
    if kind == "numbers_changed":
        return change_numbers(item.question, rng)
    return first_half(item.question)


class UrlRegistry:
    """Hands out unique URLs (a numeric suffix on the path when one is taken)."""

    def __init__(self):
        self.used: set[str] = set()

    def claim(self, url: str) -> str:
        candidate, n = url, 1
        while candidate in self.used:
            n += 1
            candidate = f"{url}_{n}"
        self.used.add(candidate)
        return candidate


@dataclass
class Context:
    rng: random.Random
    sources: Sources
    urls: UrlRegistry = field(default_factory=UrlRegistry)

    def sidebar(self, lang: str = "en") -> tuple[str, ...]:
        return tuple(self.rng.sample(self.sources.titles[lang], self.rng.randint(5, 9)))

    def license(self) -> str:
        return self.rng.choices(list(LICENSE_WEIGHTS), weights=list(LICENSE_WEIGHTS.values()))[0]

    def user(self) -> str:
        return f"{self.rng.choice(USER_ADJECTIVES)}_{self.rng.choice(USER_NOUNS)}{self.rng.randint(1, 999)}"

    def post(self, role: str) -> Block:
        posted = FORUM_EPOCH + timedelta(minutes=self.rng.randint(0, 60 * 24 * 1000))
        attrs = (("user", self.user()), ("votes", str(self.rng.randint(-2, 250))),
                 ("time", posted.strftime("%Y-%m-%dT%H:%M:%SZ")), ("role", role))
        return Block("post", "", attrs)


def wiki_url(site: Site, title: str) -> str:
    return f"https://{site.host}/wiki/{quote(title.replace(' ', '_'), safe='')}"


def wiki_blocks(extracts: list[WikiExtract], site: Site) -> list[Block]:
    blocks = [Block("meta", LABELS[site.lang]["from"].format(site=site.name)), Block("p", extracts[0].text)]
    for extract in extracts[1:]:
        blocks += [Block("h2", extract.title), Block("p", extract.text)]
    return blocks


def make_wiki(ctx: Context, kind: str, extracts: list[WikiExtract], site: Site) -> WebDoc:
    title = extracts[0].title
    doc = WebDoc(ctx.urls.claim(wiki_url(site, title)), kind, DOMAIN_OF_KIND[kind], site, title,
                 wiki_blocks(extracts, site), ctx.sidebar(site.lang), ctx.license(), topic=extracts[0].topic)
    if site.lang != "en":
        doc.charset = ctx.rng.choices(list(CHARSET_WEIGHTS), weights=list(CHARSET_WEIGHTS.values()))[0]
        doc.charset_declared_in = "both" if doc.charset == "utf-8" else ctx.rng.choice(CHARSET_DECLARATIONS)
    return doc


def make_english_wiki(ctx: Context) -> WebDoc:
    extracts = ctx.sources.web_en.take(max_count=8, min_words=ctx.rng.randint(220, 420))
    return make_wiki(ctx, "wiki", extracts, ctx.rng.choice(SITES["wiki"]))


def make_foreign_wiki(ctx: Context, lang: str) -> WebDoc:
    pool = ctx.sources.fr if lang == "fr" else ctx.sources.es
    extracts = pool.take(max_count=10, min_words=ctx.rng.randint(120, 300))
    return make_wiki(ctx, f"wiki_{lang}", extracts, SITES[f"wiki_{lang}"][0])


def make_hard_negative(ctx: Context, original: WebDoc) -> WebDoc:
    """Same topic and lead paragraph as original, different everything else."""
    lead = next(b.text for b in original.blocks if b.kind == "p")
    extracts = ctx.sources.web_en.take(max_count=6, min_words=250, topic=original.topic)
    site = original.site
    blocks = wiki_blocks(extracts, site)
    blocks.insert(1, Block("p", lead))  # after the byline, before the page's own lead
    return WebDoc(ctx.urls.claim(wiki_url(site, extracts[0].title)), "hard_negative", "wiki", site,
                  extracts[0].title, blocks, ctx.sidebar(), ctx.license(), topic=original.topic,
                  hard_negative_of=original.url)


def make_code(ctx: Context, unit: CodeUnit) -> WebDoc:
    site = ctx.rng.choice(SITES["code"])
    n_lines = unit.source.count("\n") + 1
    breadcrumb = " / ".join(["cpython", "Lib", *unit.path.split("/")])
    blocks = [Block("meta", f"{breadcrumb} · {n_lines} lines · Raw · Blame · History"),
              Block("pre", unit.source)]
    url = f"https://{site.host}/python/cpython/blob/v3.11/Lib/{unit.path}/{unit.name}"
    return WebDoc(ctx.urls.claim(url), "code", "code", site, f"{unit.name} · cpython/Lib/{unit.path}",
                  blocks, ctx.sidebar(), ctx.license())


def docstring_blocks(docstring: str) -> list[Block]:
    """Docstring paragraphs as <p>, doctest or indented chunks as <pre>."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", docstring.strip()):
        lines = chunk.splitlines()
        if any(line.lstrip().startswith(">>>") for line in lines) or all(line[:1].isspace() for line in lines):
            blocks.append(Block("pre", chunk.strip("\n")))
        else:
            blocks.append(Block("p", " ".join(chunk.split())))
    return blocks


def qualified_signature(entry: DocEntry) -> str:
    owner = entry.qualname.rpartition(".")[0]
    return f"{entry.module}.{owner + '.' if owner else ''}{entry.signature}"


def make_docs(ctx: Context, entries: list[DocEntry]) -> WebDoc:
    site = ctx.rng.choice(SITES["docs"])
    module = entries[0].module
    blocks = [Block("meta", f"Source code: Lib/{module.replace('.', '/')}.py")]
    for entry in entries:
        blocks += [Block("h2", qualified_signature(entry)), *docstring_blocks(entry.docstring)]
    url = f"https://{site.host}/3.11/library/{module}.html"
    return WebDoc(ctx.urls.claim(url), "docs", "docs", site, f"{module} — {entries[0].qualname}",
                  blocks, ctx.sidebar(), ctx.license())


def forum_url(ctx: Context, site: Site, title: str) -> str:
    return ctx.urls.claim(f"https://{site.host}/questions/{ctx.rng.randint(10000, 999999)}/{slug(title)}")


def make_code_forum(ctx: Context, entry: DocEntry) -> WebDoc:
    rng = ctx.rng
    name = entry.qualname.rpartition(".")[2]
    fields = {"name": name, "module": entry.module, "sig": entry.signature}
    title = rng.choice(CODE_QUESTION_TITLES).format(**fields)
    blocks = [ctx.post("question"), Block("p", rng.choice(CODE_QUESTION_BODIES).format(**fields)),
              ctx.post("accepted"), Block("p", rng.choice(ANSWER_INTROS)), *docstring_blocks(entry.docstring)]
    if rng.random() < 0.6:
        blocks += [ctx.post("answer"), Block("p", rng.choice(FOLLOW_UPS))]
    site = rng.choice(SITES["forum"])
    return WebDoc(forum_url(ctx, site, title), "forum", "forum", site, title, blocks, ctx.sidebar(), ctx.license())


def make_general_forum(ctx: Context) -> WebDoc:
    rng = ctx.rng
    first, second = ctx.sources.web_en.take(max_count=2)
    fields = {"title": first.title, "description": first.description.lower() or "a related subject"}
    title = rng.choice(GENERAL_QUESTION_TITLES).format(**fields)
    blocks = [ctx.post("question"), Block("p", rng.choice(GENERAL_QUESTION_BODIES).format(**fields)),
              ctx.post("accepted"), Block("p", first.text),
              ctx.post("answer"), Block("p", rng.choice(RELATED_INTROS).format(title=second.title)),
              Block("p", second.text)]
    if rng.random() < 0.5:
        blocks += [ctx.post("answer"), Block("p", rng.choice(FOLLOW_UPS))]
    site = rng.choice(SITES["forum"])
    return WebDoc(forum_url(ctx, site, title), "forum", "forum", site, title, blocks, ctx.sidebar(), ctx.license())


def spam_block(rng: random.Random, product: str, style: str) -> Block:
    """One spam block in a given style; lines are separated by newlines."""
    if style == "stuffing":
        lines = [" ".join([product, *rng.sample(SPAM_WORDS, 3), product, rng.choice(SPAM_WORDS), product])
                 for _ in range(rng.randint(6, 14))]
        return Block("ul", "\n".join(lines))
    if style == "link_farm":
        lines = [f"Buy {rng.choice(SPAM_WORDS)} {product} in {rng.choice(SPAM_CITIES)}"
                 for _ in range(rng.randint(15, 30))]
        return Block("links", "\n".join(lines))
    if style == "repeated":
        line = f"Get your {product} today at the lowest price!"
        return Block("ul", "\n".join([line] * rng.randint(8, 20)))
    if style == "shouting":
        lines = [f"{rng.choice(SPAM_HOOKS)}!!! {product.upper()} {rng.choice(SPAM_HOOKS)}!!!"
                 for _ in range(rng.randint(5, 12))]
        return Block("ul", "\n".join(lines))
    lines = [f"{rng.choice(SPAM_WORDS)} {product}" for _ in range(rng.randint(10, 25))]
    return Block("links", "\n".join(lines))


def make_spam(ctx: Context) -> WebDoc:
    rng = ctx.rng
    product = rng.choice(SPAM_PRODUCTS)
    host = f"{rng.choice(SPAM_WORDS)}-{slug(product)}-{rng.randint(1, 99)}.{rng.choice(SPAM_TLDS)}"
    site = Site(host, product.title() + " Deals", rng.choice(("modern", "classic", "portal")), "en",
                tuple(f"{w.title()} {product}" for w in rng.sample(SPAM_WORDS, 5)), ("Contact", "Disclaimer"))
    styles = rng.sample(("stuffing", "link_farm", "repeated", "shouting", "short"), rng.randint(2, 4))
    title = f"{rng.choice(SPAM_HOOKS)} {product.upper()} {rng.choice(SPAM_WORDS).upper()}!!!"
    url = ctx.urls.claim(f"https://{host}/{slug(rng.choice(SPAM_WORDS) + ' ' + product)}.html")
    return WebDoc(url, "spam", "web", site, title, [spam_block(rng, product, s) for s in styles],
                  tuple(f"{rng.choice(SPAM_WORDS)} {product}" for _ in range(8)),
                  rng.choice(("none", "all-rights-reserved")))


def make_boilerplate(ctx: Context) -> WebDoc:
    rng = ctx.rng
    site = rng.choice(SITES["boilerplate"])
    messages = rng.sample(BOILERPLATE_MESSAGES, rng.randint(1, 2))
    path = rng.choice(("account", "search", "cart", "members", "newsletter", "app", "moved"))
    url = ctx.urls.claim(f"https://{site.host}/{path}/{rng.randint(1, 99999)}")
    return WebDoc(url, "boilerplate", "web", site, path.title(),
                  [Block("p", m) for m in messages], tuple(rng.sample(LEGAL_LINKS, 8)),
                  rng.choice(("none", "all-rights-reserved")), heavy_chrome=True)


def make_exact_dup(ctx: Context, original: WebDoc) -> WebDoc:
    """The original's blocks at another URL: the same site (tracking query, print view) or a mirror."""
    rng = ctx.rng
    if rng.random() < 0.5:
        variant = rng.choice(("?utm_source=newsletter", "?print=yes", "?ref=sidebar"))
        site, url = original.site, original.url + variant
    else:
        site = rng.choice(SITES["mirror"])
        url = f"https://{site.host}/{original.domain}/{slug(original.title)}"
    return replace(original, url=ctx.urls.claim(url), kind="exact_dup", site=site, sidebar=ctx.sidebar(),
                   license=ctx.license(), dup_of=original.url, dup_kind="exact")


def editable_paragraphs(blocks: list[Block]) -> list[int]:
    return [i for i, b in enumerate(blocks) if b.kind == "p" and word_count(b.text) >= 10]


def edit_blocks(blocks: list[Block], rng: random.Random, n_edits: int) -> list[Block]:
    """Insert or replace n_edits words in paragraphs and append a sentence."""
    edited = list(blocks)
    paragraphs = editable_paragraphs(blocks)
    for _ in range(n_edits):
        index = rng.choice(paragraphs)
        words = edited[index].text.split(" ")
        position = rng.randrange(1, len(words))
        if rng.random() < 0.5:
            words.insert(position, rng.choice(NEAR_DUP_INSERTS))
        else:
            words[position] = rng.choice(NEAR_DUP_INSERTS)
        edited[index] = replace(edited[index], text=" ".join(words))
    return edited + [Block("p", rng.choice(NEAR_DUP_APPENDIX))]


def make_near_dup(ctx: Context, original: WebDoc) -> WebDoc:
    """A lightly edited copy on a mirror with another template (Jaccard > NEAR_DUP_MIN_JACCARD)."""
    original_text = original.text
    for n_edits in range(max(1, word_count(original_text) // 100), 0, -1):
        blocks = edit_blocks(original.blocks, ctx.rng, n_edits)
        text = "\n\n".join(b.text for b in blocks if b.kind in TEXT_BLOCKS)
        if shingle_jaccard(original_text, text) > NEAR_DUP_MIN_JACCARD:
            break
    site = ctx.rng.choice([s for s in SITES["mirror"] if s.layout != original.site.layout])
    url = f"https://{site.host}/{original.domain}/{slug(original.title)}-{ctx.rng.randint(100, 999)}"
    return replace(original, url=ctx.urls.claim(url), kind="near_dup", site=site, blocks=blocks,
                   sidebar=ctx.sidebar(), license=ctx.license(), dup_of=original.url, dup_kind="near")


def make_contaminated(ctx: Context, item: BenchItem, kind: str) -> WebDoc:
    """A clean forum thread (code items) or study page (questions) quoting a benchmark item."""
    rng = ctx.rng
    copy = contamination_copy(item, kind, rng)
    if item.id.startswith("HumanEval/"):
        entry = ctx.sources.forum_entries.pop()
        site, domain = rng.choice(SITES["forum"]), "forum"
        function_name = re.findall(r"def (\w+)", item.question)[-1]
        title = f"Help with a coding exercise: {function_name}"
        blocks = [ctx.post("question"), Block("p", rng.choice(CODE_EXERCISE_INTROS)), Block("pre", copy),
                  ctx.post("answer"), Block("p", rng.choice(ANSWER_INTROS)), *docstring_blocks(entry.docstring)]
        url = forum_url(ctx, site, title)
    else:
        background, further = ctx.sources.web_en.take(max_count=2)
        site, domain = SITES["study"][0], "wiki"
        subject = item.id.split("/")[1].replace("_", " ")
        title = f"{subject.capitalize()} practice notes: {background.title}"
        blocks = [Block("h2", "Background"), Block("p", background.text),
                  Block("h2", "Practice question"), Block("p", rng.choice(HOMEWORK_INTROS)), Block("quote", copy)]
        if kind == "verbatim":
            blocks.append(Block("p", f"Answer: {item.answer}"))
        blocks += [Block("h2", "Further reading"), Block("p", further.text)]
        url = ctx.urls.claim(f"https://{site.host}/notes/{slug(subject)}/{slug(background.title)}")
    return WebDoc(url, "contaminated", domain, site, title, blocks, ctx.sidebar(), ctx.license(),
                  contaminated_with=item.id, contamination_kind=kind)


def pick_originals(
    docs: list[WebDoc], rng: random.Random, n_near: int, n_exact: int
) -> tuple[list[WebDoc], list[WebDoc]]:
    near_ok = [d for d in docs if d.domain in ("wiki", "docs", "forum") and d.site.lang == "en"
               and word_count(d.text) >= NEAR_DUP_MIN_WORDS and editable_paragraphs(d.blocks)]
    near = rng.sample(near_ok, n_near)
    chosen = {d.url for d in near}
    exact = rng.sample([d for d in docs if d.url not in chosen], n_exact)
    return near, exact


def build_web_docs(ctx: Context, scale: float) -> list[WebDoc]:
    counts = {kind: scaled(n, scale) for kind, n in WEB_COUNTS.items()}
    src = ctx.sources
    wiki = [make_english_wiki(ctx) for _ in range(counts["wiki"])]
    code = [make_code(ctx, src.code_units[i]) for i in range(counts["code"])]
    docs = [make_docs(ctx, src.doc_pages[i]) for i in range(counts["docs"])]
    forum = [make_code_forum(ctx, src.forum_entries.pop()) if ctx.rng.random() < 0.5 else make_general_forum(ctx)
             for _ in range(counts["forum"])]
    originals = wiki + code + docs + forum
    near_originals, exact_originals = pick_originals(originals, ctx.rng, counts["near_dup"], counts["exact_dup"])
    used = {d.url for d in near_originals + exact_originals}
    negative_originals = ctx.rng.sample([d for d in wiki if d.url not in used], counts["hard_negative"])
    contaminable = src.bench[: max(1, round(len(src.bench) * CONTAMINATED_ITEM_FRACTION))]
    return (
        originals
        + [make_spam(ctx) for _ in range(counts["spam"])]
        + [make_boilerplate(ctx) for _ in range(counts["boilerplate"])]
        + [make_foreign_wiki(ctx, "fr") for _ in range(counts["wiki_fr"])]
        + [make_foreign_wiki(ctx, "es") for _ in range(counts["wiki_es"])]
        + [make_exact_dup(ctx, d) for d in exact_originals]
        + [make_near_dup(ctx, d) for d in near_originals]
        + [make_hard_negative(ctx, d) for d in negative_originals]
        + [make_contaminated(ctx, contaminable[i % len(contaminable)],
                             CONTAMINATION_KINDS[(i + i // len(contaminable)) % 3])
           for i in range(counts["contaminated"])]
    )
