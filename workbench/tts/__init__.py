"""Large TTS (issue 17, in progress): so far the stage-direction vocabulary the tagger writes and the TTS reads
(``styles``). The learned encoding it will write lives in ``workbench.codec``."""
from .styles import DELIVERIES, EVENTS, Segment, StageDirectionError, Style, parse, plain, to_ssml

__all__ = ["DELIVERIES", "EVENTS", "Segment", "StageDirectionError", "Style", "parse", "plain", "to_ssml"]
