"""What a heuristic filter measured when it dropped a document: the value and the threshold.

datatrove's Gopher, C4 and FineWeb filters return only a reason (``line_punct_ratio``). A team
tuning them on its own crawl needs the number behind it (``line_punct_ratio 0.08 < 0.12``), so
:class:`Measured` wraps a filter and, for a drop, measures again what that reason tests, with
datatrove's own helpers and the filter's own settings. The detail goes to the drop ledger's
``detail`` column beside the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters.c4_filters import POLICY_SUBSTRINGS
from datatrove.pipeline.filters.gopher_quality_filter import PUNCTUATION_SET
from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_duplicates, find_top_duplicate, get_n_grams
from datatrove.utils.text import split_into_sentences, split_into_words

from curation.shards import FILTER_DETAIL  # set on a dropped document; the drop sink files it as ``detail``


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def fineweb(f: FineWebQualityFilter, doc: Document, reason: str) -> str:
    lines = [line for line in doc.text.split("\n") if line.strip()]
    if reason == "line_punct_ratio":
        value = ratio(sum(line.endswith(f.stop_chars) for line in lines), len(lines))
        return f"line_punct_ratio {value:.3f} < {f.line_punct_thr} ({len(lines)} lines)"
    if reason == "short_line_ratio":
        value = ratio(sum(len(line) <= f.short_line_length for line in lines), len(lines))
        return f"short_line_ratio {value:.3f} > {f.short_line_threshold} (lines of <= {f.short_line_length} chars, {len(lines)} lines)"
    if reason == "char_dup_ratio":
        value = ratio(find_duplicates(lines)[1], len(doc.text.replace("\n", "")))
        return f"char_dup_ratio {value:.3f} > {f.char_duplicates_ratio}"
    if reason == "list_ratio":
        value = ratio(doc.text.count("\n"), len(split_into_words(doc.text, f.language)))
        return f"newlines per word {value:.3f} > {f.new_line_ratio}"
    return f"{reason}: no non-empty line"


def c4(f: C4QualityFilter, doc: Document, reason: str) -> str:
    lines = [line.strip() for line in (doc.text.splitlines() if f.split_paragraph else split_into_sentences(doc.text, f.language))]
    if reason == "curly_bracket":
        braced = [i for i, line in enumerate(lines) if "{" in line]
        return f"curly_bracket: {len(braced)} of {len(lines)} lines with '{{' (first: line {braced[0] + 1})" if braced else reason
    if reason == "lorem_ipsum":
        return "lorem_ipsum: a line says 'lorem ipsum'"
    kept = [line for line in lines if len(line.split()) >= f.min_words_per_line
            and not (f.filter_javascript and "javascript" in line.lower())
            and not (f.filter_policy and any(p in line.lower() for p in POLICY_SUBSTRINGS))]
    sentences = sum(len(split_into_sentences(line, f.language)) for line in kept) if f.split_paragraph else len(kept)
    return f"too_few_sentences: {sentences} < {f.min_num_sentences} (in {len(kept)} of {len(lines)} lines with >= {f.min_words_per_line} words)"


def gopher_quality(f: GopherQualityFilter, doc: Document, reason: str) -> str:
    text = doc.text
    words = split_into_words(text, f.language)
    content = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
    lines = text.splitlines()
    measures: dict[str, Callable[[], str]] = {
        "gopher_short_doc": lambda: f"{len(content)} words < {f.min_doc_words}",
        "gopher_long_doc": lambda: f"{len(content)} words > {f.max_doc_words}",
        "gopher_below_avg_threshold": lambda: f"mean word length {np.mean([len(w) for w in content]):.2f} < {f.min_avg_word_length}",
        "gopher_above_avg_threshold": lambda: f"mean word length {np.mean([len(w) for w in content]):.2f} > {f.max_avg_word_length}",
        "gopher_too_many_hashes": lambda: f"'#' per word {ratio(text.count('#'), len(words)):.3f} > {f.max_symbol_word_ratio}",
        "gopher_too_many_ellipsis": lambda: f"ellipses per word {ratio(text.count('...') + text.count('…'), len(words)):.3f} > {f.max_symbol_word_ratio}",
        "gopher_too_many_bullets": lambda: f"bullet lines {ratio(sum(s.lstrip().startswith(('•', '-')) for s in lines), len(lines)):.3f} > {f.max_bullet_lines_ratio}",
        "gopher_too_many_end_ellipsis": lambda: f"lines ending in an ellipsis {ratio(sum(s.rstrip().endswith(('...', '…')) for s in lines), len(lines)):.3f} > {f.max_ellipsis_lines_ratio}",
        "gopher_below_alpha_threshold": lambda: f"words with a letter {ratio(sum(any(c.isalpha() for c in w) for w in words), len(words)):.3f} < {f.max_non_alpha_words_ratio}",
        "gopher_enough_stop_words": lambda: f"{len(f.stop_words.intersection(words))} distinct stop words < {f.min_stop_words}",
    }
    return f"{reason}: {measures[reason]()}" if reason in measures else reason


def gopher_repetition(f: GopherRepetitionFilter, doc: Document, reason: str) -> str:
    text = doc.text
    if reason.startswith("dup_para"):
        parts = f.paragraph_exp.split(text.strip())
        limit = f.dup_para_frac if reason == "dup_para_frac" else f.dup_para_char_frac
    elif reason.startswith("dup_line"):
        parts = f._line_splitter.split(text)
        limit = f.dup_line_frac if reason == "dup_line_frac" else f.dup_line_char_frac
    else:
        words = split_into_words(text, f.language)
        n = int(reason.split("_")[1])
        if reason.startswith("top_"):
            limit = dict(f.top_n_grams)[n]
            value = ratio(find_top_duplicate(get_n_grams(words, n)), len(text))
            return f"most repeated {n}-gram covers {value:.3f} of the chars > {limit}"
        limit = dict(f.dup_n_grams)[n]
        return f"duplicated {n}-grams cover {ratio(find_all_duplicate(words, n), len(text)):.3f} of the chars > {limit}"
    duplicates, chars = find_duplicates(parts)
    kind = "paragraphs" if reason.startswith("dup_para") else "lines"
    if reason.endswith("char_frac"):
        return f"chars in duplicated {kind} {ratio(chars, len(text)):.3f} > {limit}"
    return f"duplicated {kind} {duplicates} of {len(parts)} = {ratio(duplicates, len(parts)):.3f} > {limit}"


MEASURES: dict[type, Callable[[BaseFilter, Document, str], str]] = {
    FineWebQualityFilter: fineweb,
    C4QualityFilter: c4,
    GopherQualityFilter: gopher_quality,
    GopherRepetitionFilter: gopher_repetition,
}


class Measured(BaseFilter):
    """A heuristic filter whose drops say what was measured, in ``detail``."""

    def __init__(self, inner: BaseFilter, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.inner = inner
        self.measure = next(measure for kind, measure in MEASURES.items() if isinstance(inner, kind))
        self.name = inner.name
        self.stats = type(self.stats)(f"{inner.type}: {inner.name}")

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text  # C4 rewrites the text of a document it keeps, never of one it drops
        verdict = self.inner.filter(doc)
        if verdict is True or (isinstance(verdict, tuple) and verdict[0]):
            return verdict
        reason = verdict[1] if isinstance(verdict, tuple) else "dropped"
        doc.text = text
        try:
            doc.metadata[FILTER_DETAIL] = self.measure(self.inner, doc, reason)
        except (ValueError, ZeroDivisionError, KeyError, IndexError) as err:  # a measurement never loses the drop
            doc.metadata[FILTER_DETAIL] = f"{reason} (not measured: {type(err).__name__})"
        return verdict
