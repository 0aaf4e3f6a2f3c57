"""Repairing truncated requests through a graph of semantic relations (Addlesee & Damonte, Interspeech 2023).

The frames every template means (``schema``, ``frames``); each corpus utterance's gold graph in PENMAN, partial
when the end-pointer cut it (``graph``), and Smatch; the parser trained here that reads a text or a transcript
into such a graph (``parser``); what a graph says to do (``repair``: detect the cut, recover a missing filler from
an earlier turn, the device state or a default, or ask for it); the end-pointer consulting the parser
(``endpointing``); and ``bench repair`` (``bench``).
"""
from .graph import GraphError, align, decode, draw, encode, gold_graph, roles, smatch_counts, smatch_f1
from .parser import GraphParser, Parse, ParseError, load_parser
from .repair import (DEFAULTS, Diagnosis, Repair, apply_answer, ask, clarifying_question, diagnose,
                     question_target, recover)
from .schema import SLOT_ROLES, Frame, SchemaError, frame_uses, frames

__all__ = ["GraphError", "align", "decode", "draw", "encode", "gold_graph", "roles", "smatch_counts", "smatch_f1",
           "GraphParser", "Parse", "ParseError", "load_parser", "DEFAULTS", "Diagnosis", "Repair", "apply_answer",
           "ask", "clarifying_question", "diagnose", "question_target", "recover", "SLOT_ROLES", "Frame",
           "SchemaError", "frame_uses", "frames"]
