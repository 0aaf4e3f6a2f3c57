"""The repair room measured: detection of a cut request (rules chosen on dev), the parser's graphs against gold\n(smatch), the missing role, recovery of the missing words, out-of-domain refusals, latency, and the recogniser's\ntranscripts the same way. ``bench repair``, the parser's training (``every_cut``, ``asr_texts``) and notebook 08 read it.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
import numpy as np
from ..stats import paired_ci, rate_ci, stat_ci
from .graph import _FILLER, gold_graph, smatch_counts
from .repair import DANGLING, _fillers, diagnose, question_target, recover


RULES = ("cut head", "graph", "cut head or graph")


# the rule of thumb without a parser: the request ends on a word that cannot end one ("set a timer for")
BASELINE_RULE = "last word dangles (no parser)"


# English syntax without the domain: spaCy's dependency parse leaves something open (``syntax.py``)
SYNTAX_RULE = "spaCy: parse left open (no parser of ours)"


# through the recogniser: the transcript's P(cut) fused with the arbitrator's P(end) after the speech (acoustic.py)
FUSED_RULE = "parser + arbitrator (how it was said)"


def every_cut(entries: list[dict]) -> list[dict]:
    """Each entry's whole sentence and every cut of it after its k-th spoken word (k from the first to the last
    but one, as the corpus cuts), as entries."""
    out = []
    for e in entries:
        full = e.get("full_text") or e["text"]
        words = full.split()
        out.append({"template": e["template"], "text": full, "truncated": False})
        spoken = [j for j, w in enumerate(words) if not re.fullmatch(_FILLER, w)]
        for k in range(len(spoken) - 1):
            out.append({"template": e["template"], "text": " ".join(words[:spoken[k] + 1]), "full_text": full,
                        "truncated": True})
    return out


def with_counterparts(entries: list[dict]) -> list[dict]:
    """The entries and, for each cut one, its complete counterpart (the sentence the user meant)."""
    return list(entries) + [{"template": e["template"], "text": e["full_text"], "truncated": False}
                            for e in entries if e.get("truncated")]


def _f1(pred, truth):
    tp = np.sum(pred * truth)
    return 2 * tp / max(1.0, np.sum(pred) + np.sum(truth))


def _detected(rule: str, parse) -> bool:
    if rule == BASELINE_RULE:
        return parse.text.split()[-1] in DANGLING
    graph = diagnose(parse.graph, parse.text).truncated
    return {"cut head": parse.truncated, "graph": graph, "cut head or graph": parse.truncated or graph}[rule]


def detection(parses, truth, rule: str, seed: int = 0, pred=None) -> dict:
    """F1 (paired bootstrap interval), precision and recall of ``rule`` over these parses, or of ``pred``."""
    pred = np.array([_detected(rule, p) for p in parses] if pred is None else pred, float)
    truth = np.asarray(truth, float)
    tp = int(np.sum(pred * truth))
    return {"f1": paired_ci((pred, truth), _f1, seed=seed),
            "precision": rate_ci(tp, int(pred.sum())), "recall": rate_ci(tp, int(truth.sum()))}


def choose_rule(parses, truth) -> str:
    """The detection rule with the best F1 (on dev)."""
    return max(RULES, key=lambda r: detection(parses, truth, r)["f1"]["value"])


def _smatch(pairs, seed: int = 0) -> dict:
    if not pairs:
        return {"value": float("nan"), "ci95": [float("nan")] * 2, "n": 0}
    c = np.array([smatch_counts(p, g) for p, g in pairs], float)
    return paired_ci((c[:, 0], c[:, 1], c[:, 2]), lambda m, t, g: 2 * m.sum() / max(1.0, t.sum() + g.sum()), seed=seed)


def _target_roles(target) -> set:
    return set() if not target else {(target[0], r) for r in target[1]}


def evaluate(parser, entries: list[dict], texts: list[str] | None = None, rule: str = "cut head",
             seed: int = 0, batch: int = 64, threshold: float | None = None, syntax=None) -> dict:
    """Every metric of one set: ``entries`` (corpus-like, with template), read from ``texts`` (ASR transcripts;
    default the entries' own text); ``threshold``: P(cut) threshold (default the parser's); ``syntax``: a
    ``SyntaxBaseline`` whose detection is reported beside the parser's."""
    texts = [e["text"] for e in entries] if texts is None else texts
    keep = [i for i, t in enumerate(texts) if t.split()]          # an empty transcript: nothing to parse
    parses = [None] * len(texts)
    for b in range(0, len(keep), batch):
        idx = keep[b:b + batch]
        for i, p in zip(idx, parser.parse_batch([texts[i] for i in idx], threshold)):
            parses[i] = p
    gold = [gold_graph(e) for e in entries]
    truth = [bool(e.get("truncated")) for e in entries]
    ok = [i for i in range(len(entries)) if parses[i] is not None]
    res = {"n": len(entries), "n_cut": int(sum(truth)), "empty_transcripts": len(entries) - len(ok),
           "rule": rule}
    det_parses = [parses[i] for i in ok]
    res["detection"] = detection(det_parses, [truth[i] for i in ok], rule, seed)
    res["detection_by_rule"] = {r: detection(det_parses, [truth[i] for i in ok], r, seed)
                                for r in RULES + (BASELINE_RULE,) if r != rule}
    if syntax is not None:
        res["detection_by_rule"][SYNTAX_RULE] = detection(
            None, [truth[i] for i in ok], SYNTAX_RULE, seed, pred=syntax.detect([texts[i] for i in ok]))
    # empty transcripts count as missed cuts / correct completes: the parser was given nothing
    res["smatch_full"] = _smatch([(parses[i].graph, gold[i]) for i in ok if not truth[i]], seed)
    res["smatch_partial"] = _smatch([(parses[i].graph, gold[i]) for i in ok if truth[i]], seed)
    # missing roles: where the gold partial graph owes a role
    owed = [i for i in range(len(entries)) if truth[i] and diagnose(gold[i]).missing]
    right_first = right_set = asked_right = 0
    by_role: dict[str, list[int]] = {}
    # a cut after one or two words rarely says which request it begins ("i ...", "could ..."): by words said
    buckets: dict[str, list[int]] = {}
    for i in owed:
        g = diagnose(gold[i]).missing
        p = diagnose(parses[i].graph, parses[i].text).missing if parses[i] else ()
        first = bool(p) and p[0] == g[0]
        right_first += first
        right_set += set(p) == set(g)
        gt = question_target(gold[i])
        pt = question_target(parses[i].graph, parses[i].text) if parses[i] else None
        ok_q = bool(pt) and pt[0] == gt[0] and bool(_target_roles(pt) & _target_roles(gt))
        asked_right += ok_q
        by_role.setdefault(gt[1][0] if len(gt[1]) == 1 else "duration", []).append(int(ok_q))
        n_said = len([w for w in entries[i]["text"].split() if not re.fullmatch(_FILLER, w)])
        buckets.setdefault(str(n_said) if n_said < 4 else "4+", []).append(int(first))
    res["missing_role_first_by_words_said"] = {k: rate_ci(sum(v), len(v)) for k, v in sorted(buckets.items())}
    res["missing_role_first"] = rate_ci(right_first, len(owed))
    res["missing_roles_exact"] = rate_ci(right_set, len(owed))
    res["question_right"] = rate_ci(asked_right, len(owed))
    res["question_right_by_role"] = {r: rate_ci(sum(v), len(v)) for r, v in sorted(by_role.items())}
    if any(t != e["text"] for t, e in zip(texts, entries)):
        res["through_asr"] = _asr_breakdown(entries, texts, det_parses, ok, truth, rule, seed)
    return res, parses


