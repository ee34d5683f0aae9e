"""omniemo: explainable omni-modal emotion recognition, offline and CPU-first.

Entry points:
    omniemo.load_clip(path)   decode a clip (frames + 16 kHz mono audio)
    omniemo.probe(path)       media facts without decoding
"""

from omniemo.media import Clip, MediaError, MediaInfo, load_clip, probe

__version__ = "0.1.0"

__all__ = ["Clip", "MediaError", "MediaInfo", "load_clip", "probe", "__version__"]
