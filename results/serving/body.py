"""The image in an HTTP request to POST /predict: a raw ``image/*`` body or multipart form field ``file``.

Each problem is an :class:`~artifact.preprocess.ImageRejected` with the 4xx status to answer and a one-line
message naming it: 415 for a content type that is neither, 400 for an empty body, a form without the
field or a broken form, 413 for a body above the byte limit (told by Content-Length before anything is
read, or found while reading).
"""

from __future__ import annotations

from email.message import Message
from typing import AsyncIterator, Optional

from artifact.preprocess import ImageRejected

FIELD = "file"
"""Multipart form field that holds the image."""
FORM_OVERHEAD = 16 * 1024
"""Bytes a multipart body may carry beyond the image itself (boundaries, part headers, other small fields)."""
HOW = (f"send the image bytes with Content-Type image/* (e.g. image/png) or a multipart/form-data form with "
       f"field '{FIELD}'")


def _parse_header(value: str) -> tuple[str, dict[str, str]]:
    """(lower-case value, parameters) of a MIME header such as Content-Type or Content-Disposition."""
    message = Message()
    message["x"] = value
    params = message.get_params(header="x") or []
    return (params[0][0].lower() if params else ""), {k.lower(): v for k, v in params[1:]}


def body_limit(content_type: Optional[str], max_bytes: int) -> int:
    """Largest body accepted for this content type; 415 for a content type that carries no image."""
    kind, _ = _parse_header(content_type or "")
    if kind.startswith("image/"):
        return max_bytes
    if kind == "multipart/form-data":
        return max_bytes + FORM_OVERHEAD
    what = f"Content-Type {kind}" if kind else "a request without Content-Type"
    raise ImageRejected(f"{what} is not accepted: {HOW}", 415)


async def read_limited(chunks: AsyncIterator[bytes], content_length: Optional[str], limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed ``limit`` bytes."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise ImageRejected(f"request body of {int(content_length)} bytes is above the limit of {limit} bytes", 413)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise ImageRejected(f"request body is above the limit of {limit} bytes", 413)
    return bytes(body)


def image_bytes(content_type: Optional[str], body: bytes, max_bytes: int) -> bytes:
    """The encoded image in a request body (its content type already accepted by :func:`body_limit`)."""
    kind, params = _parse_header(content_type or "")
    if kind == "multipart/form-data":
        body = multipart_field(body, params.get("boundary", ""), FIELD)
    if not body:
        raise ImageRejected(f"empty image (0 bytes): {HOW}")
    if len(body) > max_bytes:
        raise ImageRejected(f"image of {len(body)} bytes is above the limit of {max_bytes} bytes", 413)
    return body


def multipart_field(body: bytes, boundary: str, name: str) -> bytes:
    """The content of form field ``name`` of a multipart/form-data body (RFC 7578), byte for byte."""
    if not boundary:
        raise ImageRejected("multipart/form-data without a boundary parameter in its Content-Type")
    if not body:
        raise ImageRejected(f"empty request body: {HOW}")
    delimiter = b"--" + boundary.encode("latin-1")
    parts = body.split(delimiter)
    if len(parts) < 3:
        raise ImageRejected("malformed multipart/form-data body (its boundary does not delimit any part)")
    names = []
    for part in parts[1:-1]:  # before the first delimiter: preamble; after the last ("--"): epilogue
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise ImageRejected("malformed multipart/form-data part (no blank line after its headers)")
        disposition = ""
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value.strip()
        field = _parse_header(disposition)[1].get("name")
        names.append(str(field))
        if field == name:
            # The CRLF before the next delimiter belongs to the delimiter, not to the content.
            return content[:-2] if content.endswith(b"\r\n") else content
    raise ImageRejected(f"multipart/form-data form has no field '{name}' (fields: {', '.join(names) or 'none'})")
