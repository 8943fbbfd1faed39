"""Seeded demo corpus: a small, realistic crawl with a ground truth for every stage.

``write_demo_corpus(out_dir, scale=1.0, seed=0)`` writes::

    out_dir/warc/demo-00000.warc.gz ...   gzipped WARC files (8 at scale 1, at least 2)
    out_dir/pdf/paper-000.pdf ...         text-layer papers, image-only scans, one broken file
    out_dir/benchmarks/demo_bench.jsonl   the demo benchmark: {"id", "question", "answer"}
    out_dir/ground_truth.parquet          one row per document (schema below)
    out_dir/README.txt                    this text and the summary counts

The same (scale, seed) gives byte-identical files. Text comes from packages installed
in the virtualenv (see ``pipelines.demo_text``): Wikipedia lead paragraphs
(en/fr/es), the Python standard library (code and docstrings), MMLU and HumanEval.

Web documents (HTML ``response`` records, status 200), per kind, at scale 1:

    wiki 720         several related English Wikipedia extracts per page (200+ words)
    code 300         one stdlib function or class in <pre><code> on a code-hosting site
    docs 300         reference page: signatures and docstrings of one stdlib module
    forum 375        Q&A thread (question, answers with user, votes, time); answers are
                     Wikipedia extracts or stdlib docstrings
    spam 200         keyword stuffing, link farms, repeated lines, all-caps shouting
    boilerplate 125  cookie banner, navigation and legal links around one short sentence
    wiki_fr 100      French / Spanish Wikipedia pages (100+ words); some French and Spanish
    wiki_es 100      pages are windows-1252 or iso-8859-1, declared in the HTTP header,
                     in a <meta charset>, or both
    exact_dup 100    the main text of a wiki/code/docs/forum page again at another URL
    near_dup 100     the same with a few words inserted or replaced, a sentence
                     appended and another site template (``shingle_jaccard``: word
                     5-gram Jaccard of the two texts > 0.85)
    hard_negative 50 a wiki page sharing its lead paragraph and topic with another
                     page, otherwise different (not a duplicate)
    contaminated 50  forum thread or study page quoting a demo-benchmark item verbatim,
                     with every number changed, or its first half only
    web_pdf 6        application/pdf responses carrying a one-page report

The WARC files also hold records that are not documents and must be skipped: one
``warcinfo`` per file, a ``request`` before every response, 404 and 301 responses,
image/png and text/plain (robots.txt) responses. Files under pdf/ at scale 1: 14
two-column papers with a text layer (title/author metadata, running header, "Page i of
n" footer, words hyphenated at line ends), 5 image-only scans (no text layer: OCR) and
1 truncated file that does not open. Every count is ``max(1, round(count * scale))``;
scale is at most 1.5 (beyond, the text sources would repeat and create unlabelled
duplicates). The benchmark has 40 numeric MMLU questions and 10 HumanEval prompts at
scale 1; 60% of its items are planted in contaminated pages, the rest are clean.

Ground-truth columns (ground_truth.parquet):

    doc_key             URL for web documents, file name (paper-000.pdf) for PDF files
    source              web (HTML in a WARC) | web_pdf (PDF in a WARC) | pdf (file)
    kind                the generator kind listed above, or paper | scan | broken_pdf
    domain              wiki | code | docs | forum | web (spam, boilerplate) | papers
    lang                en | fr | es
    title               the page's <h1> (not part of text) / the PDF's title (first block of text)
    warc_file           e.g. warc/demo-00003.warc.gz (null for PDF files)
    warc_record_id      <urn:uuid:...> of the response record (null for PDF files)
    charset             utf-8 | windows-1252 | iso-8859-1 (null for PDFs)
    is_spam             spam pages
    is_boilerplate      boilerplate pages
    dup_of              doc_key of the original for exact/near duplicates, else null
    dup_kind            exact | near | null
    hard_negative_of    doc_key of a related page that is not a duplicate, else null
    contaminated_with   id of the demo-benchmark item, else null
    contamination_kind  verbatim | numbers_changed | half | null
    license             cc-by | cc-by-sa | cc0 | public-domain | noai |
                        all-rights-reserved | none (what the page declares: a
                        rel="license" link to creativecommons.org, a robots "noai"
                        meta tag, an "All rights reserved" footer, or nothing)
    needs_ocr           image-only PDF pages
    is_broken           the file cannot be opened
    n_words             whitespace-separated words of text
    text                the main content as put into the document: blocks joined by a
                        blank line; list items and code lines by newlines; web pages
                        without <h1>, navigation, sidebars, footers, post metadata; papers
                        without running header, footer and author line, and without the
                        line-end hyphens; "" for the broken PDF
"""

from __future__ import annotations

import html
import json
import math
import random
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from urllib.parse import quote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pymupdf
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.demo_text import (
    BenchItem,
    CodeUnit,
    DocEntry,
    WikiExtract,
    load_humaneval_numeric,
    load_mmlu_numeric,
    load_stdlib,
    load_wiki,
)

# ---------------------------------------------------------------------------- counts

WEB_COUNTS = {  # documents per kind at scale 1.0
    "wiki": 720, "code": 300, "docs": 300, "forum": 375, "spam": 200, "boilerplate": 125,
    "wiki_fr": 100, "wiki_es": 100, "exact_dup": 100, "near_dup": 100, "hard_negative": 50,
    "contaminated": 50, "web_pdf": 6,
}
PDF_COUNTS = {"paper": 14, "scan": 5, "broken_pdf": 1}
SKIPPED_COUNTS = {"not_found": 40, "redirect": 40, "image": 30, "robots": 10}
BENCH_COUNTS = {"mmlu": 40, "humaneval": 10}
CONTAMINATED_ITEM_FRACTION = 0.6
WARC_FILES = 8
MAX_SCALE = 1.5

NEAR_DUP_MIN_JACCARD = 0.86
NEAR_DUP_MIN_WORDS = 200
PDF_POOL_SIZE = 900  # latin-1 English extracts reserved for PDFs (base-14 fonts)
CONTAMINATION_KINDS = ("verbatim", "numbers_changed", "half")
CRAWL_START = datetime(2024, 3, 4, 6, 0, 0, tzinfo=timezone.utc)
FORUM_EPOCH = datetime(2021, 1, 1, tzinfo=timezone.utc)
DOMAIN_OF_KIND = {
    "wiki": "wiki", "wiki_fr": "wiki", "wiki_es": "wiki", "hard_negative": "wiki",
    "code": "code", "docs": "docs", "forum": "forum", "spam": "web", "boilerplate": "web",
    "web_pdf": "papers", "paper": "papers", "scan": "papers", "broken_pdf": "papers",
}
# Text blocks become the ground-truth text; "meta" and "post" blocks are page chrome.
TEXT_BLOCKS = frozenset({"h2", "p", "pre", "ul", "links", "quote"})