def _asr_breakdown(entries, texts, det_parses, ok, truth, rule, seed) -> dict:
    """What the recogniser does to detection: how often a complete request's transcript lost its last word(s)
    (it then reads as cut, and is, as heard), and detection on the utterances it transcribed exactly."""
    from ..asr.scoring import normalize
    complete = [i for i in range(len(entries)) if not truth[i]]
    lost_end = 0
    for i in complete:
        ref, hyp = normalize(entries[i]["text"]).split(), normalize(texts[i]).split()
        lost_end += bool(ref) and (not hyp or (hyp[-1] != ref[-1] and hyp == ref[:len(hyp)]))
    exact = [k for k, i in enumerate(ok) if normalize(texts[i]) == normalize(entries[i]["text"])]
    out = {"complete_transcript_is_a_prefix_of_its_reference": rate_ci(lost_end, len(complete))}
    out["detection_on_exact_transcripts"] = detection([det_parses[k] for k in exact],
                                                      [truth[ok[k]] for k in exact], rule, seed)
    out["n_exact_transcripts"] = len(exact)
    return out


def role_ceiling(entries: list[dict], n_sample: int = 40000, seed: int = 0) -> dict:
    """How often *any* reader of the words said could name the owed role: for each cut entry that owes one (an
    ``every_cut`` set), the share of the corpus generator's cuts with the same words (fillers aside) that owe the
    same first role as the most common one, estimated from ``n_sample`` fresh sentences of the audio templates
    cut everywhere. Its mean is the Bayes ceiling of "owed role right" under the generator's distribution (a
    prefix the sample never produced counts as fully readable, so it is an upper bound); "set ▌" may begin a
    timer, an alarm or a reminder, and no parser can tell which."""
    from collections import Counter

    from ..data import templates as T
    key = lambda text: " ".join(w for w in text.split() if not re.fullmatch(_FILLER, w))
    owed = [e for e in entries if e.get("truncated") and diagnose(gold_graph(e)).missing]
    want = {key(e["text"]) for e in owed}
    counts: dict[str, Counter] = {}
    rng = np.random.default_rng(seed)
    for _ in range(n_sample):
        t, marked = T.sample_text(rng)
        full = T.plain(marked)
        words = full.split()
        for k in range(1, len(words)):
            prefix = " ".join(words[:k])
            if prefix in want:
                miss = diagnose(gold_graph({"template": t.text, "text": prefix, "full_text": full,
                                            "truncated": True})).missing
                if miss:
                    counts.setdefault(prefix, Counter())[miss[0]] += 1
    share, buckets, seen = [], {}, 0
    for e in owed:
        c = counts.get(key(e["text"]))
        seen += c is not None
        share.append(1.0 if c is None else max(c.values()) / sum(c.values()))
        n_said = len(key(e["text"]).split())
        buckets.setdefault(str(n_said) if n_said < 4 else "4+", []).append(share[-1])
    return {"ceiling": stat_ci(share, np.mean), "prefixes_found_in_sample": rate_ci(seen, len(owed)),
            "by_words_said": {k: round(float(np.mean(v)), 4) for k, v in sorted(buckets.items())},
            "n_sample": n_sample}


