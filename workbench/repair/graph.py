"""A request's semantic graph in PENMAN notation: the gold graph of a corpus utterance, partial when cut off.

The graph is AMR-like: the intent is the root concept, each role an edge to its filler, e.g.
``(f / set-timer :quant (x1 / number :value "ten") :unit (x2 / time-unit :value "minutes"))``. A request of several
frames is a ``multi-sentence`` with ``:snt1``, ``:snt2`` ... (as AMR writes one). A role the truncation left without
its filler is ``(u / unknown)``, the underspecified representation of Addlesee & Damonte (Interspeech 2023).
Graphs are written and read by the ``penman`` library and compared with ``smatch`` (the field's Smatch F1).
"""
from __future__ import annotations

import random
import re
from functools import lru_cache

import penman

from ..data import templates as T
from .schema import FrameUse, SchemaError, frame_uses, slots_of

UNKNOWN = "unknown"
_CLOSED = {"room": T.ROOMS, "device": T.DEVICES, "city": T.CITIES, "name": T.NAMES, "item": T.ITEMS,
           "artist": T.ARTISTS, "genre": T.GENRES, "day": T.DAYS, "task": T.TASKS, "event": T.EVENTS,
           "question": T.QUESTIONS, "unit": T.UNITS, "month": T.MONTHS, "place": T.PLACES}
_FILLER = "(?:um|uh|er|hmm)"


class GraphError(ValueError):
    """A text that does not fit its template, or a PENMAN string that does not parse."""


@lru_cache(maxsize=None)
def _pattern(template: str) -> re.Pattern:
    sep = f"(?: {_FILLER})* "           # a filler ("um") may sit in any pause, inside a value too
    parts = []
    for tok in template.split():
        m = re.fullmatch(r"\{(\w+)\}", tok)
        if m:
            values = _CLOSED.get(m.group(1))
            alt = ("|".join(sep.join(map(re.escape, v.split())) for v in sorted(values, key=len, reverse=True))
                   if values else r".+?")
            parts.append(f"({alt})")
        else:
            parts.append(re.escape(tok))
    return re.compile(f"^(?:{_FILLER} )*" + sep.join(parts) + f"(?: {_FILLER})*$")


def align(template: str, text: str) -> list[tuple[str, int, int]]:
    """Each slot occurrence's filler in ``text`` (a filled ``template``): (words, first token, end token), fillers
    ("um") inside a value dropped from its words but kept in the token span."""
    m = _pattern(template).match(text)
    if m is None:
        raise GraphError(f"{text!r} is not a filling of {template!r}")
    out = []
    for g in range(1, len(slots_of(template)) + 1):
        a, b = m.span(g)
        first = len(text[:a].split())
        value = text[a:b].split()
        out.append((" ".join(w for w in value if not re.fullmatch(_FILLER, w)), first, first + len(value)))
    return out


