"""Language ID and heuristic quality filters, offline, with every drop in the ledger.

datatrove's filters do the work; this module makes them run without the network
(a local fastText lid.176 model, tldextract without its suffix-list download), writes
the language under curate's keys (``lang``, ``lang_score``), and files each filter's
drops under its own label (``language/fr``, ``gopher_quality/gopher_short_doc``, ...).

What the filters load (the URL block lists, some 600 MB in memory; the lid.176 model) is
loaded once per process and shared by every copy of a step. A Dask worker runs each rank
on a fresh unpickled copy of the pipeline and keeps every finished rank's copy until the
stage ends: lists loaded per copy added up rank after rank (bench/worker_memory.py). The
shared ones stay loaded for the worker's life, the cost of one rank.
"""

import functools
import os
import sys
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
    URLFilter,
)
from datatrove.utils.lid import FT176LID

from curation.process_cache import per_process
from curation.text_kind import CODE, CODE_LINES, TECHNICAL, TEXT_KIND, code_line_fraction, prose_lines

LID_MODEL_ENV = "CURATE_LID_MODEL"

HEURISTIC_FILTERS = {
    "gopher_repetition": GopherRepetitionFilter,
    "gopher_quality": GopherQualityFilter,
    "c4": C4QualityFilter,
    "fineweb": FineWebQualityFilter,
}

# Each heuristic's settings for technical text (curation.text_kind), over its ``params``.
# Chosen on one half of Python's HTML documentation and checked on the other
# (bench/technical_pages.py): every threshold sits above what reference pages measure
# (repeated "New in version ..." annotations, signatures, doctest lines), and the demo's
# spam and boilerplate are all still dropped when every page is judged with them.
TECHNICAL_PARAMS: dict[str, dict] = {
    "gopher_repetition": {
        "dup_line_frac": 0.5,
        "dup_para_frac": 0.45,
        "dup_line_char_frac": 0.3,
        "dup_para_char_frac": 0.3,
        "top_n_grams": ((2, 0.25), (3, 0.22), (4, 0.2)),
        "dup_n_grams": ((5, 0.4), (6, 0.38), (7, 0.36), (8, 0.34), (9, 0.32), (10, 0.3)),
    },
    "gopher_quality": {"max_non_alpha_words_ratio": 0.5},  # identifiers and numbers are words without letters
    "c4": {"filter_curly_bracket": False, "min_num_sentences": 3},  # braces are code's punctuation
    "fineweb": {"char_duplicates_ratio": 0.2, "short_line_thr": 0.8, "line_punct_thr": 0.04, "new_line_ratio": 0.4},
}


def lid_model_path() -> Path:
    """Where ``make setup`` puts fastText's compressed lid.176 model (override with CURATE_LID_MODEL)."""
    return Path(os.environ.get(LID_MODEL_ENV) or Path(sys.prefix) / "share" / "curate" / "lid.176.ftz")


def read_fasttext(model_path: Path):
    from fasttext.FastText import _FastText

    return _FastText(str(model_path))


fasttext_model = per_process(read_fasttext)  # a fastText model, loaded once per process (see the module docstring)


class LocalFT176LID(FT176LID):
    """fastText lid.176 loaded from a local file instead of downloaded."""

    def __init__(self, languages: list[str] | None, model_path: Path):
        super().__init__(languages)
        self.model_path = Path(model_path)

    @property
    def model(self):
        if self._model is None:
            if not self.model_path.is_file():
                raise FileNotFoundError(f"language ID model not found at {self.model_path}: run `make setup` or set {LID_MODEL_ENV}")
            self._model = fasttext_model(self.model_path)
        return self._model


class LanguageIdFilter(LanguageFilter):
    """Keeps documents in the configured languages; drops the rest as ``<lang>`` (the label found).

    Source code has no natural language to identify, and identifiers drag lid.176's
    confidence down on technical pages. On code or technical text (``text_kind``, see
    curation.text_kind; without it, a page where at least ``code_threshold`` of the lines
    read as code), the language is identified on the lines that do not read as code, and
    only a confident verdict for another language drops the page: low confidence there is
    expected, not a sign of a foreign or garbled page.
    """

    name = "🌍 language"

    def __init__(
        self,
        languages: list[str],
        threshold: float = 0.65,
        exclusion_writer=None,
        model_path: Path | None = None,
        code_threshold: float | None = CODE_LINES,
        min_prose_words: int = 20,
    ):
        super().__init__(languages=None, language_threshold=threshold, exclusion_writer=exclusion_writer)
        self.keep = frozenset(languages)
        self.code_threshold = code_threshold
        self.min_prose_words = min_prose_words
        self.model = LocalFT176LID(None, model_path or lid_model_path())

    def technical(self, doc: Document) -> bool:
        if TEXT_KIND in doc.metadata:
            return doc.metadata[TEXT_KIND] in (CODE, TECHNICAL)
        return self.code_threshold is not None and code_line_fraction(doc.text) >= self.code_threshold

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        technical = self.technical(doc)
        prose = prose_lines(doc.text) if technical else doc.text
        if len(prose.split()) < self.min_prose_words:
            prose = doc.text
        (lang, score), _ = self.model.predict(Document(text=prose, id=doc.id))
        doc.metadata["lang"] = lang
        doc.metadata["lang_score"] = round(float(score), 4)
        if technical and (lang in self.keep or score < self.language_threshold):
            self.stat_update("exempt_code" if score < self.language_threshold else "technical")
            return True
        if lang not in self.keep:
            return False, lang
        if score < self.language_threshold:
            return False, "low_confidence"
        return True


@functools.lru_cache(maxsize=1)
def loaded_url_filter(extra_domains: tuple[str, ...], extra_urls: tuple[str, ...]) -> URLFilter:
    """datatrove's URLFilter with its block lists loaded, once per process (see the module docstring);
    tldextract's public-suffix list comes from its bundled snapshot instead of the network."""
    from tldextract import TLDExtract

    url_filter = URLFilter(extra_domains=list(extra_domains), extra_urls=list(extra_urls))
    url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
    url_filter.download_data()
    return url_filter


class OfflineUrlFilter(BaseFilter):
    """datatrove's URL block lists, judged by the process's shared ``loaded_url_filter``."""

    name = "😈 url"
    _requires_dependencies = URLFilter._requires_dependencies

    def __init__(self, exclusion_writer=None, extra_domains: list[str] = (), extra_urls: list[str] = ()):
        super().__init__(exclusion_writer)
        self.extra_domains = tuple(extra_domains)
        self.extra_urls = tuple(extra_urls)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not doc.metadata.get("url"):
            return True  # PDFs from local folders and synthetic documents have no URL to judge
        return loaded_url_filter(self.extra_domains, self.extra_urls).filter(doc)


class ForSources(BaseFilter):
    """Runs a filter only on documents of the named sources (their filter policy includes it);
    the others pass through, counted as ``not_in_policy``."""

    def __init__(self, inner: BaseFilter, sources: frozenset[str], exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.inner = inner
        self.sources = frozenset(sources)
        self.name = inner.name
        self.stats = type(self.stats)(f"{inner.type}: {inner.name}")

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get("source") not in self.sources:
            self.stat_update("not_in_policy")
            return True
        return self.inner.filter(doc)
