"""The semantic frames of a request, from the corpus templates: intents, their roles, which are required.

Why from the templates: every corpus utterance is a filled template, so the truth of its graph is known by
construction: the frames from the template's annotation (``frames.ANNOTATION``), each role's filler from a slot.
The inventory (which roles an intent always has, which it sometimes has, their filler types) is computed from all
templates, the held-out ones included, so a parser can say which role a truncated request still owes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..data import templates as T
from .frames import ANNOTATION

# slot -> (role, type of its filler). AMR-like role labels; two slots may share a role (a city and a room are both
# a :location) and keep their types apart.
SLOT_ROLES: dict[str, tuple[str, str]] = {
    "room": (":location", "room"), "city": (":location", "city"), "place": (":destination", "place"),
    "device": (":device", "device"), "name": (":contact", "person"), "phone": (":phone", "phone-number"),
    "item": (":item", "item"), "items": (":item", "item-list"), "artist": (":artist", "artist"),
    "genre": (":genre", "genre"), "day": (":date", "day"), "date": (":date", "date"), "month": (":date", "month"),
    "time": (":time", "clock-time"), "task": (":task", "task"), "event": (":event", "event"),
    "question": (":topic", "question"), "n": (":quant", "number"), "big": (":quant", "number"),
    "unit": (":unit", "time-unit"), "pct": (":value", "percentage"), "temp": (":value", "temperature"),
    "code": (":code", "digits"),
}


class SchemaError(ValueError):
    """A template without an annotation, or an annotation that does not fit its template."""


@dataclass(frozen=True)
class RoleUse:
    """One role of one frame: filled by slot occurrence ``slot_index`` of the template, or a ``constant``."""
    role: str
    type: str
    slot_index: int | None = None
    constant: str | None = None


@dataclass(frozen=True)
class FrameUse:
    intent: str
    roles: tuple[RoleUse, ...]


@dataclass(frozen=True)
class Frame:
    """An intent's roles over all templates: ``required`` in every use of it, ``optional`` in some;
    ``types[role]``: the filler types seen."""
    intent: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    types: dict


def slots_of(template: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", template)


_FRAME = re.compile(r"([a-z][a-z-]*)(?:\(([^)]*)\))?")


def frame_uses(template: T.Template | str) -> tuple[FrameUse, ...]:
    """The frames a template's words mean, each role tied to its slot occurrence or constant."""
    text = template.text if isinstance(template, T.Template) else template
    if text not in ANNOTATION:
        raise SchemaError(f"template {text!r} has no annotation in workbench/repair/frames.py")
    slots = slots_of(text)
    taken: set[int] = set()
    out = []
    for m in _FRAME.finditer(ANNOTATION[text]):
        intent, args = m.group(1), m.group(2)
        items = [a.strip() for a in args.split(",")] if args is not None else [f"{s}@{k}" for s, k in _occurrences(slots)]
        roles = []
        for it in items:
            if it.startswith(":"):
                role, _, value = it.partition("=")
                if not value:
                    raise SchemaError(f"{text!r}: constant role {it!r} has no value")
                roles.append(RoleUse(role, "constant", None, value))
                continue
            name, _, k = it.partition("@")
            if name not in SLOT_ROLES:
                raise SchemaError(f"{text!r}: {name!r} is not a known slot")
            where = [i for i, s in enumerate(slots) if s == name]
            if k:
                idx = where[int(k) - 1] if int(k) <= len(where) else None
            else:
                idx = next((i for i in where if i not in taken), None)
            if idx is None or idx in taken:
                raise SchemaError(f"{text!r}: frame {intent} takes {it!r}, which the template has no free occurrence of")
            taken.add(idx)
            roles.append(RoleUse(*SLOT_ROLES[name], idx, None))
        out.append(FrameUse(intent, tuple(roles)))
    if not out:
        raise SchemaError(f"{text!r}: its annotation {ANNOTATION[text]!r} names no frame")
    return tuple(out)


def _occurrences(slots: list[str]):
    seen: dict[str, int] = {}
    for s in slots:
        seen[s] = seen.get(s, 0) + 1
        yield s, seen[s]


@lru_cache(maxsize=1)
def frames() -> dict[str, Frame]:
    """The frame of every intent over all templates (audio and held-out)."""
    uses: dict[str, list[set[str]]] = {}
    types: dict[str, dict[str, set[str]]] = {}
    for t in T.TEMPLATES:
        for f in frame_uses(t):
            uses.setdefault(f.intent, []).append({r.role for r in f.roles})
            for r in f.roles:
                types.setdefault(f.intent, {}).setdefault(r.role, set()).add(r.type)
    out = {}
    for it, sets in uses.items():
        req = set.intersection(*sets)
        out[it] = Frame(it, tuple(sorted(req)), tuple(sorted(set.union(*sets) - req)),
                        {r: tuple(sorted(v)) for r, v in types.get(it, {}).items()})
    return out
