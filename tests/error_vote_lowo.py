"""Leave-one-wave-out check of the words' vote, on tuning parts only (docs/errors-quality.md, "A lower vote margin?"
and "Can 0.93 be reached here?").

    .venv/bin/python -m tests.error_vote_lowo                      # the settings in use
    .venv/bin/python -m tests.error_vote_lowo --margin 1.0
    .venv/bin/python -m tests.error_vote_lowo --stem ing,ed,es,s   # words with these endings stripped

For each wave whose tuning part is in the word table, the table is rebuilt without that part and the part is
scored with it; a wave kept out of the table is scored against the full table. The sum over all waves says how
well a vote setting does on text the table never held, without reading any unseen part (no `_unseen` file is
opened: error_words_build.tuning_rows asserts it). Prints right answers per wave and in total.
"""

from __future__ import annotations

import argparse

from mailscope.processors import error_categories, error_words, errors
from tests import error_words_build as build
from tests.processors.test_error_generalisation import WAVES, corpus, score


def _stemmed(features, endings):
    def wrapped(pattern, type_key="", codes=()):
        out = set()
        for word in features(pattern, type_key, codes):
            if ":" not in word:  # `type:`, `enh:`, `code:` features stay whole
                for ending in endings:
                    if word.endswith(ending) and len(word) - len(ending) >= 4:
                        word = word[: -len(ending)]
                        break
            out.add(word)
        return out

    return wrapped


def run(margin=error_words.MARGIN, alpha=error_words.ALPHA, endings=()) -> dict:
    """{wave: (right, rows)} with the vote's table rebuilt per left-out wave."""
    saved = (error_words.MARGIN, error_words.features, build.features, error_words._model, error_categories.OUTVOTE_CODE)
    error_words.MARGIN = error_categories.OUTVOTE_CODE = margin  # a bare code is outvoted at the vote's own margin
    if endings:
        error_words.features = build.features = _stemmed(saved[1], endings)
    try:
        in_table = set(build.tuning_names())
        full = error_words.model(build.CATEGORIES, *build.counts(build.tuning_rows()), alpha)
        out = {}
        for wave, names in WAVES.items():
            if in_table.intersection(names):
                kept = tuple(name for name in build.tuning_names() if name not in names)
                error_words._model = error_words.model(build.CATEGORIES, *build.counts(build.tuning_rows(kept)), alpha)
            else:
                error_words._model = full
            errors._cache.clear()
            rows = corpus("tuning", names)
            category = score(rows)[0]
            out[wave] = (round(category * len(rows)), len(rows))
        return out
    finally:
        (error_words.MARGIN, error_words.features, build.features, error_words._model,
         error_categories.OUTVOTE_CODE) = saved
        errors._cache.clear()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--margin", type=float, default=error_words.MARGIN)
    parser.add_argument("--alpha", type=float, default=error_words.ALPHA)
    parser.add_argument("--stem", default="", help="comma-separated endings to strip, longest first")
    args = parser.parse_args(argv)
    endings = tuple(ending for ending in args.stem.split(",") if ending)
    out = run(args.margin, args.alpha, endings)
    for wave, (right, rows) in out.items():
        print(f"{wave:12s} {right:4d} / {rows}")
    print(f"{'total':12s} {sum(r for r, _ in out.values()):4d} / {sum(n for _, n in out.values())}")


if __name__ == "__main__":
    main()
