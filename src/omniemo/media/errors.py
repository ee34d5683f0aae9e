"""One error hierarchy for everything that can go wrong reading a media file.

Every message names the file and the cause, so a batch log line is enough to act on.
"""

from __future__ import annotations

from pathlib import Path


class MediaError(Exception):
    """Base class: a media file could not be used. ``path`` and ``cause`` are kept for reports."""

    kind = "media_error"

    def __init__(self, path: str | Path, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class MediaNotFoundError(MediaError):
    kind = "not_found"


class EmptyMediaError(MediaError):
    kind = "empty"


class CorruptMediaError(MediaError):
    """Not a media file, an unreadable container, or a stream that fails to decode."""

    kind = "corrupt"


class NoMediaStreamsError(MediaError):
    """A container that holds neither a video nor an audio stream."""

    kind = "no_streams"


class MediaTooLargeError(MediaError):
    """Longer than the max-duration guard, or the requested frames would not fit the memory budget."""

    kind = "too_large"
