"""N-best reranking: the recogniser's beam hypotheses rescored with a language model.

``LogLinearReranker``: acoustic score + lambda * LM log-probability + beta * words, lambda and beta chosen on dev
(``tune``), the classic shallow second pass; ``oracle_errors`` measures the most any reranker can recover.
``nbest`` caches a split's lists, ``mwer`` fine-tunes an LLM to rerank (LoRA, MWER loss) and loads it as a
``LogLinearReranker`` over the adapted model, ``bench`` measures them all with one accounting.
"""
from .loglinear import (LogLinearReranker, NBestError, choose_top_k, lm_scores, pruned, nbest_errors, oracle_errors, rerank_errors,
                        tune)

__all__ = ["LogLinearReranker", "NBestError", "choose_top_k", "lm_scores", "pruned", "nbest_errors", "oracle_errors", "rerank_errors", "tune"]
