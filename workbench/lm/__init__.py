"""Language models in one place: load by name or path (the packaged SmolLM2 offline), score texts, and the
small domain LM trained here. Shared by n-best reranking, truncation repair, the tagger and speech-to-speech."""
from ..hub import ModelNotAvailableError
from .load import CACHE, SMOLLM2, CausalLM, convert_gguf, load_causal_lm, smollm2_folder, smollm2_gguf
from .score import HeadLM, LMInputError, TextScore, encode, head_scores, score_texts

__all__ = ["CACHE", "SMOLLM2", "CausalLM", "HeadLM", "head_scores", "LMInputError", "ModelNotAvailableError", "TextScore", "convert_gguf",
           "encode", "load_causal_lm", "score_texts", "smollm2_folder", "smollm2_gguf"]
