"""Media types of stored files, data: URIs and image responses (original or web rendition)."""

from __future__ import annotations

import base64

from fastapi.responses import Response

from faceledger.faces.decode import web_rendition

OCTET_STREAM = "application/octet-stream"
IMAGE_TYPES: dict[str, str] = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
    "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff", "webp": "image/webp",
    "pnm": "image/x-portable-anymap",
}


def media_type(name: str, default: str = OCTET_STREAM) -> str:
    """The media type of a stored file, by its extension (``default`` when unknown)."""
    return IMAGE_TYPES.get(name.rsplit(".", 1)[-1].lower(), default)


def data_uri(data: bytes, media: str) -> str:
    """Bytes inline, for pages whose viewers may not load the face API's files."""
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


def image_response(data: bytes, name: str, *, web: bool, max_pixels: int) -> Response:
    """The stored image as is, or (``web``) in a format browsers can show (a PNG of TIFF or
    Netpbm originals)."""
    if web:
        shown, media = web_rendition(data, max_pixels=max_pixels)
        return Response(shown, media_type=media)
    return Response(data, media_type=media_type(name))
