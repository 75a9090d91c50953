"""An answer's body, read up to a bound whatever its encoding.

The client asks for the identity encoding (``ACCEPT_IDENTITY``). A Gateway, or a proxy before
it, that compresses its answer anyway is decoded here, from the raw bytes, into at most the
bound: a gzip bomb of a few hundred kilobytes that expands to gigabytes costs at most the bound
in memory, where decoding a whole network chunk at once (as ``httpx`` does) can give tens of
megabytes before any cap applies. ``gzip`` and ``deflate`` are decoded; any other encoding, or
compressed data that is corrupt, cannot be read (``None``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

ACCEPT_IDENTITY = {"Accept-Encoding": "identity"}
# zlib's window size plus 32: the decoder finds out by the header whether it is gzip or zlib
# (what "deflate" means in HTTP).
_GZIP_OR_ZLIB = zlib.MAX_WBITS | 32
DECODED = frozenset({"gzip", "x-gzip", "deflate"})


def read_body(chunks: Iterable[bytes], content_encoding: str, limit: int) -> bytes | None:
    """The body's first ``limit`` bytes once decoded, the rest never read nor decoded; None
    when its encoding is neither identity, gzip nor deflate, or its compressed data is corrupt."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c not in {"", "identity"}]
    if not codings:
        return _read_at_most(chunks, limit)
    if len(codings) != 1 or codings[0] not in DECODED:
        return None
    try:
        return _decode_at_most(chunks, zlib.decompressobj(_GZIP_OR_ZLIB), limit)
    except zlib.error:
        return None


def _read_at_most(chunks: Iterable[bytes], limit: int) -> bytes:
    """The first ``limit`` bytes; the rest is never read (the connection is dropped)."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def _decode_at_most(chunks: Iterable[bytes], decoder: zlib._Decompress, limit: int) -> bytes:
    """Each chunk decoded no further than ``limit`` bytes of output in all: the decoder keeps
    what it has not decoded yet (``unconsumed_tail``), never more than one chunk."""
    body = bytearray()
    for chunk in chunks:
        data = chunk
        # max_length is never 0 here: to zlib, 0 means "no limit".
        while data and len(body) < limit:
            body += decoder.decompress(data, limit - len(body))
            data = decoder.unconsumed_tail
        if len(body) >= limit or decoder.eof:
            break
    return bytes(body)
