"""Stand-ins for models, importable by worker processes: one that takes long (the worker-lifetime test needs
workers busy when the parent dies), one that reports the native threads its worker may use."""

import time


class _Slow:
    name = "slow"

    def predict(self, path, labels="dfew"):
        time.sleep(60)
        raise RuntimeError("never answers")


class SlowPredictors:
    def for_item(self, item):
        return _Slow()


class _Threads:
    name = "threads"

    def predict(self, path, labels="dfew"):
        from omniemo.perception.models import native_threads

        raise RuntimeError(f"threads {native_threads()}")


class ThreadsPredictors:
    def for_item(self, item):
        return _Threads()