FOREIGN = ["wo ist der bahnhof", "ich habe heute keine zeit", "guten morgen wie geht es dir", "kannst du mir helfen",
           "das wetter ist schön heute", "je voudrais un café s'il vous plaît", "il fait beau aujourd'hui",
           "où est la gare", "nous allons au cinéma ce soir", "je ne sais pas", "dónde está la biblioteca",
           "me gustaría reservar una mesa", "qué hora es", "hace mucho calor hoy", "no tengo hambre",
           "ciao come stai", "dove si trova la stazione", "dank je wel", "onde fica o banheiro", "tack så mycket"]


OFF_DOMAIN = ["the mitochondria is the powerhouse of the cell", "quarterly earnings exceeded analyst expectations",
              "the defendant pleaded not guilty", "photosynthesis converts light into chemical energy",
              "the parliament passed the bill after a long debate", "the theorem follows from the lemma",
              "interest rates rose for the third quarter", "the enzyme binds to the receptor",
              "the novel was translated into forty languages", "the glacier has retreated since the survey"]


def out_of_domain(parser, in_domain: dict[str, list[str]], seed: int = 0, n_nonsense: int = 200) -> dict:
    """How often text that is no request of this domain gets the unknown intent (random letter strings, other
    languages, English from elsewhere: small probe sets written here), and how often real requests of the test
    sets wrongly do."""
    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    nonsense = [" ".join("".join(rng.choice(letters, int(rng.integers(2, 9)))) for _ in range(int(rng.integers(1, 7))))
                for _ in range(n_nonsense)]
    probes = {"random letters": nonsense, "other languages": FOREIGN, "English off the domain": OFF_DOMAIN}
    out = {}
    for name, texts in probes.items():
        k = sum(p.signature == "unknown" for p in parser.parse_batch(texts))
        out[f"{name}: unknown intent"] = rate_ci(k, len(texts))
    for name, texts in in_domain.items():
        k = sum(p.signature == "unknown" for p in parser.parse_batch(texts))
        out[f"{name}: unknown intent (wrongly)"] = rate_ci(k, len(texts))
        if parser.domain_floor is not None:       # of which the gate's doing (the rest: the signature head's doubt)
            out[f"{name}: below the domain floor"] = rate_ci(
                int(np.sum(parser.domain_logprob(texts) < parser.domain_floor)), len(texts))
    out["domain_floor"] = parser.domain_floor
    return out