# ---------------------------------------------------------------------------- vocabulary

LICENSE_WEIGHTS = {
    "none": 50, "cc-by": 10, "cc-by-sa": 14, "cc0": 5, "public-domain": 3, "noai": 8,
    "all-rights-reserved": 10,
}
LICENSE_LINKS = {
    "cc-by": ("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0"),
    "cc-by-sa": ("https://creativecommons.org/licenses/by-sa/4.0/", "CC BY-SA 4.0"),
    "cc0": ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0"),
    "public-domain": ("https://creativecommons.org/publicdomain/mark/1.0/", "Public Domain Mark 1.0"),
}
CHARSET_WEIGHTS = {"utf-8": 2, "windows-1252": 1, "iso-8859-1": 1}
CHARSET_DECLARATIONS = ("header", "meta", "both")

LABELS = {
    "en": {"search": "Search", "related": "Related pages", "home": "Home",
           "cookies": "We use cookies to improve your experience. "
                      "By continuing to browse, you agree to our use of cookies.",
           "accept": "Accept all", "reject": "Reject", "share": "Share: Facebook · Twitter · Email",
           "newsletter": "Newsletter", "newsletter_text": "The best stories in your inbox, every week.",
           "from": "From {site}, the free encyclopedia"},
    "fr": {"search": "Rechercher", "related": "Pages liées", "home": "Accueil",
           "cookies": "Nous utilisons des cookies pour améliorer votre expérience.",
           "accept": "Tout accepter", "reject": "Refuser", "share": "Partager : Facebook · Twitter · E-mail",
           "newsletter": "Lettre d'information", "newsletter_text": "Les meilleurs articles chaque semaine.",
           "from": "Un article de {site}, l'encyclopédie libre"},
    "es": {"search": "Buscar", "related": "Páginas relacionadas", "home": "Inicio",
           "cookies": "Usamos cookies para mejorar su experiencia.",
           "accept": "Aceptar todo", "reject": "Rechazar", "share": "Compartir: Facebook · Twitter · Correo",
           "newsletter": "Boletín", "newsletter_text": "Las mejores historias cada semana.",
           "from": "De {site}, la enciclopedia libre"},
}

USER_ADJECTIVES = ("quiet", "rusty", "bright", "lazy", "clever", "sleepy", "brave", "curious",
                   "silent", "happy", "tiny", "cosmic", "mellow", "swift")
USER_NOUNS = ("otter", "falcon", "badger", "lynx", "heron", "panda", "walrus", "gecko", "koala",
              "moose", "raven", "yak", "beetle", "marmot")
GIVEN_NAMES = ("Ada", "Bruno", "Chen", "Dalia", "Emeka", "Freya", "Goran", "Hana", "Ilya", "Jonas",
               "Keiko", "Luis", "Maya", "Nils", "Omar", "Priya", "Rosa", "Sven", "Tariq", "Ulla")
FAMILY_NAMES = ("Lindqvist", "Okafor", "Moreau", "Tanaka", "Novak", "Haddad", "Fischer", "Rossi",
                "Kowalski", "Silva", "Nakamura", "Petrov", "Jensen", "Costa", "Brennan", "Varga")

CODE_QUESTION_TITLES = (
    "How does {name}() in {module} work?",
    "What is the purpose of {module}.{name}?",
    "Confused by {module}.{name}: what does it actually do?",
    "When should I use {name} from {module}?",
)
CODE_QUESTION_BODIES = (
    "I keep running into {sig} while reading code that uses {module}, and I am not sure I understand "
    "what it does. Could someone explain it?",
    "The signature is {sig}, but the behaviour surprised me in a small script. What is it supposed to do, "
    "and are there pitfalls?",
    "I am reviewing a pull request that calls {sig} from {module}. Before approving it I would like to "
    "understand the contract of this function.",
)
GENERAL_QUESTION_TITLES = (
    "What is {title}?",
    "Can someone explain {title} in simple terms?",
    "Question about {title}",
    "Why is {title} important?",
)
GENERAL_QUESTION_BODIES = (
    "I came across {title} ({description}) and would like to understand it better. Where does it come "
    "from and why does it matter?",
    "My textbook only mentions {title} in passing. Is there a short explanation somewhere?",
    "While reading about {description}, I saw {title} mentioned several times. What is it exactly?",
)
ANSWER_INTROS = (
    "The documentation describes it like this:",
    "Straight from the docstring:",
    "Short version, quoting the reference:",
)
RELATED_INTROS = (
    "It may also help to read about {title}.",
    "A related topic worth knowing is {title}.",
    "For context, have a look at {title} as well.",
)
FOLLOW_UPS = (
    "Thanks, this is exactly what I needed.",
    "That cleared it up for me, much appreciated.",
    "Great answer. The second part was the piece I was missing.",
    "Marking this as accepted, thank you all.",
)
HOMEWORK_INTROS = (
    "Stuck on this homework problem, can anyone walk me through it?",
    "Found this in an old exam and I cannot get the same answer as the key:",
    "Our study group disagrees about this one. How would you solve it?",
)
CODE_EXERCISE_INTROS = (
    "I am practising for an interview and got stuck on this exercise:",
    "My solution passes the examples but fails the hidden tests. The task is:",
)
PAPER_TITLES = ("{t}: A Short Survey", "Notes on {t} and Related Topics", "{t} in Context: An Overview",
                "A Review of {t}")
NEAR_DUP_INSERTS = ("also", "notably", "indeed", "reportedly", "originally", "still", "often")
NEAR_DUP_APPENDIX = (
    "This article was republished with permission.",
    "Content may have been edited for length and clarity.",
    "Last reviewed in March 2024 by our editors.",
    "Source: community contributions, lightly edited.",
)

SPAM_PRODUCTS = ("replica watches", "weight loss pills", "casino bonus", "cheap flights", "payday loans",
                 "crypto signals", "designer handbags", "instagram followers", "essay writing",
                 "seo backlinks", "phone unlock codes", "car insurance quotes", "forex robot",
                 "discount sneakers")
SPAM_WORDS = ("best", "cheap", "top", "discount", "free", "online", "buy", "sale", "deal", "official",
              "original", "fast", "2024", "review", "usa", "shop")
SPAM_CITIES = ("London", "Paris", "New York", "Berlin", "Madrid", "Toronto", "Sydney", "Dubai",
               "Chicago", "Miami", "Boston", "Denver")
