"""Predictors for the server tests, importable by the worker processes (``ServeSettings.factory``)."""

import os
import time

from omniemo.prediction import Prediction


class _Answer:
    progress = None

    def __init__(self, options):
        self.options = options

    def predict(self, path, labels="dfew"):
        from omniemo import probe

        info = probe(path)  # a real decode of the headers, as a model would
        if self.progress:
            self.progress(info.duration / 2, info.duration)
        # the label set steers the double: ravdess crashes the worker (as a native crash would), mafw is slow
        if labels == "ravdess":
            os._exit(3)
        if labels == "mafw":
            time.sleep(3)
        mode = os.path.basename(path)
        for name in ("voice", "face"):  # the server's --adapt profiles reached the worker's predictor
            profile = self.options.get(f"{name}_profile")
            if profile is not None:
                mode += f", the {name} {profile.describe()}"
        return Prediction(path=str(path), label="happy", probabilities={"happy": 0.7, "sad": 0.3},
                          output="<think>a test</think>\n<answer>happy</answer>",
                          reasoning=[{"text": f"a test of {mode}", "cues": []}], backend="double")


def fake(options, adaptation=None):
    return _Answer({**options, **(adaptation or {})})
