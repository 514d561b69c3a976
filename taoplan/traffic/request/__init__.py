"""Talking to a running service: routing, body building and reply handling, then one thin sender.

routing, sampling, media, body and reply are pure rules over references/request.yaml, so they are
unit-tested without a server (media reads the local files it inlines). send is the only network
code; session adds state, the registry and the request log, and turns a failed exchange into a
one-line ``RequestError``. This module re-exports what the CLI, the client and the request log use.
"""

from __future__ import annotations

from taoplan.traffic.request.body import Prepared, build_body, prepare, prepare_for, rules_for
from taoplan.traffic.request.media import decode_data_uri
from taoplan.traffic.request.reply import (
    FAILED,
    FATAL,
    OK,
    RETRY,
    Answer,
    classify,
    failure_message,
    reply_content,
)
from taoplan.traffic.request.routing import Target, route, targets_from_registry
from taoplan.traffic.request.sampling import resolve_sampling
from taoplan.traffic.request.send import Exchange, backoff
from taoplan.traffic.request.session import Session, aperform, open_session, perform

__all__ = [
    "FAILED",
    "FATAL",
    "OK",
    "RETRY",
    "Answer",
    "Exchange",
    "Prepared",
    "Session",
    "Target",
    "aperform",
    "backoff",
    "build_body",
    "classify",
    "decode_data_uri",
    "failure_message",
    "open_session",
    "perform",
    "prepare",
    "prepare_for",
    "reply_content",
    "resolve_sampling",
    "route",
    "rules_for",
    "targets_from_registry",
]
