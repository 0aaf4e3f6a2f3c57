"""Large TTS (issue 17, in progress): the stage-direction vocabulary the tagger writes and the TTS reads
(``styles``), the assistant's responses with their deliveries (``responses``), their rendering by a synthesiser's own
controls (``render``) and the measurement of what a rendering did with each direction (``prosody``). The learned
encoding it will write lives in ``workbench.codec``."""
from .styles import DELIVERIES, EVENTS, Piece, Segment, StageDirectionError, Style, parse, piece_ssml, pieces, plain

__all__ = ["DELIVERIES", "EVENTS", "Piece", "Segment", "StageDirectionError", "Style", "parse", "piece_ssml", "pieces",
           "plain"]
