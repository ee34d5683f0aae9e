"""Scoring: metrics (WAR, UAR, recall, confusion, bootstrap intervals) and prediction files."""

from omniemo.eval.metrics import PROTOCOLS, Scores, score
from omniemo.eval.predictions import PredictionFileError, read_predictions, score_file

__all__ = ["PROTOCOLS", "PredictionFileError", "Scores", "read_predictions", "score", "score_file"]
