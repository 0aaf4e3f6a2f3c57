"""Repairing truncated requests through a graph of semantic relations (Addlesee & Damonte, Interspeech 2023).

So far: the frames every template means (``schema``, ``frames``), each corpus utterance's gold graph in PENMAN,
partial when the end-pointer cut it (``graph``), Smatch, and what a graph says to do (``repair``: detect the cut,
ask for the missing role). The parser and recovery from context build on these.
"""
from .graph import GraphError, align, decode, encode, gold_graph, roles, smatch_counts, smatch_f1
from .repair import Diagnosis, ask, clarifying_question, diagnose
from .schema import SLOT_ROLES, Frame, SchemaError, frame_uses, frames

__all__ = ["GraphError", "align", "decode", "encode", "gold_graph", "roles", "smatch_counts", "smatch_f1",
           "Diagnosis", "ask", "clarifying_question", "diagnose", "SLOT_ROLES", "Frame", "SchemaError", "frame_uses",
           "frames"]