SPAM_HOOKS = ("CLICK HERE NOW", "LIMITED TIME OFFER", "100% FREE", "BEST PRICE GUARANTEED", "ACT FAST",
              "NO CREDIT CHECK", "DOCTORS HATE THIS", "ORDER TODAY", "WIN BIG")
SPAM_TLDS = ("biz", "info", "xyz", "top", "click")
BOILERPLATE_MESSAGES = (
    "This page has moved. Please update your bookmarks.",
    "Your session has expired. Please log in again to continue.",
    "No results were found for your search.",
    "Thank you for subscribing to our newsletter!",
    "This content is only available to registered members.",
    "The page you requested is temporarily unavailable.",
    "Your cart is empty.",
    "Please enable JavaScript to view this site.",
)
LEGAL_LINKS = ("Terms of Use", "Privacy Policy", "Cookie Policy", "Imprint", "Accessibility", "Sitemap",
               "Careers", "Press", "Help Center", "Store Locator", "Gift Cards", "Affiliates")

# ---------------------------------------------------------------------------- sites


@dataclass(frozen=True)
class Site:
    host: str
    name: str
    layout: str  # modern | classic | portal
    lang: str
    nav: tuple[str, ...]
    footer: tuple[str, ...]


EN_NAV = ("Home", "Topics", "Recent changes", "Random page", "About", "Contact")
EN_FOOTER = ("Privacy policy", "About us", "Disclaimers", "Contact")
SITES = {
    "wiki": (Site("en.openwiki-demo.org", "OpenWiki", "modern", "en",
                  ("Main page", "Contents", "Current events", "Random article", "About OpenWiki", "Donate"),
                  ("This page was last edited on 2 March 2024.", "Privacy policy", "About OpenWiki", "Disclaimers")),
             Site("kb.encyclo-demo.net", "Encyclo Knowledge Base", "portal", "en", EN_NAV, EN_FOOTER)),
    "mirror": (Site("wikimirror-demo.info", "WikiMirror", "classic", "en", EN_NAV, EN_FOOTER),
               Site("allfacts-demo.com", "AllFacts", "portal", "en", EN_NAV, EN_FOOTER),
               Site("readerdigest-demo.net", "Reader Digest Archive", "modern", "en", EN_NAV, EN_FOOTER)),
    "code": (Site("codehub-demo.dev", "CodeHub", "modern", "en",
                  ("Explore", "Topics", "Trending", "Pricing", "Sign in"), ("Terms", "Privacy", "Status", "Docs")),
             Site("src.gitforge-demo.org", "GitForge", "classic", "en",
                  ("Projects", "Groups", "Snippets", "Help"), ("About GitForge", "Blog", "Contact"))),
    "docs": (Site("docs.pyref-demo.org", "PyRef Documentation", "modern", "en",
                  ("Tutorial", "Library reference", "Language reference", "Glossary", "Index"),
                  ("Found a bug?", "Report an issue", "Show source")),
             Site("devdocs-demo.net", "DevDocs Mirror", "classic", "en",
                  ("Python", "JavaScript", "Rust", "Go", "Preferences"), ("About", "Offline data", "Contact"))),
    "forum": (Site("askdev-demo.com", "AskDev", "portal", "en",
                   ("Questions", "Tags", "Users", "Unanswered", "Ask a question"),
                   ("About", "Help", "Legal", "Contact")),
              Site("forum.knowhow-demo.org", "KnowHow Forum", "classic", "en",
                   ("Forums", "New posts", "Members", "Search", "Rules"), ("Forum rules", "Privacy", "Contact staff"))),
    "study": (Site("studyhelp-demo.net", "StudyHelp", "portal", "en",
                   ("Subjects", "Practice", "Flashcards", "Tutors", "Log in"), EN_FOOTER),),
    "wiki_fr": (Site("fr.openwiki-demo.org", "OpenWiki", "modern", "fr",
                     ("Accueil", "Portails thématiques", "Article au hasard", "Contact", "Faire un don"),
                     ("Dernière modification de cette page le 2 mars 2024.", "Politique de confidentialité",
                      "À propos d'OpenWiki", "Avertissements")),),
    "wiki_es": (Site("es.openwiki-demo.org", "OpenWiki", "modern", "es",
                     ("Portada", "Portal de la comunidad", "Artículo aleatorio", "Contacto", "Donaciones"),
                     ("Esta página se editó por última vez el 2 mar 2024.", "Política de privacidad",
                      "Acerca de OpenWiki", "Limitación de responsabilidad")),),
    "boilerplate": (Site("northwind-demo.com", "Northwind Traders", "portal", "en", EN_NAV, EN_FOOTER),
                    Site("acme-demo.io", "Acme Cloud", "modern", "en",
                         ("Products", "Solutions", "Pricing", "Docs", "Log in"), EN_FOOTER),
                    Site("cityguide-demo.net", "City Guide", "classic", "en", EN_NAV, EN_FOOTER)),
    "reports": (Site("reports.openlab-demo.org", "OpenLab Reports", "modern", "en", EN_NAV, EN_FOOTER),),
}

# ---------------------------------------------------------------------------- documents


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


@dataclass
class PdfDoc:
    doc_key: str  # file name, or URL for a PDF served in a WARC
    kind: str  # paper | scan | broken_pdf | web_pdf
    title: str
    text: str
    data: bytes
    needs_ocr: bool = False
    is_broken: bool = False


@dataclass(frozen=True)
class Capture:
    """One HTTP exchange to write as a request + response record pair."""

    url: str
    status: str
    content_type: str
    body: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()
    doc_key: str | None = None


@dataclass
class WarcLocation:
    warc_file: str
    record_id: str


# ---------------------------------------------------------------------------- text helpers


def word_count(text: str) -> int:
    return len(text.split())


def word_shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def shingle_jaccard(a: str, b: str, n: int = 5) -> float:
    """Jaccard similarity of the word n-gram sets of a and b (lowercased, punctuation dropped)."""
    sa, sb = word_shingles(a, n), word_shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def change_numbers(text: str, rng: random.Random) -> str:
    """Replace every number with a different one of the same length."""

    def different(match: re.Match) -> str:
        digits = match.group()
        while True:
            first = str(rng.randint(1 if len(digits) > 1 else 0, 9))
            candidate = first + "".join(str(rng.randint(0, 9)) for _ in digits[1:])
            if candidate != digits:
                return candidate

    return re.sub(r"\d+", different, text)


