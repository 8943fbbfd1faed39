"""Document files as a team holds them, for tests: Dolma JSONL, a Parquet code dump, a saved HF dataset."""

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PROSE = (
    "The river valley was settled by farmers who grew barley and kept sheep on the hills above the town. "
    "Over the centuries the market grew, and merchants from the coast came each autumn to trade wool for salt. "
    "Today the old bridge still stands, and the museum beside it tells the story of the valley and its people. "
    "Visitors walk the river path in summer, when the meadows are full of flowers and the mill turns again. "
    "In winter the snow closes the upper pass, and the town keeps to itself until the spring fair."
)


WORDS = (
    "river valley farmer barley sheep hill town market merchant coast autumn wool salt bridge museum story "
    "people summer meadow flower mill winter snow pass fair harvest orchard cider stone chapel bell road cart "
    "horse forge smith baker bread oven festival song dance lake boat fisher net island lighthouse storm "
    "harbour ship sail trade spice silk road caravan desert oasis well palm camel star night moon tide shore"
).split()


def varied_text(seed: int, sentences: int = 8) -> str:
    """Prose whose words vary with ``seed``: documents that are not near-duplicates of each other."""
    rng = random.Random(seed)
    return " ".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(9, 16))).capitalize() + "." for _ in range(sentences)
    )


def dolma_record(index: int, text: str = PROSE) -> dict:
    return {
        "id": f"doc-{index:04d}",
        "text": f"{text} This is record number {index}.",
        "source": "wikipedia",
        "added": "2024-03-01T00:00:00Z",
        "created": f"2010-01-{index % 28 + 1:02d}T00:00:00Z",
        "metadata": {"title": f"Valley {index}", "url": f"https://en.example.org/wiki/Valley_{index}", "length": len(text)},
    }


def write_dolma(path: Path, records: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    """A gzip'd Dolma file; ``extra_lines`` are written as they are, after the records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record) for record in records] + list(extra_lines)
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return path


def code_unit(index: int) -> str:
    rng = random.Random(index)
    names = rng.sample(WORDS, 6)
    body = "".join(f"    {name} = {rng.choice(WORDS)}_table.get({rng.randint(1, 999)}, {rng.random():.3f})\n" for name in names)
    return (
        f"def {names[0]}_{index}({names[1]}, {names[2]}={index + 2}):\n"
        f'    """{varied_text(index, sentences=1)}"""\n'
        f"{body}    return {' + '.join(names)}\n"
    )


def write_code_dump(path: Path, n: int) -> Path:
    """A Parquet code dump whose text is in ``content`` and whose id is ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "path": [f"lib/scale_{i}.py" for i in range(n)],
        "repo": ["tools"] * n,
        "license": ["MIT"] * n,
        "content": [code_unit(i) for i in range(n)],
    })
    pq.write_table(table, path, compression="zstd")
    return path


def write_qa_dataset(folder: Path, n: int) -> Path:
    """A Hugging Face dataset saved with ``save_to_disk``."""
    import datasets

    rows = {
        "question_id": [f"q{i}" for i in range(n)],
        "title": [f"How do I keep sheep number {i} warm in winter?" for i in range(n)],
        "text": [f"Question: how do I keep sheep number {i} warm in winter? Answer: {PROSE}" for i in range(n)],
    }
    datasets.Dataset.from_dict(rows).save_to_disk(str(folder))
    return folder
