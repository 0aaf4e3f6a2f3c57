"""What to do with a (possibly partial) request graph: detect the cut, recover what else says, ask for the rest.

Detection reads the graph and the words: a role whose filler is ``unknown``, a role the intent's frame requires
but the graph lacks, or a last word that cannot end a request ("set a timer for", "add to my"). Recovery fills a
missing role from an earlier turn, the device state or a declared default, and says which. The clarifying
question is generated from the missing role (its wh-phrase, by the role and its filler type) and the intent's verb
phrase, never looked up per sentence: "For how long should I set a timer?", "Add what to your list?".
"""
from __future__ import annotations

from dataclasses import dataclass

from ..data import templates as T
from .graph import UNKNOWN, decode
from .schema import frames

# Words that leave a request hanging when they come last (prepositions, articles, possessives, conjunctions,
# a bare verb). Not "on", "off", "up", "it", "this", "like", "please": requests end on them ("is the fan still on",
# "what song is this"), nor "call" ("when is my conference call"); a test fills every template to keep it honest.
DANGLING = {"for", "to", "the", "a", "an", "my", "your", "at", "in", "and", "or", "of", "by", "with", "from",
            "into", "until", "about", "some", "is", "are", "be", "saying", "than", "not", "then", "also", "so",
            "what", "which", "when", "how", "will", "near", "before", "after", "set", "add", "turn", "play",
            "remind"}

# How to ask for a role: by (role, filler type) first, then by role alone.
_WH = {(":location", "room"): "in which room", (":location", "city"): "for which city",
       ":quant": "how many", (":value", "percentage"): "to what percentage",
       (":value", "temperature"): "to what temperature", ":location": "where", ":destination": "to where",
       ":device": "which device", ":contact": "who", ":phone": "which number", ":item": "what",
       ":artist": "which artist", ":genre": "what kind of music", ":date": "for which day", ":time": "at what time",
       ":task": "what", ":event": "which event", ":topic": "about what", ":unit": "in what unit",
       ":value": "to what value", ":code": "which code", ":direction": "up or down", ":op": "which operation"}

# The verb phrase of an intent, for the question ("Add what to your list?"); None: ask with the wh-phrase alone.
_VERB = {"turn-on": "turn on", "turn-off": "turn off", "set-timer": "set a timer", "set-alarm": "set an alarm",
         "add-to-list": "add {wh} to your list", "remove-from-list": "remove {wh} from your list",
         "remind": "remind you", "call": "call", "message": "send a message", "play-music": "play",
         "query-weather": "get the weather", "schedule": "schedule", "set-temperature": "set the temperature",
         "set-level": "set it", "extend-timer": "add time", "snooze": "snooze", "navigate": "get directions",
         "query-route": "check the route", "move-event": "move", "cancel-event": "cancel",
         "delete-reminder": "delete the reminder", "query-hours": "check the opening hours", "spell": "spell",
         "store-code": "save the code", "adjust": "adjust", "open": "open", "close": "close", "start": "start"}
# Roles the question is best asked about together (a duration is one question, not two).
_TOGETHER = {frozenset({":quant", ":unit"}): "for how long"}


@dataclass(frozen=True)
class Diagnosis:
    """What a graph says of its request: ``truncated``, ``missing``: [(intent, role)] in order, and why."""
    truncated: bool
    missing: tuple[tuple[str, str], ...]
    reasons: tuple[str, ...]


def frame_vars(g) -> list[str]:
    """The variables of a graph's frames, in order: its top, or a multi-sentence's parts."""
    inst = {v: c for v, _, c in g.instances()}
    if inst.get(g.top) != "multi-sentence":
        return [g.top]
    parts = sorted((int(r[4:]) if r[4:].isdigit() else 0, t) for s, r, t in g.edges()
                   if s == g.top and r.startswith(":snt"))
    return [t for _, t in parts]