def first_half(text: str) -> str:
    """The text up to the last whitespace before its middle (formatting kept)."""
    cut = max(text.rfind(" ", 0, len(text) // 2), text.rfind("\n", 0, len(text) // 2))
    return text[:cut]


def contamination_copy(item: BenchItem, kind: str, rng: random.Random) -> str:
    if kind == "verbatim":
        return item.question
    if kind == "numbers_changed":
        return change_numbers(item.question, rng)
    return first_half(item.question)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "page"


def child_rng(seed: int, name: str) -> random.Random:
    return random.Random(f"curate-demo/{seed}/{name}")


def scaled(count: int, scale: float) -> int:
    return max(1, round(count * scale))


# ---------------------------------------------------------------------------- pools


class ExtractPool:
    """Wikipedia extracts drawn without replacement, grouped by topic."""

    def __init__(self, extracts: list[WikiExtract], rng: random.Random):
        self.rng = rng
        self.by_topic: dict[str, list[WikiExtract]] = defaultdict(list)
        for extract in extracts:
            self.by_topic[extract.topic].append(extract)
        for topic in sorted(self.by_topic):
            rng.shuffle(self.by_topic[topic])

    def random_topic(self) -> str:
        return self.rng.choice(sorted(t for t, left in self.by_topic.items() if left))

    def take(self, max_count: int, min_words: float = math.inf, topic: str | None = None) -> list[WikiExtract]:
        """Extracts of one topic (another one when it runs dry) until min_words or max_count."""
        topic = topic if topic and self.by_topic[topic] else self.random_topic()
        taken: list[WikiExtract] = []
        while sum(word_count(e.text) for e in taken) < min_words and len(taken) < max_count:
            if not self.by_topic[topic]:
                topic = self.random_topic()
            taken.append(self.by_topic[topic].pop())
        return taken


@dataclass
class Sources:
    """Everything the generators draw from, shuffled once per seed."""

    web_en: ExtractPool
    pdf_en: ExtractPool
    fr: ExtractPool
    es: ExtractPool
    code_units: list[CodeUnit]
    doc_pages: list[list[DocEntry]]
    forum_entries: list[DocEntry]
    titles: dict[str, list[str]]
    bench: list[BenchItem]


def split_doc_entries(
    entries: tuple[DocEntry, ...], rng: random.Random
) -> tuple[list[list[DocEntry]], list[DocEntry]]:
    """Reference pages (two entries of one module each) and, from other modules, forum topics."""
    by_module: dict[str, list[DocEntry]] = defaultdict(list)
    for entry in entries:
        by_module[entry.module].append(entry)
    modules = sorted(by_module)
    rng.shuffle(modules)
    pages = [by_module[m][i : i + 2] for m in modules[0::2] for i in range(0, len(by_module[m]), 2)]
    forum = [e for m in modules[1::2] for e in by_module[m]]
    rng.shuffle(pages)
    rng.shuffle(forum)
    return pages, forum


def choose_bench(scale: float, rng: random.Random) -> list[BenchItem]:
    items = rng.sample(load_mmlu_numeric(), scaled(BENCH_COUNTS["mmlu"], scale))
    items += rng.sample(load_humaneval_numeric(), scaled(BENCH_COUNTS["humaneval"], scale))
    rng.shuffle(items)
    return items


def load_sources(seed: int, scale: float) -> Sources:
    rng = child_rng(seed, "sources")
    english = list(load_wiki("en"))
    rng.shuffle(english)
    latin1 = [e for e in english if all(ord(c) < 256 for c in e.title + e.text)][:PDF_POOL_SIZE]
    reserved = set(latin1)
    units, entries = load_stdlib()
    code_units = list(units)
    rng.shuffle(code_units)
    doc_pages, forum_entries = split_doc_entries(entries, rng)
    return Sources(
        web_en=ExtractPool([e for e in english if e not in reserved], rng),
        pdf_en=ExtractPool(latin1, rng),
        fr=ExtractPool(list(load_wiki("fr")), rng),
        es=ExtractPool(list(load_wiki("es")), rng),
        code_units=code_units,
        doc_pages=doc_pages,
        forum_entries=forum_entries,
        titles={lang: [e.title for e in load_wiki(lang)] for lang in ("en", "fr", "es")},
        bench=choose_bench(scale, rng),
    )


# ---------------------------------------------------------------------------- page builders


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


# ---------------------------------------------------------------------------- HTML


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def attr(text: str) -> str:
    return html.escape(text, quote=True)


def post_header(block: Block) -> str:
    a = dict(block.attrs)
    accepted = ' <span class="accepted">✓ Accepted</span>' if a["role"] == "accepted" else ""
    return (f'<div class="post {a["role"]}"><div class="post-meta"><a class="user" href="/users/{attr(a["user"])}">'
            f'{esc(a["user"])}</a> <span class="votes">{a["votes"]} votes</span> '
            f'<time datetime="{a["time"]}">{a["time"][:10]}</time>{accepted}</div><div class="post-body">')


def render_block(block: Block) -> str:
    if block.kind == "h2":
        return f"<h2>{esc(block.text)}</h2>"
    if block.kind == "p":
        return f"<p>{esc(block.text)}</p>"
    if block.kind == "pre":
        return f'<pre><code class="language-python">{esc(block.text)}</code></pre>'
    if block.kind == "quote":
        return f"<blockquote>{esc(block.text)}</blockquote>"
    if block.kind == "ul":
        return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in block.text.split("\n")) + "</ul>"
    if block.kind == "links":
        return "<ul class=\"links\">" + "".join(
            f'<li><a href="/{slug(line)}.html">{esc(line)}</a></li>' for line in block.text.split("\n")) + "</ul>"
    return f'<div class="meta">{esc(block.text)}</div>'


def render_body(blocks: list[Block]) -> str:
    parts, in_post = [], False
    for block in blocks:
        if block.kind == "post":
            parts.append(("</div></div>" if in_post else "") + post_header(block))
            in_post = True
        else:
            parts.append(render_block(block))
    if in_post:
        parts.append("</div></div>")
    return "\n".join(parts)


def license_footer(doc: WebDoc) -> str:
    if doc.license in LICENSE_LINKS:
        href, name = LICENSE_LINKS[doc.license]
        return f'<p class="license">Text is available under <a rel="license" href="{href}">{name}</a>.</p>'
    if doc.license == "all-rights-reserved":
        return f'<p class="copyright">© 2024 {esc(doc.site.name)}. All rights reserved.</p>'
    return ""


def head(doc: WebDoc, title: str) -> str:
    meta_charset = f'<meta charset="{doc.charset}">\n' if doc.charset_declared_in in ("meta", "both") else ""
    robots = '<meta name="robots" content="noai, noimageai">\n' if doc.license == "noai" else ""
    return (f'<head>\n{meta_charset}<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n{robots}<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>")


def link_list(titles: tuple[str, ...], prefix: str = "/wiki/") -> str:
    return "".join(f'<li><a href="{prefix}{quote(t.replace(" ", "_"))}">{esc(t)}</a></li>' for t in titles)


def heavy_chrome(doc: WebDoc) -> str:
    """Extra page furniture of boilerplate pages: banners, link walls, legal lines."""
    labels = LABELS[doc.site.lang]
    return (f'<div class="promo">Free shipping on orders over $50 | Download our app | '
            f'{" | ".join(doc.site.nav)}</div>\n<div class="link-wall"><ul>{link_list(doc.sidebar, "/")}</ul></div>\n'
            f'<div class="legal"><p>{" · ".join(LEGAL_LINKS)}</p><p>{labels["home"]} | About | Contact</p>'
            f"<p>Follow us: Facebook Twitter Instagram LinkedIn YouTube</p></div>")


def render_modern(doc: WebDoc, body: str) -> str:
    site, labels = doc.site, LABELS[doc.site.lang]
    nav = "".join(f'<li><a href="/{slug(n)}">{esc(n)}</a></li>' for n in site.nav)
    footer = "".join(f"<li>{esc(f)}</li>" for f in site.footer)
    return f"""<!DOCTYPE html>
<html lang="{site.lang}">
{head(doc, f"{doc.title} - {site.name}")}
<body>
<header class="site-header"><a class="logo" href="/">{esc(site.name)}</a>
<form class="search" action="/search"><input type="search" name="q" placeholder="{labels['search']}">
<button>{labels['search']}</button></form></header>
<nav class="main-nav"><ul>{nav}</ul></nav>
{heavy_chrome(doc) if doc.heavy_chrome else ""}
<div class="page">
<main id="content"><article>
<h1>{esc(doc.title)}</h1>
{body}
</article></main>
<aside class="sidebar"><h2>{labels['related']}</h2><ul>{link_list(doc.sidebar)}</ul></aside>
</div>
<footer class="site-footer"><ul>{footer}</ul>{license_footer(doc)}</footer>
</body>
</html>
"""


def render_classic(doc: WebDoc, body: str) -> str:
    site, labels = doc.site, LABELS[doc.site.lang]
    menu = " | ".join(f'<a href="/{slug(n)}">{esc(n)}</a>' for n in site.nav)
    side = "<br>\n".join(f'<a href="/wiki/{quote(t)}">{esc(t)}</a>' for t in doc.sidebar)
    return f"""<html>
{head(doc, f"{site.name} :: {doc.title}")}
<body>
<div id="wrapper">
<div id="top"><div class="brand">{esc(site.name)}</div><div class="menu">{menu}</div></div>
{heavy_chrome(doc) if doc.heavy_chrome else ""}
<div id="left"><div class="box"><b>{labels['related']}</b><br>
{side}</div></div>
<div id="center"><div class="post-title"><h1>{esc(doc.title)}</h1></div>
<div class="entry">
{body}
</div></div>
<div id="bottom">{" · ".join(esc(f) for f in site.footer)}{license_footer(doc)}</div>
</div>
</body>
</html>
"""


def render_portal(doc: WebDoc, body: str) -> str:
    site, labels = doc.site, LABELS[doc.site.lang]
    section = site.nav[1]
    return f"""<!DOCTYPE html>
<html lang="{site.lang}">
{head(doc, f"{doc.title} | {site.name}")}
<body>
<div class="cookie-banner">{labels['cookies']}
<button>{labels['accept']}</button> <button>{labels['reject']}</button></div>
<header><div class="topbar"><a href="/">{esc(site.name)}</a>
<a href="/login">Log in</a> <a href="/signup">Sign up</a></div>
<nav class="breadcrumbs"><a href="/">{labels['home']}</a> ›
<a href="/{slug(section)}">{esc(section)}</a> › {esc(doc.title)}</nav></header>
{heavy_chrome(doc) if doc.heavy_chrome else ""}
<div class="container"><div class="row">
<div class="col-main"><h1 class="page-title">{esc(doc.title)}</h1>
<div class="content">
{body}
</div>
<div class="share">{labels['share']}</div></div>
<div class="col-side"><div class="widget"><h4>{labels['related']}</h4><ul>{link_list(doc.sidebar)}</ul></div>
<div class="widget newsletter"><h4>{labels['newsletter']}</h4><p>{labels['newsletter_text']}</p></div></div>
</div></div>
<footer><p>{" | ".join(esc(f) for f in site.footer)}</p>{license_footer(doc)}</footer>
</body>
</html>
"""


LAYOUTS = {"modern": render_modern, "classic": render_classic, "portal": render_portal}


def render_html(doc: WebDoc) -> str:
    return LAYOUTS[doc.site.layout](doc, render_body(doc.blocks))


def html_capture(doc: WebDoc) -> Capture:
    body = render_html(doc).encode(doc.charset, errors="xmlcharrefreplace")
    declared = doc.charset_declared_in in ("header", "both")
    content_type = f"text/html; charset={doc.charset}" if declared else "text/html"
    return Capture(doc.url, "200 OK", content_type, body, doc_key=doc.url)


# ---------------------------------------------------------------------------- PDF

PAGE_W, PAGE_H = 595.0, 842.0
MARGIN_X, TOP, BOTTOM = 54.0, 72.0, 842.0 - 64.0
COLUMN_GAP = 18.0
COLUMN_W = (PAGE_W - 2 * MARGIN_X - COLUMN_GAP) / 2
SCAN_DPI = 200
SCAN_TEXT_BOX = pymupdf.Rect(72, 72, PAGE_W - 72, PAGE_H - 72)
PDF_DATE = datetime(2024, 1, 15, 9, 30, tzinfo=timezone.utc)
PDF_PRODUCER = "curate demo corpus"


@dataclass(frozen=True)
class TextStyle:
    font: str
    size: float
    leading: float


TITLE_STYLE = TextStyle("hebo", 16.0, 20.0)
HEADING_STYLE = TextStyle("hebo", 10.5, 15.0)
BODY_STYLE = TextStyle("helv", 9.5, 12.0)
SMALL_STYLE = TextStyle("helv", 8.0, 10.0)


@dataclass
class Paper:
    title: str
    authors: list[str]
    journal: str
    abstract: str
    sections: list[tuple[str, list[str]]]  # (heading, paragraphs)

    @property
    def text(self) -> str:
        parts = [self.title, self.abstract]
        for heading, paragraphs in self.sections:
            parts += [heading, *paragraphs]
        return "\n\n".join(parts)


_WIDTHS: dict[str, list[float]] = {}


def text_width(text: str, style: TextStyle) -> float:
    """Width in points of latin-1 text in a base-14 font (no kerning, as insert_text draws it)."""
    if style.font not in _WIDTHS:
        font = pymupdf.Font(style.font)
        _WIDTHS[style.font] = [font.text_length(chr(c), fontsize=1) for c in range(256)]
    widths = _WIDTHS[style.font]
    return sum(widths[ord(c)] for c in text) * style.size


def is_syllable_break(word: str, k: int) -> bool:
    """A rough hyphenation point: before a consonant that is followed by a vowel (con-so-nant)."""
    vowels = "aeiouyAEIOUY"
    return word[k] not in vowels and word[k + 1] in vowels


def split_for_hyphen(line: str, word: str, width: float, style: TextStyle) -> int:
    """Largest break k such that 'line word[:k]-' fits, 3+ letters on each side; 0 if none."""
    if not (word.isalpha() and len(word) >= 7):
        return 0
    for k in range(len(word) - 3, 2, -1):
        if is_syllable_break(word, k) and text_width(f"{line} {word[:k]}-", style) <= width:
            return k
    return 0


def wrap(text: str, width: float, style: TextStyle, hyphenate: bool) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".lstrip()
        if text_width(candidate, style) <= width or not line:
            line = candidate
            continue
        k = split_for_hyphen(line, word, width, style) if hyphenate else 0
        if k:
            lines.append(f"{line} {word[:k]}-")
            line = word[k:]
        else:
            lines.append(line)
            line = word
    return lines + [line] if line else lines


class ColumnCursor:
    """Places lines top to bottom in two columns, page after page, below a first-page title block."""

    def __init__(self, doc: pymupdf.Document, paper: Paper):
        self.doc, self.column = doc, 0
        self.shape = doc.new_page(width=PAGE_W, height=PAGE_H).new_shape()
        self.column_top = self.y = title_block(self.shape, paper)

    def place(self, line: str, style: TextStyle) -> None:
        if self.y + style.leading > BOTTOM:
            self.column += 1
            if self.column == 2:
                self.finish()
                self.shape = self.doc.new_page(width=PAGE_W, height=PAGE_H).new_shape()
                self.column, self.column_top = 0, TOP
            self.y = self.column_top
        x = MARGIN_X + self.column * (COLUMN_W + COLUMN_GAP)
        self.shape.insert_text((x, self.y), line, fontsize=style.size, fontname=style.font)
        self.y += style.leading

    def finish(self) -> None:
        """Writes the current page's text (one content stream per page is much faster)."""
        self.shape.commit()

    def skip(self, points: float) -> None:
        self.y += points


def title_block(shape: pymupdf.Shape, paper: Paper) -> float:
    """Title, authors and abstract across the full width of page 1; returns the y below."""
    full = PAGE_W - 2 * MARGIN_X
    y = TOP
    for style, text, hyphenate in ((TITLE_STYLE, paper.title, False), (BODY_STYLE, ", ".join(paper.authors), False)):
        for line in wrap(text, full, style, hyphenate):
            shape.insert_text((MARGIN_X, y), line, fontsize=style.size, fontname=style.font)
            y += style.leading
        y += 6
    shape.insert_text((MARGIN_X, y), "Abstract", fontsize=HEADING_STYLE.size, fontname=HEADING_STYLE.font)
    y += HEADING_STYLE.leading
    for line in wrap(paper.abstract, full, BODY_STYLE, True):
        shape.insert_text((MARGIN_X, y), line, fontsize=BODY_STYLE.size, fontname=BODY_STYLE.font)
        y += BODY_STYLE.leading
    return y + 14


def running_header_footer(doc: pymupdf.Document, paper: Paper) -> None:
    short = paper.title if len(paper.title) <= 48 else paper.title[:45] + "..."
    left = f"{paper.journal} · {short}"
    right = "Vol. 7 (2024)"
    for number, page in enumerate(doc, start=1):
        page.insert_text((MARGIN_X, 40), left, fontsize=SMALL_STYLE.size, fontname=SMALL_STYLE.font)
        page.insert_text((PAGE_W - MARGIN_X - text_width(right, SMALL_STYLE), 40), right,
                         fontsize=SMALL_STYLE.size, fontname=SMALL_STYLE.font)
        page.draw_line((MARGIN_X, 46), (PAGE_W - MARGIN_X, 46), width=0.5)
        footer = f"Page {number} of {doc.page_count}"
        page.insert_text(((PAGE_W - text_width(footer, SMALL_STYLE)) / 2, PAGE_H - 36), footer,
                         fontsize=SMALL_STYLE.size, fontname=SMALL_STYLE.font)


def pdf_bytes(doc: pymupdf.Document, title: str, author: str, subject: str) -> bytes:
    stamp = PDF_DATE.strftime("D:%Y%m%d%H%M%SZ")
    doc.set_metadata({"title": title, "author": author, "subject": subject, "keywords": subject,
                      "creator": PDF_PRODUCER, "producer": PDF_PRODUCER,
                      "creationDate": stamp, "modDate": stamp})
    return doc.tobytes(garbage=3, deflate=True, no_new_id=True)


def render_paper(paper: Paper) -> bytes:
    doc = pymupdf.open()
    cursor = ColumnCursor(doc, paper)
    for heading, paragraphs in paper.sections:
        cursor.skip(4)
        for line in wrap(heading, COLUMN_W, HEADING_STYLE, False):
            cursor.place(line, HEADING_STYLE)
        for paragraph in paragraphs:
            for line in wrap(paragraph, COLUMN_W, BODY_STYLE, True):
                cursor.place(line, BODY_STYLE)
            cursor.skip(4)
    cursor.finish()
    running_header_footer(doc, paper)
    return pdf_bytes(doc, paper.title, ", ".join(paper.authors), paper.journal)


def make_paper(rng: random.Random, pool: ExtractPool, min_words: int) -> Paper:
    extracts = pool.take(max_count=60, min_words=min_words)
    lead, body = extracts[0], extracts[1:]
    sections, number = [], 1
    while body:
        size = rng.randint(2, 4)
        group, body = body[:size], body[size:]
        heading = "Introduction" if number == 1 else group[0].title
        sections.append((f"{number} {heading}", [e.text for e in group]))
        number += 1
    authors = [f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}" for _ in range(rng.randint(1, 4))]
    field_name = "General Studies" if lead.topic == "Uncategorized" else lead.topic
    return Paper(rng.choice(PAPER_TITLES).format(t=lead.title), authors, f"Demo Journal of {field_name}",
                 lead.text, sections)


def fits_on_page(text: str) -> bool:
    page = pymupdf.open().new_page(width=PAGE_W, height=PAGE_H)
    return page.insert_textbox(SCAN_TEXT_BOX, text, fontsize=11, fontname="tiro") >= 0


def render_scan(pages: list[str], title: str) -> bytes:
    """Each page's text typeset, rendered to a grayscale image, and only the image kept."""
    out = pymupdf.open()
    for text in pages:
        page = pymupdf.open().new_page(width=PAGE_W, height=PAGE_H)
        page.insert_textbox(SCAN_TEXT_BOX, text, fontsize=11, fontname="tiro")
        pixmap = page.get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY)
        target = out.new_page(width=PAGE_W, height=PAGE_H)
        target.insert_image(target.rect, pixmap=pixmap)
    return pdf_bytes(out, title, "", "Scanned report")


def make_scan(rng: random.Random, pool: ExtractPool, name: str) -> PdfDoc:
    """Image-only pages (one to three): a title, then extracts filling each page."""
    extracts = pool.take(max_count=12, min_words=rng.randint(250, 700))
    title = extracts[0].title
    pages, current = [], title
    for extract in extracts:
        candidate = f"{current}\n\n{extract.text}"
        if fits_on_page(candidate):
            current = candidate
        else:
            pages.append(current)
            current = extract.text
    pages.append(current)
    return PdfDoc(name, "scan", title, "\n\n".join(pages), render_scan(pages, title), needs_ocr=True)


def build_pdfs(seed: int, scale: float, pool: ExtractPool) -> tuple[list[PdfDoc], list[PdfDoc]]:
    """(files under pdf/, PDFs served in the WARC files)."""
    rng = child_rng(seed, "pdf")
    files = []
    for i in range(scaled(PDF_COUNTS["paper"], scale)):
        paper = make_paper(rng, pool, rng.randint(1200, 2600))
        files.append(PdfDoc(f"paper-{i:03d}.pdf", "paper", paper.title, paper.text, render_paper(paper)))
    files += [make_scan(rng, pool, f"scan-{i:03d}.pdf") for i in range(scaled(PDF_COUNTS["scan"], scale))]
    for i in range(scaled(PDF_COUNTS["broken_pdf"], scale)):
        paper = make_paper(rng, pool, 600)
        data = render_paper(paper)
        truncated = data[: data.index(b"/Type/Page/")]  # a download cut off before the first page
        files.append(PdfDoc(f"broken-{i:03d}.pdf", "broken_pdf", paper.title, "", truncated, is_broken=True))
    served = []
    site = SITES["reports"][0]
    for i in range(scaled(WEB_COUNTS["web_pdf"], scale)):
        paper = make_paper(rng, pool, 350)
        url = f"https://{site.host}/reports/2024/{slug(paper.title)}-{i}.pdf"
        served.append(PdfDoc(url, "web_pdf", paper.title, paper.text, render_paper(paper)))
    return files, served


# ---------------------------------------------------------------------------- WARC


def png_bytes(rng: random.Random) -> bytes:
    size = rng.randint(16, 64)
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, size, size), False)
    pixmap.set_rect(pixmap.irect, tuple(rng.randint(0, 255) for _ in range(3)))
    return pixmap.tobytes("png")


