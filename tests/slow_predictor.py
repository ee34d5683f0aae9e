"""A stand-in for a model that takes long: the worker-lifetime test needs workers busy when the parent dies."""

import time


class _Slow:
    name = "slow"

    def predict(self, path, labels="dfew"):
        time.sleep(60)
        raise RuntimeError("never answers")


class SlowPredictors:
    def for_item(self, item):
        return _Slow()
