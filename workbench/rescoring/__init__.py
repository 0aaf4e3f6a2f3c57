"""N-best reranking: the recogniser's beam hypotheses rescored with a language model.

``LogLinearReranker``: acoustic score + lambda * LM log-probability + beta * words, lambda and beta chosen on dev
(``tune``), the classic shallow second pass; ``oracle_errors`` measures the most any reranker can recover.
"""
from .loglinear import (LogLinearReranker, NBestError, lm_scores, nbest_errors, oracle_errors, rerank_errors,
                        tune)

__all__ = ["LogLinearReranker", "NBestError", "lm_scores", "nbest_errors", "oracle_errors", "rerank_errors", "tune"]