def skipped_captures(rng: random.Random, scale: float, targets: list[str]) -> list[Capture]:
    """Responses that are not documents: 404, 301, images and robots.txt."""
    captures = []
    for i in range(scaled(SKIPPED_COUNTS["not_found"], scale)):
        site = rng.choice(SITES["wiki"] + SITES["forum"])
        body = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
        captures.append(Capture(f"https://{site.host}/missing/{i}-{rng.randint(0, 10**6)}", "404 Not Found",
                                "text/html; charset=utf-8", body))
    for i in range(scaled(SKIPPED_COUNTS["redirect"], scale)):
        target = rng.choice(targets)
        captures.append(Capture(f"{target}/old-{i}", "301 Moved Permanently", "text/html; charset=utf-8",
                                b"<html><body>Moved Permanently</body></html>", (("Location", target),)))
    for i in range(scaled(SKIPPED_COUNTS["image"], scale)):
        site = rng.choice(SITES["code"] + SITES["docs"])
        captures.append(Capture(f"https://{site.host}/static/img/figure-{i}.png", "200 OK", "image/png",
                                png_bytes(rng)))
    for site in sorted({s for group in SITES.values() for s in group}, key=lambda s: s.host)[
        : scaled(SKIPPED_COUNTS["robots"], scale)
    ]:
        captures.append(Capture(f"https://{site.host}/robots.txt", "200 OK", "text/plain",
                                b"User-agent: *\nDisallow: /private/\n"))
    return captures


