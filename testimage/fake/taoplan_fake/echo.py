"""Build the JSON "echo" that the fake models reply with.

The echo tells a test what the REAL server handed to the model:
  model_path  the model the server loaded (specs.model_path / predict flag)
  prompt      the prompt kwarg the server passed to run_model_inference
  system      the system_prompt kwarg
  media       the media kwarg, in order; an inline ``data:`` URI is shown as
              "data:<mime>;<N> bytes" (N = size of the temp file the server decoded it into)
  sampling    every other kwarg the server forwarded (max_new_tokens, temperature, top_p, ...)
"""

import base64
import inspect
import os

_MEDIA_KEYS = ("video_url", "image_url")
_NOT_SAMPLING = ("media", "prompt", "system_prompt", "images", "videos", "text")


def request_body():
    """The JSON body of the current Flask request, or None outside a request."""
    try:
        from flask import has_request_context, request

        if not has_request_context():
            return None
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else None
    except Exception:
        return None


def original_media_uris():
    """Media URIs of the current request, extracted exactly like the real chat endpoint does."""
    body = request_body()
    if body is None:
        return None
    uris = []
    for msg in body.get("messages", []) or []:
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content", [])
            if isinstance(content, list):
                for item in content:
                    if not isinstance(item, dict):
                        continue
                    kind = item.get("type")
                    if kind in _MEDIA_KEYS:
                        url = (item.get(kind) or {}).get("url")
                        if url:
                            uris.append(url)
            break
    return uris


def _short_data_uri(uri: str, decoded_path=None) -> str:
    mime = uri[5:].split(";", 1)[0].split(",", 1)[0]
    size = None
    if decoded_path and os.path.isfile(decoded_path):
        size = os.path.getsize(decoded_path)
    if size is None:
        try:
            size = len(base64.b64decode(uri.split(",", 1)[1]))
        except Exception:
            size = -1
    return f"data:{mime};{size} bytes"


def describe_media(received):
    if received is None:
        return []
    if isinstance(received, str):
        received = [received]
    originals = original_media_uris()
    if originals is not None and len(originals) != len(received):
        originals = None
    out = []
    for index, item in enumerate(received):
        original = originals[index] if originals is not None else item
        if isinstance(original, str) and original.startswith("data:"):
            decoded = item if isinstance(item, str) and not item.startswith("data:") else None
            out.append(_short_data_uri(original, decoded))
        else:
            out.append(item if isinstance(item, (str, int, float, bool)) or item is None else repr(item))
    return out


def sampling_from(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in _NOT_SAMPLING}


def build(model_path, kwargs: dict, **extra) -> dict:
    echo = {
        "model_path": model_path,
        "prompt": kwargs.get("prompt", kwargs.get("text")),
        "system": kwargs.get("system_prompt"),
        "media": describe_media(kwargs.get("media")),
        "sampling": sampling_from(kwargs),
    }
    echo.update(extra)
    return echo


def find_caller_locals(function_name: str, required_local: str = "kwargs"):
    """Locals of the nearest caller frame running ``function_name`` (used by the HF shims to read
    exactly what the real HuggingFace server's run_model_inference received)."""
    frame = inspect.currentframe()
    try:
        frame = frame.f_back if frame else None
        while frame is not None:
            if frame.f_code.co_name == function_name and required_local in frame.f_locals:
                return dict(frame.f_locals)
            frame = frame.f_back
        return None
    finally:
        del frame
