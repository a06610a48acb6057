"""Evaluation: orchestration (evaluator), one decode for every cell (predict), compact per-sample summaries
(summaries) and one scoring module per test set (scoring/)."""
