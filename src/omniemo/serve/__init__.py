"""`omniemo serve`: analysis as a service. ``create_app`` builds the FastAPI app (HTTP API + web page) over a job
store and worker processes that run the same Predictor as `omniemo analyze`."""

from omniemo.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
