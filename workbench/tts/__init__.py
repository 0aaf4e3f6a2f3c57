"""Large TTS (issue 17, in progress): the stage-direction vocabulary the tagger writes and the TTS reads
(``styles``), the assistant's responses with their deliveries (``responses``), their rendering by a synthesiser's own
controls (``render``) and the measurement of what a rendering did with each direction (``prosody``); the expressive
corpus (``corpus``), the front end that turns a tagged text into phonemes and tag symbols (``frontend``), the LTTS and
its baseline (``ltts``, ``recipe``), the stage-direction tagger (``tagger``), the selection of its directions on what
the LTTS realises (``tandem``) and the bench (``bench``). The learned encoding lives in ``workbench.codec``."""
from .styles import DELIVERIES, EVENTS, Piece, Segment, StageDirectionError, Style, parse, piece_ssml, pieces, plain

__all__ = ["DELIVERIES", "EVENTS", "Piece", "Segment", "StageDirectionError", "Style", "parse", "piece_ssml", "pieces",
           "plain"]
