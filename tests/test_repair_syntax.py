"""The spaCy syntax baseline of the repair bench: what English syntax alone sees of a cut request."""
import pytest

from workbench.repair.evaluation import SYNTAX_RULE, evaluate
from workbench.repair.syntax import RULES, SyntaxBaseline, SyntaxUnavailableError


@pytest.fixture(scope="module")
def syntax():
    return SyntaxBaseline()


def test_open_parses_are_found_and_closed_ones_are_not(syntax):
    fired = syntax.open_ends(["set a timer for", "add milk to my", "can you", "set a timer for ten minutes",
                              "turn it off"])
    assert "preposition without object" in fired[0]
    assert "function word last" in fired[1]
    assert "auxiliary without verb" in fired[2]
    # a particle ending a phrasal verb ("turn it off") closes the request
    assert fired[3] == fired[4] == set()


def test_syntax_cannot_see_a_grammatical_request_left_unfinished(syntax):
    # the limit that the domain parser is there for: "call uncle" parses as a whole sentence
    assert not syntax.detect(["call uncle"])[0]


def test_rules_are_chosen_on_labelled_texts(syntax):
    texts = ["set a timer for", "add milk to my", "set", "call mom", "turn off the lights", "play some jazz"]
    truth = [True, True, True, False, False, False]
    rules = syntax.choose_rules(texts, truth)
    assert set(rules) <= set(RULES) and rules
    assert list(syntax.detect(texts)) == truth
    syntax.rules = tuple(RULES)


def test_a_missing_model_is_a_typed_error():
    with pytest.raises(SyntaxUnavailableError, match="no_such_model"):
        SyntaxBaseline("no_such_model")


def test_the_bench_reports_the_baseline_beside_the_parser(syntax):
    from workbench.repair.parser import load_parser
    entries = [{"template": "set a timer for {n} {unit}", "text": "set a timer for", "truncated": True,
                "full_text": "set a timer for ten minutes"},
               {"template": "set a timer for {n} {unit}", "text": "set a timer for ten minutes", "truncated": False}]
    # "call uncle" is cut, and only the domain parser can tell
    entries += [{"template": "call {name}", "text": "call uncle", "truncated": True, "full_text": "call uncle joe"}]
    res, _ = evaluate(load_parser(), entries, syntax=syntax)
    assert res["detection"]["f1"]["value"] == pytest.approx(1.0)
    base = res["detection_by_rule"][SYNTAX_RULE]
    assert base["recall"]["k"] == 1 and base["precision"]["k"] == base["precision"]["n"] == 1