def refill(template: str, full_text: str, keep: set[int], rng) -> str:
    """``template`` filled afresh except slot occurrences ``keep``, which keep ``full_text``'s words."""
    from ..data import templates as T
    from .graph import align
    values = align(template, full_text)
    k = iter(range(len(values)))

    def fill(m):
        i = next(k)
        return values[i][0] if i in keep else T.plain(T.SLOTS[m.group(1)](rng))
    return re.sub(r"\{(\w+)\}", fill, template)


def recovery(parser, entries: list[dict], texts: list[str] | None = None, seed: int = 0) -> dict:
    """Recovered filler right where context holds it. For each cut entry whose gold graph owes a role:
    (a) dialogue context: an earlier turn, the same template filled afresh but with the owed role's words, is
    parsed too and the cut request recovered from it; (b) device state (turning a device on or off, the device
    owed): the devices in that room, the meant one in the state the intent needs, the others not."""
    from ..data import templates as T
    from .schema import frame_uses
    rng = np.random.default_rng(seed)
    texts = [e["text"] for e in entries] if texts is None else texts
    ctx, dev = [], []
    for e, text in zip(entries, texts):
        if not e.get("truncated") or not text.split():
            continue
        gold = gold_graph(e)
        owed = diagnose(gold).missing
        if not owed:
            continue
        whole = gold_graph({"template": e["template"], "text": e["full_text"]})
        values = _fillers(whole)
        intent, role = owed[0]
        if (intent, role) not in values:
            continue                           # a role no slot fills (none here), or a later frame's
        want = values[(intent, role)][1]
        fr = frame_uses(e["template"])
        slot_idx = {r.slot_index for f in fr for r in f.roles if f.intent == intent and r.role == role
                    and r.slot_index is not None}
        earlier = refill(e["template"], e["full_text"], slot_idx, rng)
        parse, hist = parser.parse_batch([text, earlier])
        got = {(i, r): v for i, r, v, s in recover(parse.graph, parse.text, [hist.graph]).recovered
               if s == "dialogue context"}
        ctx.append(int(got.get((intent, role)) == want))
        if intent in ("turn-on", "turn-off") and role == ":device":
            room = values.get((intent, ":location"), (None, None))[1]
            need = "on" if intent == "turn-off" else "off"
            others = [d for d in T.DEVICES if d != want][:3]
            where = (room + " ") if room else ""
            devices = {where + want: need} | {where + d: ("off" if need == "on" else "on") for d in others}
            got = {(i, r): v for i, r, v, s in recover(parse.graph, parse.text, [], devices).recovered
                   if s == "device state"}
            dev.append(int(got.get((intent, role)) == want))
    return {"dialogue context": rate_ci(sum(ctx), len(ctx)), "device state": rate_ci(sum(dev), len(dev))}


def latency(parse, texts: list[str], repeats: int = 1) -> dict:
    """Milliseconds per request of ``parse(text)``, one request at a time (what a live turn pays), after a
    warm-up."""
    for t in texts[:5]:
        parse(t)
    ms = []
    for _ in range(repeats):
        for t in texts:
            t0 = time.perf_counter()
            parse(t)
            ms.append(1000 * (time.perf_counter() - t0))
    return {"p50": stat_ci(ms, lambda x: np.percentile(x, 50)), "p95": stat_ci(ms, lambda x: np.percentile(x, 95)),
            "n": len(ms)}


def asr_texts(corpus, split: str, asr_model=None, n: int | None = None, beam: int = 8, context=(70, 13),
              log=print) -> list[str]:
    """The recogniser's transcripts of a split: beam ``beam`` n-best (cached, shared with ``bench rescoring``),
    the domain-LM reranker's pick (what the widgets show)."""
    from ..asr.recipe import MODELS as ASR_MODELS
    from ..rescoring.evaluation import domain_reranker, picks
    from ..rescoring.nbest import nbest_set
    asr_model = Path(asr_model or ASR_MODELS / "asr_small" / "model.nemo")
    ns = nbest_set(asr_model, corpus, split, n, beam, context, log=log)
    idx, _ = picks(domain_reranker(), ns.nbests)
    return [nb[k].text if nb else "" for nb, k in zip(ns.nbests, idx)]


