"""A multipart upload streamed to disk with its size enforced while it arrives (never spooled whole first)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path


class UploadTooLarge(Exception):
    pass


class BadUpload(ValueError):
    pass


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    path: Path | None = None
    size: int = 0


def safe_name(name: str | None) -> str:
    """The client's file name reduced to a plain base name (it names the clip in messages, never a path)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .")
    return base[:120] or "upload"


async def receive_upload(request, folder: Path, max_bytes: int, file_field: str = "file") -> Upload:
    """Parse ``request``'s multipart body: form fields into memory (small), the file part into ``folder``."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise BadUpload("send the clip as multipart/form-data (a 'file' field)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadTooLarge()
    upload = Upload()
    state = {"headers": {}, "name": "", "field": None, "value": bytearray(), "handle": None, "header": b""}

    def on_header_field(data, start, end):
        state["header"] += data[start:end]

    def on_header_value(data, start, end):
        key = state["header"].decode("latin-1").lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end():
        state["header"] = b""

    def on_headers_finished():
        disposition = state["headers"].get("content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        state["field"] = name
        if name == file_field and b"filename" in options:
            upload.filename = safe_name(options[b"filename"].decode("utf-8", "replace"))
            upload.path = folder / f"upload{Path(upload.filename).suffix.lower()[:10]}"
            state["handle"] = open(upload.path, "wb")
        else:
            state["value"] = bytearray()

    def on_part_data(data, start, end):
        chunk = data[start:end]
        if state["handle"] is not None:
            upload.size += len(chunk)
            if upload.size > max_bytes:
                raise UploadTooLarge()
            state["handle"].write(chunk)
        else:
            state["value"] += chunk
            if len(state["value"]) > 64 * 1024:
                raise BadUpload(f"form field {state['field']!r} is too long")

    def on_part_end():
        if state["handle"] is not None:
            state["handle"].close()
            state["handle"] = None
        elif state["field"]:
            upload.fields[state["field"]] = state["value"].decode("utf-8", "replace")
        state["headers"] = {}

    parser = MultipartParser(params[b"boundary"], {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (UploadTooLarge, BadUpload):
        raise
    except Exception as exc:  # a malformed body
        raise BadUpload(f"malformed multipart body ({type(exc).__name__})") from None
    finally:
        if state["handle"] is not None:
            state["handle"].close()
    if upload.path is None or not upload.path.exists():
        raise BadUpload("no file in the upload (send it in a field named 'file')")
    os.chmod(upload.path, 0o600)
    return upload