def _frame_roles(penman_str: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(intent, [(role, filler concept)])] of each frame, in order."""
    g = decode(penman_str)
    inst = {v: c for v, _, c in g.instances()}
    return [(inst[v], [(r, inst.get(t, "")) for s, r, t in g.edges() if s == v]) for v in frame_vars(g)]


def diagnose(penman_str: str, text: str | None = None) -> Diagnosis:
    """Is the request cut off, and which roles does it owe? From the graph (unknown fillers, required roles of the
    intent's frame that are absent) and, with ``text``, its last word."""
    inv = frames()
    missing, reasons = [], []
    for intent, roles in _frame_roles(penman_str):
        said = {r for r, c in roles if c != UNKNOWN}
        for r, c in roles:
            if c == UNKNOWN:
                missing.append((intent, r))
                reasons.append(f"{intent} {r}: unknown filler")
        if intent in inv:
            for r in inv[intent].required:
                if r not in said and (intent, r) not in missing:
                    missing.append((intent, r))
                    reasons.append(f"{intent} {r}: required by the frame, absent")
    dangling = bool(text) and text.split()[-1] in DANGLING
    if dangling:
        reasons.append(f"last word {text.split()[-1]!r} leaves the request hanging")
    return Diagnosis(bool(missing) or dangling, tuple(missing), tuple(reasons))


def clarifying_question(intent: str, roles: list[str], filler_type: str | None = None) -> str:
    """A question naming the missing role(s) of ``intent`` in words, generated from the role and the intent's
    verb phrase: ("set-timer", [":quant", ":unit"]) -> "For how long should I set a timer?"."""
    roles = list(dict.fromkeys(roles))
    wh = _TOGETHER.get(frozenset(roles)) if len(roles) > 1 else None
    if wh is None:
        r = roles[0]
        wh = _WH.get((r, filler_type), _WH.get(r, "what"))
    verb = _VERB.get(intent)
    if verb is None:
        q = wh
    elif "{wh}" in verb:
        q = verb.format(wh=wh)
    elif roles == [":task"]:
        q = f"what should I {verb} to do"
    else:
        q = f"{wh} should I {verb}"
    return q[0].upper() + q[1:] + "?"


def question_target(penman_str: str, text: str | None = None) -> tuple[str, tuple[str, ...]] | None:
    """What the clarifying question asks for: (intent, roles) of the first frame that owes something, a duration
    asked as one (":quant", ":unit"); ("", ()) when the request is cut but owes no role; None when it is whole."""
    d = diagnose(penman_str, text)
    if not d.missing:
        return ("", ()) if d.truncated else None
    intent = d.missing[0][0]
    roles = [r for it, r in d.missing if it == intent]
    inv = frames().get(intent)
    has_unit = inv is not None and ":unit" in inv.required + inv.optional
    if ":quant" in roles and has_unit and set(roles) <= {":quant", ":unit"}:
        return intent, (":quant", ":unit")                                    # a duration: one question
    return intent, (roles[0],)


def ask(penman_str: str, text: str | None = None) -> str | None:
    """The clarifying question for the first frame that owes something (None when nothing is missing)."""
    target = question_target(penman_str, text)
    if target is None:
        return None
    intent, roles = target
    if not roles:
        return "Sorry, could you finish that?"
    if len(roles) > 1:
        return clarifying_question(intent, list(roles))
    types = frames()[intent].types.get(roles[0], ()) if intent in frames() else ()
    return clarifying_question(intent, list(roles), types[0] if len(types) == 1 else None)


# Defaults an intent's data declares for a role nobody said (type, value): what an assistant may assume aloud.
DEFAULTS: dict[tuple[str, str], tuple[str, str]] = {
    ("query-weather", ":date"): ("day", "today"), ("query-weather", ":location"): ("city", "here"),
    ("set-timer", ":unit"): ("time-unit", "minutes"), ("snooze", ":quant"): ("number", "nine"),
    ("snooze", ":unit"): ("time-unit", "minutes"), ("query-calendar", ":date"): ("day", "today"),
}
# What a device must be for an intent to apply to it ("a light that is on can only be turned off").
_NEEDS_STATE = {"turn-off": "on", "turn-on": "off"}


@dataclass(frozen=True)
class Repair:
    """A graph with what could be recovered filled in: ``recovered`` [(intent, role, value, source)], source one of
    "dialogue context", "device state", "default"; ``still_missing`` [(intent, role)]; the question for the rest."""
    graph: str
    recovered: tuple[tuple[str, str, str, str], ...]
    still_missing: tuple[tuple[str, str], ...]
    question: str | None


def _fillers(penman_str: str) -> dict[tuple[str, str], tuple[str, str]]:
    """{(intent, role): (type, value)} of every said filler of a graph."""
    g = decode(penman_str)
    inst = {v: c for v, _, c in g.instances()}
    vals = {v: t.strip('"') for v, r, t in g.attributes() if r == ":value"}
    out = {}
    for v, r, t in g.edges():
        if inst.get(v) != "multi-sentence" and inst.get(t) != UNKNOWN:
            out.setdefault((inst[v], r), (inst.get(t, ""), vals.get(t, inst.get(t, ""))))
    return out


def _fill(triples: list, g, inst: dict, fv: str, role: str, typ: str, value: str, prefix: str) -> list:
    """``triples`` with frame ``fv``'s ``role`` filled by ``value`` of type ``typ``: its ``unknown`` filler replaced,
    or a new edge (variable ``prefix`` + a number) when the graph lacks the role."""
    target = next((t for s, r, t in g.edges() if s == fv and r == role and inst.get(t) == UNKNOWN), None)
    if target is None:
        target = f"{prefix}{len(triples)}"
        triples = triples + [(fv, role, target)]
    else:
        triples = [tr for tr in triples if not (tr[0] == target and tr[1] == ":instance")]
    return triples + [(target, ":instance", typ), (target, ":value", f'"{value}"')]


def recover(penman_str: str, text: str | None = None, history: list[str] = (), devices: dict | None = None,
            defaults: dict | None = None) -> Repair:
    """Fill the roles a cut request owes from what else is known, and say where each came from: an earlier
    turn's graph with the same intent (``history``, most recent last: "set a timer for ten minutes" ... "and
    another one for"), the ``devices`` state ({device: "on"/"off"}: turning off needs a device that is on; only a
    single candidate, among those in the room said if one was, is taken), or the intent's declared default. What
    is still missing gets the clarifying question."""
    import penman
    d = diagnose(penman_str, text)
    g = decode(penman_str)
    inst = {v: c for v, _, c in g.instances()}
    said = _fillers(penman_str)
    defaults = DEFAULTS if defaults is None else defaults
    earlier = [_fillers(h) for h in reversed(list(history))]
    triples, recovered, missing = list(g.triples), [], []
    frame_var = {}
    for v in frame_vars(g):
        frame_var.setdefault(inst[v], v)
    implied: dict = {}          # roles a recovered filler also tells (a device's room)
    for intent, role in d.missing:
        found = implied.get((intent, role))
        if found is None:
            found = next(((f[(intent, role)], "dialogue context") for f in earlier if (intent, role) in f), None)
        if found is None and role == ":device" and intent in _NEEDS_STATE and devices:
            room = said.get((intent, ":location"), (None, None))[1]
            cands = [dev for dev, state in devices.items() if state == _NEEDS_STATE[intent]
                     and (room is None or dev.startswith(room + " ") or dev == room)]
            if len(cands) == 1:
                where = room or next((r for r in sorted(T.ROOMS, key=len, reverse=True)
                                      if cands[0].startswith(r + " ")), None)
                name = cands[0][len(where) + 1:] if where and cands[0].startswith(where + " ") else cands[0]
                found = (("device", name), "device state")
                if where and not room and (intent, ":location") in d.missing:
                    implied[(intent, ":location")] = (("room", where), "device state")
        if found is None and (intent, role) in defaults:
            found = (defaults[(intent, role)], "default")
        if found is None:
            missing.append((intent, role))
            continue
        (typ, value), source = found
        triples = _fill(triples, g, inst, frame_var.get(intent), role, typ, value, "r")
        recovered.append((intent, role, value, source))
    graph = penman.encode(penman.Graph(triples, top=g.top), indent=None)
    question = None
    if missing:
        question = ask(graph, None)
    elif d.truncated and not d.missing:
        question = ask(penman_str, text)
    return Repair(graph, tuple(recovered), tuple(missing), question)


def apply_answer(penman_str: str, answer: str, spans=()) -> str:
    """The graph after the user answered the clarifying question: the first frame that owes something gets each
    role that a span of the answer fills (``spans``, from ``GraphParser.answer_spans``: [(slot, words, first, end,
    partial)]) and that it has not said yet, owed or not ("next week" to "at what time?" fills the date and leaves
    the time owed); with no span at all, the answer's words fill the first owed role."""
    import penman
    from .schema import SLOT_ROLES
    target = question_target(penman_str)
    if not target or not target[1]:
        return penman_str
    intent, owed = target
    g = decode(penman_str)
    inst = {v: c for v, _, c in g.instances()}
    fv = next(v for v in frame_vars(g) if inst[v] == intent)
    triples = list(g.triples)
    fills = {}
    said = {r for s, r, t in g.edges() if s == fv and inst.get(t) != UNKNOWN}
    for slot, words, *_ in spans:
        role, typ = SLOT_ROLES[slot]
        if role not in fills and role not in said and words:    # an owed role, or one the user adds
            fills[role] = (typ, words)
    if not spans:
        types = frames()[intent].types.get(owed[0], ("value",)) if intent in frames() else ("value",)
        fills[owed[0]] = (types[0], " ".join(answer.split()))
    for role, (typ, words) in fills.items():
        triples = _fill(triples, g, inst, fv, role, typ, words, "a")
    return penman.encode(penman.Graph(triples, top=g.top), indent=None)
