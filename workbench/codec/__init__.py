"""The learned speech encoding shared by TTS and speech-to-speech: a 25 Hz, 1.6 kbps codec over WORLD vocoder
parameters with a semantic first codebook (``model``), its recipe (``recipe``), the SoundStream peer it is
measured against (``soundstream``) and the bench (``bench``)."""
from .model import MODEL_DIR, CodecConfig, CodecError, SpeechCodec, load_codec

__all__ = ["MODEL_DIR", "CodecConfig", "CodecError", "SpeechCodec", "load_codec"]