def record_id(seed: int, record_type: str, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'curate-demo/{seed}/{record_type}/{url}')}>"


def warc_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_capture(writer: WARCWriter, capture: Capture, seed: int, moment: datetime) -> str:
    """Writes the request and response records; returns the response's WARC-Record-ID."""
    parts = urlsplit(capture.url)
    response_id = record_id(seed, "response", capture.url)
    request_headers = StatusAndHeaders(
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        [("Host", parts.netloc), ("User-Agent", "curate-demo-crawler/1.0"), ("Accept", "text/html,*/*")],
        is_http_request=True,
    )
    common = {"WARC-Date": warc_date(moment)}
    writer.write_record(writer.create_warc_record(
        capture.url, "request", payload=BytesIO(b""), length=0, http_headers=request_headers,
        warc_headers_dict={**common, "WARC-Record-ID": record_id(seed, "request", capture.url),
                           "WARC-Concurrent-To": response_id}))
    response_headers = StatusAndHeaders(capture.status, [
        ("Date", moment.strftime("%a, %d %b %Y %H:%M:%S GMT")), ("Server", "nginx"),
        ("Content-Type", capture.content_type), ("Content-Length", str(len(capture.body))),
        *capture.extra_headers], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(
        capture.url, "response", payload=BytesIO(capture.body), length=len(capture.body),
        http_headers=response_headers, warc_headers_dict={**common, "WARC-Record-ID": response_id}))
    return response_id


