"""Repairing truncated requests through a graph of semantic relations (Addlesee & Damonte, Interspeech 2023).

So far: the frames every template means (``schema``, ``frames``), each corpus utterance's gold graph in PENMAN,
partial when the end-pointer cut it (``graph``), Smatch, and what a graph says to do (``repair``: detect the cut,
recover a missing filler from an earlier turn, the device state or a default, or ask for it). The parser
builds on these.
"""
from .graph import GraphError, align, decode, encode, gold_graph, roles, smatch_counts, smatch_f1
from .repair import DEFAULTS, Diagnosis, Repair, ask, clarifying_question, diagnose, recover
from .schema import SLOT_ROLES, Frame, SchemaError, frame_uses, frames

__all__ = ["GraphError", "align", "decode", "encode", "gold_graph", "roles", "smatch_counts", "smatch_f1",
           "DEFAULTS", "Diagnosis", "Repair", "ask", "clarifying_question", "diagnose", "recover", "SLOT_ROLES", "Frame", "SchemaError", "frame_uses",
           "frames"]