def fit_fused(parser, corpus, split, rule, asr_model, n, log):
    """The fused cut detector (``acoustic.py``) fitted on the dev split's transcripts and streaming outputs; chosen
    for the recogniser's sets when its dev F1 beats the parser's alone at its own dev threshold."""
    from ..endpoint.arbitrator import ArbitratorProbs, load
    from ..endpoint.arbitrator import ARBITRATOR_DIR
    from ..endpoint.signals import split_signals
    from ..asr.recipe import default_recognizer
    from .acoustic import FusedCutDetector
    rec, _, _ = default_recognizer(asr_model, (70, 1))
    probs = ArbitratorProbs(load(ARBITRATOR_DIR))
    signals = {s: split_signals(rec, corpus, s, len(split[s])) for s in ("dev", "test", "test_unseen_text")}
    texts = asr_texts(corpus, "dev", asr_model, n=n, log=log)
    ok = [i for i, t in enumerate(texts) if t.split()]
    parses = parser.parse_batch([texts[i] for i in ok], parser.threshold_asr)
    truth = np.array([bool(split["dev"][i].get("truncated")) for i in ok])
    fused = FusedCutDetector.fit([p.p_cut for p in parses], [signals["dev"][i] for i in ok], probs, truth)
    alone = _f1(np.array([_detected(rule, p) for p in parses], float), truth.astype(float))
    fused.chosen = bool(fused.dev_f1 > alone)
    fused.dev_f1_parser_alone = float(alone)
    log(f"fused cut detector on dev: F1 {fused.dev_f1:.3f} (parser alone {alone:.3f}), delay {fused.delay_s} s")
    return fused, signals, probs


GOALS = {"detection F1, text": 0.95, "detection F1, ASR": 0.85, "missing role right": 0.90,
         "recovered filler right": 0.80, "parser p95 ms": 50.0}


def headline(r: dict) -> dict:
    s = r["sets"]
    h = {"detection F1, text": s["text"]["detection"]["f1"]["value"],
         "missing role right": s["text, every cut"]["missing_role_first"]["value"],
         "recovered filler right": s["text, every cut"]["recovery"]["dialogue context"]["value"],
         "parser p95 ms": r["latency_ms"]["p95"]["value"]}
    if "ASR" in s:
        h["detection F1, ASR"] = s["ASR"]["detection"]["f1"]["value"]
    h["met"] = {k: (v <= GOALS[k] if k.endswith("ms") else v >= GOALS[k]) for k, v in h.items() if k in GOALS}
    return h


def plot(result: dict, ax=None):
    """Detection F1, missing role right and Smatch (partial) per set, 95 % intervals."""
    import matplotlib.pyplot as plt
    sets = list(result["sets"])
    metrics = [("detection F1", lambda r: r["detection"]["f1"]), ("missing role right", lambda r: r["missing_role_first"]),
               ("Smatch, cut requests", lambda r: r["smatch_partial"]), ("Smatch, whole requests", lambda r: r["smatch_full"])]
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 3.8))
    else:
        fig = ax.figure
    w = 0.8 / len(metrics)
    for k, (name, get) in enumerate(metrics):
        v = [get(result["sets"][s]) for s in sets]
        x = np.arange(len(sets)) + (k - (len(metrics) - 1) / 2) * w
        y = np.array([c["value"] for c in v])
        err = np.array([[c["value"] - c["ci95"][0], c["ci95"][1] - c["value"]] for c in v]).T
        ax.bar(x, y, w, yerr=np.nan_to_num(err), capsize=2, label=name)
    ax.set_xticks(np.arange(len(sets)), sets, rotation=15)
    ax.set_ylim(0, 1.05)
    ax.axhline(0.95, color="k", lw=0.6, ls=":")
    ax.legend(fontsize=8, ncol=4, loc="lower center")
    ax.set_title("truncation repair: parser on text and through the ASR (test; 95 % intervals)")
    return fig