def write_warcinfo(writer: WARCWriter, name: str, seed: int, moment: datetime) -> None:
    fields = f"software: {PDF_PRODUCER}\r\nformat: WARC File Format 1.0\r\nseed: {seed}\r\n".encode()
    writer.write_record(writer.create_warc_record(
        "", "warcinfo", payload=BytesIO(fields), length=len(fields), warc_content_type="application/warc-fields",
        warc_headers_dict={"WARC-Record-ID": record_id(seed, "warcinfo", name), "WARC-Date": warc_date(moment),
                           "WARC-Filename": name}))


def write_warcs(out_dir: Path, captures: list[Capture], n_files: int, seed: int) -> dict[str, WarcLocation]:
    """Round-robin the (already shuffled) captures into n_files; returns doc_key -> location."""
    (out_dir / "warc").mkdir(parents=True, exist_ok=True)
    locations = {}
    for index in range(n_files):
        relative = f"warc/demo-{index:05d}.warc.gz"
        with open(out_dir / relative, "wb") as stream:
            writer = WARCWriter(stream, gzip=True)
            write_warcinfo(writer, Path(relative).name, seed, CRAWL_START)
            for position, capture in enumerate(captures[index::n_files]):
                moment = CRAWL_START + timedelta(seconds=7 * (position * n_files + index) + 1)
                response_id = write_capture(writer, capture, seed, moment)
                if capture.doc_key:
                    locations[capture.doc_key] = WarcLocation(relative, response_id)
    return locations


