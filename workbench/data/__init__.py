"""Corpora: the offline synthetic corpus, the user's own data, and public corpora, all as manifests."""
from .corpus import (DEFAULT_ROOT, SIZES, SPLITS, CorpusConfig, CorpusError, build_corpus, config_for,
                     corpus_name, corpus_with_more, ensure_corpus, make_speakers, side_talk_corpus)
from .dataset import (CorpusUnavailableError, Dataset, DatasetError, MissingFieldError, cutset_to_entries,
                      entries_to_cutset, is_clean, open_dataset, read_manifest, require_fields, write_manifest)
from .synth import Speaker, SynthesisError

__all__ = ["DEFAULT_ROOT", "SIZES", "SPLITS", "CorpusConfig", "CorpusError", "build_corpus", "config_for",
           "corpus_name", "corpus_with_more", "ensure_corpus", "make_speakers", "side_talk_corpus", "CorpusUnavailableError", "Dataset", "DatasetError",
           "MissingFieldError", "require_fields", "cutset_to_entries", "entries_to_cutset", "is_clean", "open_dataset", "read_manifest", "write_manifest",
           "Speaker", "SynthesisError"]