def frame_graph(frames: tuple[FrameUse, ...], values: list[tuple[str, int, int]] | None,
                said: int | None = None) -> penman.Graph:
    """The graph of ``frames`` with slot fillers ``values`` (from ``align``); ``said``: how many words of the
    text were spoken (a truncation): a slot filler not wholly said becomes ``unknown``; a later frame is dropped
    when the cut came before the previous frames' last filler ended (nothing of it was said), and kept, its
    unsaid fillers unknown, when the cut came after ("... and then remind me to")."""
    triples: list[tuple[str, str, str]] = []
    count = [0]

    def var(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    tops, prev_end = [], None
    for k, f in enumerate(frames):
        slot_roles = [r for r in f.roles if r.slot_index is not None]
        if said is not None and k > 0:
            # a later frame begins after the previous frames' last filler; nothing of it said: it is dropped
            begun = said > prev_end if prev_end is not None else \
                not slot_roles or any(values[r.slot_index][1] < said for r in slot_roles)
            if not begun:
                continue
        ends = [values[r.slot_index][2] for r in slot_roles]
        prev_end = max([prev_end or 0] + ends) if ends or prev_end is not None else None
        fv = var("f")
        triples.append((fv, ":instance", f.intent))
        for r in f.roles:
            x = var("x")
            if r.constant is not None:
                triples += [(fv, r.role, x), (x, ":instance", r.constant)]
            elif said is not None and values[r.slot_index][2] > said:
                triples += [(fv, r.role, x), (x, ":instance", UNKNOWN)]
            else:
                triples += [(fv, r.role, x), (x, ":instance", r.type), (x, ":value", f'"{values[r.slot_index][0]}"')]
        tops.append(fv)
    if len(tops) == 1:
        return penman.Graph(triples, top=tops[0])
    triples = [("m0", ":instance", "multi-sentence")] + [("m0", f":snt{i + 1}", t) for i, t in enumerate(tops)] + triples
    return penman.Graph(triples, top="m0")


def gold_graph(entry: dict) -> str:
    """The gold graph (one line of PENMAN) of a corpus entry: of its full request, partial when it was cut off
    (``truncated``: the spoken words are ``text``, the intended ones ``full_text``)."""
    template = entry.get("template")
    if not template:
        raise GraphError(f"entry {entry.get('id', '?')} has no template: its graph is not known")
    full = entry.get("full_text") or entry["text"]
    try:
        frames = frame_uses(template)
    except SchemaError as e:
        raise GraphError(str(e)) from None
    said = len(entry["text"].split()) if entry.get("truncated") else None
    return encode(frame_graph(frames, align(template, full), said))


def encode(g: penman.Graph) -> str:
    return penman.encode(g, indent=None)


def decode(s: str) -> penman.Graph:
    """A PENMAN string as a graph; a malformed one (what a generating parser may emit) is a ``GraphError``."""
    try:
        return penman.decode(s)
    except Exception as e:      # noqa: BLE001 - penman's DecodeError and its lexer's errors
        raise GraphError(f"malformed PENMAN {s[:80]!r}: {type(e).__name__}: {e}") from None


def smatch_counts(pred: str, gold: str, seed: int = 0) -> tuple[int, int, int]:
    """(matched triples, triples in ``pred``, triples in ``gold``) by the ``smatch`` library (its hill-climbing
    search seeded, so the same pair always scores the same). Sum them over a corpus for corpus-level Smatch."""
    import smatch
    for s in (pred, gold):
        decode(s)
    state = random.getstate()
    random.seed(seed)
    try:
        match, test, ref = smatch.get_amr_match(_one_line(pred), _one_line(gold))
    finally:
        smatch.match_triple_dict.clear()
        random.setstate(state)
    return int(match), int(test), int(ref)


def smatch_f1(pairs: list[tuple[str, str]]) -> float:
    """Corpus Smatch F1 of (predicted, gold) PENMAN pairs: matched triples summed over the corpus."""
    m = t = g = 0
    for pred, gold in pairs:
        a, b, c = smatch_counts(pred, gold)
        m, t, g = m + a, t + b, g + c
    return 2 * m / (t + g) if t + g else 1.0


def _one_line(s: str) -> str:
    return " ".join(s.split())


def roles(s: str) -> dict[str, list[str]]:
    """Each frame's roles and their fillers' concepts: {intent: [role...]}, ``unknown`` roles marked ``role?``."""
    g = decode(s)
    inst = {v: c for v, _, c in g.instances()}
    out: dict[str, list[str]] = {}
    for v, c in inst.items():
        if c == "multi-sentence" or not v.startswith("f"):
            continue
        out.setdefault(c, [])
        for src, role, tgt in g.edges():
            if src == v:
                out[c].append(role + ("?" if inst.get(tgt) == UNKNOWN else ""))
    return out


def draw(s: str, ax=None, title: str = ""):
    """The graph drawn as a tree (networkx layout, matplotlib): concepts as nodes, roles on the edges, an
    ``unknown`` filler in red, a filler's words under its concept."""
    import matplotlib.pyplot as plt
    import networkx as nx
    g = decode(s)
    inst = {v: c for v, _, c in g.instances()}
    vals = {v: t.strip('"') for v, r, t in g.attributes() if r == ":value"}
    G = nx.DiGraph()
    for v, c in inst.items():
        G.add_node(v, label=c + (f'\n"{vals[v]}"' if v in vals else ""))
    for a, r, b in g.edges():
        G.add_edge(a, b, role=r)
    depth = nx.single_source_shortest_path_length(G, g.top)
    for v in G:
        G.nodes[v]["layer"] = depth.get(v, 0)
    pos = nx.multipartite_layout(G, subset_key="layer", align="horizontal", scale=-1)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 1.8 * max(1, len(G) - 1)), 1.6 + 1.2 * (max(depth.values()) + 1)))
    colors = ["#f4a6a6" if inst[v] == UNKNOWN else "#cfe3f7" for v in G]
    nx.draw_networkx_nodes(G, pos, ax=ax, node_color=colors, node_size=2600, node_shape="o")
    nx.draw_networkx_labels(G, pos, {v: G.nodes[v]["label"] for v in G}, ax=ax, font_size=8)
    nx.draw_networkx_edges(G, pos, ax=ax, arrows=True, node_size=2600)
    nx.draw_networkx_edge_labels(G, pos, nx.get_edge_attributes(G, "role"), ax=ax, font_size=8)
    ax.set_title(title, fontsize=9)
    ax.margins(x=0.3, y=0.35)              # room for the nodes' circles and their words at the edges
    ax.axis("off")
    return ax