# ---------------------------------------------------------------------------- ground truth

SCHEMA = pa.schema([
    ("doc_key", pa.string()), ("source", pa.string()), ("kind", pa.string()), ("domain", pa.string()),
    ("lang", pa.string()), ("title", pa.string()), ("warc_file", pa.string()),
    ("warc_record_id", pa.string()), ("charset", pa.string()), ("is_spam", pa.bool_()),
    ("is_boilerplate", pa.bool_()), ("dup_of", pa.string()), ("dup_kind", pa.string()),
    ("hard_negative_of", pa.string()), ("contaminated_with", pa.string()),
    ("contamination_kind", pa.string()), ("license", pa.string()), ("needs_ocr", pa.bool_()),
    ("is_broken", pa.bool_()), ("n_words", pa.int32()), ("text", pa.string()),
])


def web_row(doc: WebDoc, location: WarcLocation) -> dict:
    text = doc.text
    return {
        "doc_key": doc.url, "source": "web", "kind": doc.kind, "domain": doc.domain, "lang": doc.site.lang,
        "title": doc.title, "warc_file": location.warc_file, "warc_record_id": location.record_id,
        "charset": doc.charset, "is_spam": doc.kind == "spam", "is_boilerplate": doc.kind == "boilerplate",
        "dup_of": doc.dup_of, "dup_kind": doc.dup_kind, "hard_negative_of": doc.hard_negative_of,
        "contaminated_with": doc.contaminated_with, "contamination_kind": doc.contamination_kind,
        "license": doc.license, "needs_ocr": False, "is_broken": False, "n_words": word_count(text), "text": text,
    }


def pdf_row(doc: PdfDoc, location: WarcLocation | None) -> dict:
    return {
        "doc_key": doc.doc_key, "source": "web_pdf" if location else "pdf", "kind": doc.kind,
        "domain": "papers", "lang": "en", "title": doc.title,
        "warc_file": location.warc_file if location else None,
        "warc_record_id": location.record_id if location else None, "charset": None,
        "is_spam": False, "is_boilerplate": False, "dup_of": None, "dup_kind": None, "hard_negative_of": None,
        "contaminated_with": None, "contamination_kind": None, "license": "none",
        "needs_ocr": doc.needs_ocr, "is_broken": doc.is_broken, "n_words": word_count(doc.text), "text": doc.text,
    }


def summarize(rows: list[dict], out_dir: Path, files: dict, captures: list[Capture], scale: float, seed: int) -> dict:
    def count(column: str) -> dict:
        return dict(sorted(Counter(row[column] for row in rows if row[column] is not None).items()))

    return {
        "out_dir": str(out_dir), "scale": scale, "seed": seed, "documents": len(rows),
        "by_kind": count("kind"), "by_domain": count("domain"), "by_source": count("source"),
        "by_lang": count("lang"), "by_license": count("license"),
        "by_contamination_kind": count("contamination_kind"),
        "skipped_records": {"warcinfo": len(files["warc"]), "request": len(captures),
                            **{status: n for status, n in sorted(Counter(
                                f"{c.status.split()[0]} {c.content_type.split(';')[0]}"
                                for c in captures if c.doc_key is None).items())}},
        **files,
    }


def write_benchmark(out_dir: Path, items: list[BenchItem]) -> str:
    relative = "benchmarks/demo_bench.jsonl"
    (out_dir / "benchmarks").mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": i.id, "question": i.question, "answer": i.answer}, ensure_ascii=False) for i in items]
    (out_dir / relative).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return relative


def write_pdf_files(out_dir: Path, pdfs: list[PdfDoc]) -> list[str]:
    (out_dir / "pdf").mkdir(parents=True, exist_ok=True)
    for pdf in pdfs:
        (out_dir / "pdf" / pdf.doc_key).write_bytes(pdf.data)
    return [f"pdf/{pdf.doc_key}" for pdf in pdfs]


def write_demo_corpus(out_dir: Path, scale: float = 1.0, seed: int = 0) -> dict:
    """Writes the demo corpus under out_dir and returns a summary dict (counts per kind/domain, file lists)."""
    if not 0 < scale <= MAX_SCALE:
        raise ValueError(f"scale must be in (0, {MAX_SCALE}], got {scale}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = load_sources(seed, scale)
    web_docs = build_web_docs(Context(child_rng(seed, "web"), sources), scale)
    pdf_files, served_pdfs = build_pdfs(seed, scale, sources.pdf_en)

    rng = child_rng(seed, "warc")
    captures = [html_capture(doc) for doc in web_docs]
    captures += [Capture(p.doc_key, "200 OK", "application/pdf", p.data, doc_key=p.doc_key) for p in served_pdfs]
    captures += skipped_captures(rng, scale, [doc.url for doc in web_docs])
    rng.shuffle(captures)
    n_files = max(2, round(WARC_FILES * scale))
    locations = write_warcs(out_dir, captures, n_files, seed)

    rows = [web_row(doc, locations[doc.url]) for doc in web_docs]
    rows += [pdf_row(p, locations[p.doc_key]) for p in served_pdfs]
    rows += [pdf_row(p, None) for p in pdf_files]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out_dir / "ground_truth.parquet", compression="zstd")
    files = {
        "warc": [f"warc/demo-{i:05d}.warc.gz" for i in range(n_files)],
        "pdf": write_pdf_files(out_dir, pdf_files),
        "benchmark": write_benchmark(out_dir, sources.bench),
        "ground_truth": "ground_truth.parquet",
    }
    summary = summarize(rows, out_dir, files, captures, scale, seed)
    summary["benchmark_items"] = len(sources.bench)
    readme = f"{__doc__}\nSummary\n\n{json.dumps({k: v for k, v in summary.items() if k != 'out_dir'}, indent=2)}\n"
    (out_dir / "README.txt").write_text(readme, encoding="utf-8")
    return summary
