"""De-hyphenation's word-frequency backstop, measured: compounds kept, split words joined.

A word broken at a line end (``exam-`` + ``ple``) must be joined; a compound that happens to
break at its hyphen (``three-`` + ``dimensional``) must keep it. Where the document itself
says nothing, ``curation.sources.pdf.commonly_hyphenated`` decides by wordfreq's frequencies.
This prints, on text the rule was not written for:

* the share of the hyphenated compounds of Python's HTML documentation (Debian's python3-doc)
  that keep their hyphen when broken at it, and
* the share of English words of 7+ letters (wordfreq's most frequent 60,000) that keep a
  hyphen wrongly when broken at a random point.

    .venv/bin/python -m bench.hyphens [--pages 600] [--seed 0]
"""

import argparse
import html
import random
import re
import time

from wordfreq import top_n_list

from curation.sources.pdf import commonly_hyphenated
from tests.python_docs import content_pages

COMPOUND = re.compile(r"\b[a-zA-Z]{2,}-[a-zA-Z]{2,}\b")
TAG = re.compile(r"<[^>]+>")


def documentation_compounds(pages: int) -> set[str]:
    found = set()
    for page in content_pages()[:pages]:
        text = html.unescape(TAG.sub(" ", page.read_text(errors="replace")))
        found.update(match.lower() for match in COMPOUND.findall(text))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    compounds = documentation_compounds(args.pages)
    kept = sum(commonly_hyphenated(*compound.split("-")) for compound in compounds)
    rng = random.Random(args.seed)
    words = [word for word in top_n_list("en", 60_000) if word.isalpha() and len(word) >= 7]
    splits = [(word[:cut], word[cut:]) for word in words for cut in [rng.randint(2, len(word) - 2)]]
    wrong = [f"{head}-{tail}" for head, tail in splits if commonly_hyphenated(head, tail)]
    print(f"compounds of Python's documentation ({args.pages} pages): {kept / len(compounds):.3f} of {len(compounds):,} keep their hyphen")
    print(f"English words split at random: {len(wrong) / len(splits):.4f} of {len(splits):,} keep a hyphen wrongly, e.g. {', '.join(wrong[:5])}")
    print(f"{time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
