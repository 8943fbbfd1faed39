"""Tokenization into per-domain token files, with a held-out validation slice per domain.

``DomainTokenizer`` is datatrove's ``DocumentTokenizer`` (same tokenizer loading, EOS
post-processing and ``.ds`` + ``.ds.index`` file format) routed by domain: each rank
writes ``<split>/<domain>/<rank>.ds`` and passes every document on with ``n_tokens``
and ``split``, so the shards say what went where.

The validation slice is chosen by document (a seeded hash of its id), so the same
document lands on the same side in every run.
"""

from pathlib import Path

import xxhash
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer, TokenizedFile
from datatrove.utils.batching import batched

from curation.shards import safe_segment

TRAIN, VALID = "train", "valid"


def split_of(doc_id: str, validation_fraction: float, seed: int) -> str:
    bucket = xxhash.xxh64_intdigest(doc_id, seed=seed) / 2**64
    return VALID if bucket < validation_fraction else TRAIN


def token_file_name(split: str, domain: str, rank: int) -> str:
    return f"{split}/{safe_segment(domain)}/{rank:05d}.ds"


class DomainTokenizer(DocumentTokenizer):
    name = "🔢 tokenize"

    def __init__(
        self,
        output_folder: str | Path,
        tokenizer_path: str | Path,
        eos_token: str,
        validation_fraction: float = 0.05,
        seed: int = 0,
        batch_size: int = 1000,
    ):
        super().__init__(
            output_folder=str(output_folder),
            tokenizer_name_or_path=str(tokenizer_path),
            eos_token=eos_token,
            shuffle_documents=False,
            save_index=True,
            batch_size=batch_size,
        )
        self.folder = Path(output_folder)
        self.validation_fraction = validation_fraction
        self.seed = seed

    def clear_rank(self, rank: int) -> None:
        for leftover in self.folder.glob(f"*/**/{rank:05d}.ds*"):
            leftover.unlink()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.clear_rank(rank)
        files: dict[str, TokenizedFile] = {}
        for batch in batched(data, self.batch_size):
            with self.track_time(unit="batch"):
                encoded = self.tokenizer.encode_batch([doc.text for doc in batch])
            for doc, encoding in zip(batch, encoded):
                split = split_of(doc.id, self.validation_fraction, self.seed)
                name = token_file_name(split, doc.metadata.get("domain") or "unknown", rank)
                if name not in files:
                    files[name] = TokenizedFile(self.output_folder, name, save_index=True, token_size=self.token_size)
                files[name].write(encoding.ids, None)
                doc.metadata["n_tokens"] = len(encoding.ids)
                doc.metadata["split"] = split
                self.stat_update("tokens", f"{split}_tokens", value=len(encoding.ids))
                yield doc
        for token_file in files.values():
            token_file.close()
