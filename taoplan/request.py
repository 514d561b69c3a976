"""Talking to a running service: routing, body building and reply handling, then one thin sender.

Routing, sampling, body and reply rules are pure functions over references/request.yaml, so they
are unit-tested without a server. ``send``/``asend`` are the only network code; ``perform``/``aperform``
add the request log and turn a failed exchange into a one-line ``RequestError``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from taoplan.errors import RequestError

if TYPE_CHECKING:
    from taoplan.references import ArchRequest, ChatRefs, References, RequestRefs, SamplingField
    from taoplan.requestlog import RequestLog
    from taoplan.state import State

# The server's own `_reject_cloud_uri` list (nvidia-tao-core 7.3.0): it cannot authenticate to a cloud.
PASS_THROUGH_SCHEMES = ("http", "https")


# ------------------------------------------------------------------------------------------ routing


@dataclass(frozen=True)
class Target:
    """One service a request can go to, from state.json or from the skill's registry."""

    job_id: str
    arch: str
    name: str | None = None
    host_url: str | None = None
    started_at: str | None = None
    platform: str | None = None
    num_gpus: int = 1
    source: str = "state"  # state | registry

    def describe(self) -> str:
        return (
            f"name={self.name or '-'} job_id={self.job_id} started_at={self.started_at or '-'} "
            f"host_url={self.host_url or '-'}"
        )


def targets_from_state(state: State) -> list[Target]:
    out = []
    for record in state.services.values():
        gpus = record.spec.get("num_gpus") if isinstance(record.spec, dict) else None
        out.append(
            Target(
                job_id=record.job_id,
                arch=record.network_arch,
                name=record.name,
                host_url=record.host_url,
                started_at=record.started_at,
                platform=record.platform,
                num_gpus=gpus if isinstance(gpus, int) and gpus > 0 else 1,
                source="state",
            )
        )
    return sorted(out, key=lambda t: (t.name or "", t.job_id))


def targets_from_registry(entries: Mapping[str, Mapping[str, Any]]) -> list[Target]:
    """Registry entries (written by taoplan or by the TAO skill); the skill records no GPU count."""
    out = []
    for key, entry in entries.items():
        job_id = str(entry.get("job_id") or key)
        gpus = entry.get("num_gpus")
        out.append(
            Target(
                job_id=job_id,
                arch=str(entry.get("network_arch") or "?"),
                name=entry.get("service") if isinstance(entry.get("service"), str) else None,
                host_url=entry.get("host_url") if isinstance(entry.get("host_url"), str) else None,
                started_at=str(entry["started_at"]) if entry.get("started_at") else None,
                platform=entry.get("platform") if isinstance(entry.get("platform"), str) else None,
                num_gpus=gpus if isinstance(gpus, int) and gpus > 0 else 1,
                source="registry",
            )
        )
    return out


def _listing(header: str, candidates: Sequence[Target]) -> RequestError:
    lines = [header] + [f"  {t.describe()}" for t in candidates]
    return RequestError(header, lines=lines)


def route(
    services: Sequence[Target],
    registry: Sequence[Target],
    *,
    name: str | None = None,
    job_id: str | None = None,
    arch: str | None = None,
    valid_archs: Iterable[str] = (),
) -> Target:
    """Pick the target: job id, then name, then arch, then the only service. Never "latest".

    ``services`` are this project's (state.json). ``registry`` entries are reachable by job id only,
    so services of other projects or of the skill never make a name/arch/no-hint choice ambiguous.
    """
    archs = list(valid_archs)
    if arch is not None and archs and arch not in archs:
        raise RequestError(f"unknown arch {arch!r}; valid: {', '.join(archs)}")
    if job_id is not None:
        found = next((t for t in services if t.job_id == job_id), None)
        found = found or next((t for t in registry if t.job_id == job_id), None)
        if found is None:
            raise RequestError(f"no service with job id {job_id} in state or in the registry")
        if name is not None and found.name != name:
            raise RequestError(f"job id {job_id} is service {found.name or '-'}, not {name}")
        if arch is not None and found.arch != arch:
            raise RequestError(f"job id {job_id} runs {found.arch}, not {arch}")
        return found
    if name is not None:
        found = next((t for t in services if t.name == name), None)
        if found is None:
            known = ", ".join(t.name or t.job_id for t in services) or "none"
            raise RequestError(
                f"no service named {name!r} in state (known: {known}); run 'taoplan apply' to start it"
            )
        if arch is not None and found.arch != arch:
            raise RequestError(f"service {name} runs {found.arch}, not {arch}")
        return found
    if arch is not None:
        matches = [t for t in services if t.arch == arch]
        if not matches:
            hint = "; a service started outside taoplan can be targeted with --job-id" if registry else ""
            raise RequestError(f"no service with arch {arch} in state{hint}")
        if len(matches) > 1:
            raise _listing(f"{len(matches)} services run {arch}; choose one by NAME or --job-id:", matches)
        return matches[0]
    if not services:
        hint = " (or --job-id for a service started outside taoplan)" if registry else ""
        raise RequestError(f"no services in state; run 'taoplan apply' first{hint}")
    if len(services) > 1:
        raise _listing(
            f"{len(services)} services are running; choose one by NAME, --arch or --job-id:", services
        )
    return services[0]


# ------------------------------------------------------------------------------------------ sampling


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _describe_field(name: str, spec: SamplingField, flag: Callable[[str], str]) -> str:
    bounds = _bounds(spec)
    extra = f", {bounds}" if bounds else ""
    return f"{flag(name)} ({spec.type}, default {spec.default!r}{extra})"


def _bounds(spec: SamplingField) -> str:
    if spec.min is not None and spec.max is not None:
        return f"{_num(spec.min)}..{_num(spec.max)}"
    if spec.min is not None:
        return f">= {_num(spec.min)}"
    if spec.max is not None:
        return f"<= {_num(spec.max)}"
    return ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_value(
    name: str, spec: SamplingField, value: Any, flag: Callable[[str], str] = flag_name, arch: str = ""
) -> str | None:
    """Why ``value`` is not acceptable for this field, or None. Values are never clamped."""
    kinds: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,)}
    if isinstance(value, bool) or not isinstance(value, kinds[spec.type]):
        return f"{flag(name)} must be {spec.type}, got {value!r}"
    if spec.type == "str":
        return None
    number = float(cast(float, value))
    if not math.isfinite(number):
        return f"{flag(name)} must be a finite number, got {value!r}"
    if (spec.min is not None and number < spec.min) or (spec.max is not None and number > spec.max):
        where = f" for {arch}" if arch else ""
        return f"{flag(name)} {value!r} is out of range{where} ({_bounds(spec)}); values are never clamped"
    return None


def cross_check(
    arch: str, rules: RequestRefs, given: Mapping[str, Any], flag: Callable[[str], str] = flag_name
) -> list[str]:
    """Fields meant for another arch, and values of the wrong type or out of range."""
    fields = rules.archs[arch].sampling
    problems = []
    for name, value in given.items():
        if name not in fields:
            owners = [a for a, r in rules.archs.items() if name in r.sampling]
            where = f"it applies to {', '.join(owners)}" if owners else "no arch takes it"
            takes = ", ".join(flag(f) for f in fields)
            problems.append(f"{flag(name)} does not apply to {arch} ({where}); {arch} takes {takes}")
            continue
        problem = check_value(name, fields[name], value, flag, arch)
        if problem:
            problems.append(problem)
    return problems


Ask = Callable[[str, "SamplingField"], Any]


def resolve_sampling(
    arch: str,
    rules: RequestRefs,
    given: Mapping[str, Any],
    *,
    accept_defaults: bool = False,
    ask: Ask | None = None,
    flag: Callable[[str], str] = flag_name,
) -> dict[str, Any]:
    """Every applicable sampling field gets a value the user chose: given, answered, or defaults accepted.

    Order of sources: explicit values; else ``accept_defaults``; else ``ask`` (a terminal prompt);
    else an error listing the missing fields and their defaults. Nothing is filled in silently.
    """
    problems = cross_check(arch, rules, given, flag)
    if problems:
        raise RequestError(problems[0], lines=problems)
    fields = rules.archs[arch].sampling
    values = dict(given)
    missing = [name for name in fields if name not in values]
    if not missing:
        return {name: values[name] for name in fields}
    if accept_defaults:
        values.update({name: fields[name].default for name in missing})
    elif ask is not None:
        for name in missing:
            values[name] = ask(name, fields[name])
            problem = check_value(name, fields[name], values[name], flag, arch)
            if problem:
                raise RequestError(problem)
    else:
        listed = ", ".join(_describe_field(name, fields[name], flag) for name in missing)
        raise RequestError(
            f"{arch} needs sampling values and there is no terminal to ask: {listed}; "
            f"give them, or accept these defaults explicitly with {flag('accept_defaults')}"
        )
    return {name: values[name] for name in fields}


# ------------------------------------------------------------------------------------------ media


@dataclass(frozen=True)
class MediaItem:
    kind: str  # image | video
    url: str  # what is sent: an http(s) URL or a data: URI
    source: str  # what the user gave (a path or a URL)
    mime: str | None = None
    size: int | None = None  # bytes of a local file


def _mime_for(kind: str, path: str, media: Mapping[str, Mapping[str, str]]) -> str | None:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return media.get(kind, {}).get(ext)


def _extensions(kind: str, media: Mapping[str, Mapping[str, str]]) -> str:
    return ", ".join("." + e for e in media.get(kind, {}))


def resolve_media(
    kind: str, ref: str, arch: str, rules: RequestRefs, flag_of: Callable[[str], str] = flag_name
) -> MediaItem:
    """One --image/--video: an http(s) URL passes through; a local file becomes a data: URI."""
    arch_rules = rules.archs[arch]
    flag = flag_of(kind)
    if kind not in arch_rules.media_kinds:
        raise RequestError(f"{arch} does not take {kind}s ({flag} {ref})")
    lowered = ref.lower()
    if lowered.startswith(tuple(rules.chat.cloud_prefixes)):
        raise RequestError(
            f"{flag} {ref}: cloud-storage URIs are not supported by the TAO inference service; "
            "give a local file or an http(s) URL"
        )
    if lowered.startswith("data:"):
        return _given_data_uri(kind, ref, arch, arch_rules, rules, flag)
    scheme = urlsplit(ref).scheme.lower() if "://" in ref else ""
    if scheme:
        if scheme not in PASS_THROUGH_SCHEMES:
            raise RequestError(
                f"{flag} {ref}: unsupported scheme {scheme}://; give a local file or an http(s) URL"
            )
        path = urlsplit(ref).path
        mime = _mime_for(kind, path, rules.media)
        if mime is None:
            raise RequestError(
                f"{flag} {_safe_url(ref)}: the URL's path must end in one of {_extensions(kind, rules.media)}"
            )
        return MediaItem(kind, ref, ref, mime)
    return _local_file(kind, ref, arch, arch_rules, rules, flag)


def _given_data_uri(
    kind: str, ref: str, arch: str, arch_rules: ArchRequest, rules: RequestRefs, flag: str
) -> MediaItem:
    if not arch_rules.accepts_data_uri:
        raise RequestError(f"{flag}: {arch} does not accept data: URIs; give an http(s) URL")
    head, sep, payload = ref.partition(",")
    mime = head[5:].split(";", 1)[0].lower()
    if not sep or not head.endswith(";base64"):
        raise RequestError(f"{flag}: a data: URI must look like data:<mime>;base64,<payload>")
    if mime not in rules.media.get(kind, {}).values():
        allowed = ", ".join(sorted(set(rules.media.get(kind, {}).values())))
        raise RequestError(f"{flag}: media type {mime} is not supported for {kind}s (allowed: {allowed})")
    size = len(payload) * 3 // 4
    if size > rules.chat.max_media_bytes:
        raise RequestError(
            f"{flag}: the data: URI holds {size} bytes; the limit is {rules.chat.max_media_bytes}"
        )
    return MediaItem(kind, ref, f"data:{mime};base64,…", mime, size)


def _local_file(
    kind: str, ref: str, arch: str, arch_rules: ArchRequest, rules: RequestRefs, flag: str
) -> MediaItem:
    path = Path(ref).expanduser()
    mime = _mime_for(kind, path.name, rules.media)
    if mime is None:
        raise RequestError(
            f"{flag} {ref}: unsupported {kind} type; {arch} takes {_extensions(kind, rules.media)}"
        )
    if not arch_rules.accepts_data_uri:
        raise RequestError(
            f"{flag} {ref}: {arch} does not accept inline data: URIs, so a local file cannot be sent; "
            "give an http(s) URL the service can fetch"
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise RequestError(f"{flag} {ref}: no such file") from None
    except OSError as exc:
        raise RequestError(f"{flag} {ref}: {exc.strerror}") from None
    if not path.is_file():
        raise RequestError(f"{flag} {ref}: not a regular file")
    limit = rules.chat.max_media_bytes
    if size > limit:
        raise RequestError(f"{flag} {ref}: {size} bytes is over the {limit // 2**20} MiB media limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RequestError(f"{flag} {ref}: {exc.strerror}") from None
    url = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return MediaItem(kind, url, ref, mime, size)


def _safe_url(url: str) -> str:
    """A URL without user info or query string: those may carry credentials (presigned URLs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{query}"


# ------------------------------------------------------------------------------------------ body


@dataclass(frozen=True)
class Prepared:
    """A request body ready to send, and what may be logged about it with --log-content."""

    body: dict[str, Any]
    payload: bytes
    content: dict[str, Any]


def build_body(
    arch: str,
    prompt: str,
    system: str | None,
    media: Sequence[MediaItem],
    sampling: Mapping[str, Any],
) -> dict[str, Any]:
    """OpenAI chat completions: an optional system message, then the one user message the server reads."""
    items: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for item in media:
        key = f"{item.kind}_url"
        items.append({"type": key, key: {"url": item.url}})
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": items})
    return {"model": arch, "messages": messages, **sampling}


def prepare(
    arch: str,
    rules: RequestRefs,
    *,
    prompt: str,
    system: str | None = None,
    images: Sequence[str] = (),
    videos: Sequence[str] = (),
    sampling: Mapping[str, Any] | None = None,
    accept_defaults: bool = False,
    ask: Ask | None = None,
    flag: Callable[[str], str] = flag_name,
) -> Prepared:
    """Check everything that can be checked before anything is sent, then build the body."""
    if arch not in rules.archs:
        raise RequestError(f"no request rules for arch {arch!r} in references/request.yaml")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError(f"a prompt is required ({flag('prompt')})")
    given = {k: v for k, v in (sampling or {}).items() if v is not None}
    problems = cross_check(arch, rules, given, flag)
    media = [resolve_media("image", ref, arch, rules, flag) for ref in images]
    media += [resolve_media("video", ref, arch, rules, flag) for ref in videos]
    if rules.archs[arch].requires_media and not media:
        problems.append(f"{arch} requires at least one {flag('image')} or {flag('video')}")
    if problems:
        raise RequestError(problems[0], lines=problems)
    values = resolve_sampling(arch, rules, given, accept_defaults=accept_defaults, ask=ask, flag=flag)
    body = build_body(arch, prompt, system, media, values)
    content = {
        "system": system,
        "prompt": prompt,
        "media": [_loggable_media(m) for m in media],
        "sampling": values,
    }
    return Prepared(body, json.dumps(body).encode("utf-8"), content)


def _loggable_media(item: MediaItem) -> str:
    if item.url.startswith("data:"):
        return f"data:{item.mime};{item.size} bytes ({os.path.basename(item.source) or 'inline'})"
    return _safe_url(item.url)


# ------------------------------------------------------------------------------------------ replies

OK, RETRY, FATAL, FAILED = "ok", "retry", "fatal", "failed"


@dataclass(frozen=True)
class Answer:
    """What one reply means: ok, retry (not ready yet), fatal (will never load), failed (this request)."""

    kind: str
    status: int
    error_type: str = ""
    message: str = ""


def classify(status: int, body: Any, chat: ChatRefs) -> Answer:
    error_type, message = "", ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error_type = str(body["error"].get("type") or "")
        message = str(body["error"].get("message") or "")
    elif isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    if status == 200:
        if reply_content(body) is None:
            return Answer(FAILED, status, "bad_reply", "the reply has no choices[0].message.content")
        return Answer(OK, status)
    if error_type in chat.fatal_types:
        return Answer(FATAL, status, error_type, message)
    if status in (202, 503) and (error_type in chat.retry_types or status == 202):
        return Answer(RETRY, status, error_type or f"HTTP {status}", message)
    if body is None:
        return Answer(FAILED, status, f"HTTP {status}", "the reply is not JSON")
    return Answer(FAILED, status, error_type or f"HTTP {status}", message)


def reply_content(body: Any) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else json.dumps(content)


def decode_data_uri(text: str) -> tuple[str, bytes] | None:
    """(mime, bytes) of a ``data:<mime>;base64,…`` string, or None when it is not one."""
    if not text.startswith("data:"):
        return None
    head, sep, payload = text.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    try:
        return head[5:].split(";", 1)[0], base64.b64decode(payload, validate=True)
    except ValueError:
        return None


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): 0.5, 1, 2, 4, then 5 s."""
    return float(min(5.0, 0.5 * 2 ** (attempt - 1)))


def failure_message(target: Target, answer: Answer, *, wait: float, waited: bool) -> str:
    who = target.name or target.job_id
    text = f"{answer.error_type}: {answer.message}" if answer.message else answer.error_type
    if answer.kind == RETRY:
        if waited:
            return f"{who} is still not ready after waiting {wait:g}s ({text})"
        return f"{who} is not ready yet ({text}); pass --wait SECONDS to wait for it"
    if answer.kind == FATAL:
        logs = f"taoplan logs {target.name}" if target.name else f"the logs of job {target.job_id}"
        return f"{who} cannot serve requests ({text}); see {logs}"
    return f"{who} answered HTTP {answer.status}: {text}"


# ------------------------------------------------------------------------------------------ sending


@dataclass
class Exchange:
    """One request as it happened on the wire (after any retries)."""

    status: int | None = None
    body: Any = None
    latency_ms: float = 0.0  # the final attempt
    wait_ms: float = 0.0  # time spent waiting on a service that was not ready
    attempts: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    transport_error: str | None = None
    answer: Answer | None = None
    started: float = field(default_factory=time.time)


OnWait = Callable[[Answer, float], None]


def _decode(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _timeout(seconds: float) -> Any:
    import httpx

    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def _transport(exc: Exception, timeout: float) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return f"no reply within {timeout:g}s (--timeout)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class _Attempts:
    """The retry policy of one request, shared by ``send`` and ``asend``: after each attempt,
    either stop (None) or wait this many seconds and try again (only while ``wait`` lasts)."""

    def __init__(self, payload: bytes, chat: ChatRefs, timeout: float, wait: float, on_wait: OnWait | None):
        self.ex = Exchange(request_bytes=len(payload))
        self.chat, self.timeout, self.on_wait = chat, timeout, on_wait
        self.first = time.monotonic()
        self.ex.started = time.time()
        self.deadline = self.first + wait
        self.sent = self.first

    def start(self) -> None:
        self.ex.attempts += 1
        self.sent = time.monotonic()

    def _timing(self) -> None:
        self.ex.latency_ms = (time.monotonic() - self.sent) * 1000
        self.ex.wait_ms = (self.sent - self.first) * 1000 if self.ex.attempts > 1 else 0.0

    def replied(self, status: int, content: bytes) -> float | None:
        ex = self.ex
        self._timing()
        ex.status, ex.response_bytes, ex.body = status, len(content), _decode(content)
        ex.answer = classify(status, ex.body, self.chat)
        return self._again(ex.answer) if ex.answer.kind == RETRY else None

    def failed(self, exc: Exception) -> float | None:
        import httpx

        self._timing()
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            delay = self._again(Answer(RETRY, 0, "connecting", type(exc).__name__))
            if delay is not None:
                return delay
        self.ex.transport_error = _transport(exc, self.timeout)
        return None

    def _again(self, answer: Answer) -> float | None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return None
        if self.on_wait is not None:
            self.on_wait(answer, remaining)
        return min(backoff(self.ex.attempts), remaining)


def send(
    url: str, payload: bytes, chat: ChatRefs, *, timeout: float, wait: float, on_wait: OnWait | None = None
) -> Exchange:
    """POST the chat request; retry a not-ready service (202/503, or refused connections) for ``wait`` s."""
    import httpx

    with httpx.Client(timeout=_timeout(timeout), trust_env=False) as http:
        tries = _Attempts(payload, chat, timeout, wait, on_wait)
        while True:
            tries.start()
            try:
                response = http.post(url.rstrip("/") + chat.path, content=payload, headers=HEADERS)
            except httpx.TransportError as exc:
                delay = tries.failed(exc)
            else:
                delay = tries.replied(response.status_code, response.content)
            if delay is None:
                return tries.ex
            time.sleep(delay)


async def asend(
    url: str, payload: bytes, chat: ChatRefs, *, timeout: float, wait: float, on_wait: OnWait | None = None
) -> Exchange:
    """``send`` for asyncio callers."""
    import asyncio

    import httpx

    async with httpx.AsyncClient(timeout=_timeout(timeout), trust_env=False) as http:
        tries = _Attempts(payload, chat, timeout, wait, on_wait)
        while True:
            tries.start()
            try:
                response = await http.post(url.rstrip("/") + chat.path, content=payload, headers=HEADERS)
            except httpx.TransportError as exc:
                delay = tries.failed(exc)
            else:
                delay = tries.replied(response.status_code, response.content)
            if delay is None:
                return tries.ex
            await asyncio.sleep(delay)


# ------------------------------------------------------------------------------------------ one request, end to end


@dataclass(frozen=True)
class Session:
    """A routed target plus what every request to it needs: rules, endpoint, log, caller."""

    refs: References
    target: Target
    url: str
    log: RequestLog
    caller: str
    via: str = "cli"
    log_content: bool = False

    def sending_line(self) -> str:
        t = self.target
        return f"Sending to name={t.name or '-'} job_id={t.job_id} arch={t.arch} url={self.url}"


def open_session(
    file: Path,
    state_dir: str | None = None,
    *,
    name: str | None = None,
    job_id: str | None = None,
    arch: str | None = None,
    caller: str | None = None,
    via: str = "cli",
    log_content: bool = False,
) -> Session:
    """Load state and the registry, route, and find the endpoint. Needs no services file for a job id."""
    from taoplan.references import load_references
    from taoplan.registry import Registry
    from taoplan.requestlog import RequestLog, resolve_caller
    from taoplan.state import StateStore, default_state_dir

    refs = load_references()
    store = StateStore(default_state_dir(file, state_dir))
    state = store.load()
    registry = targets_from_registry(Registry().entries())
    target = route(
        targets_from_state(state),
        registry,
        name=name,
        job_id=job_id,
        arch=arch,
        valid_archs=refs.request.archs,
    )
    url = _endpoint(file, state_dir, state, target)
    log = RequestLog(store.dir, refs)
    return Session(refs, target, url, log, resolve_caller(caller), via, log_content)


def _endpoint(file: Path, state_dir: str | None, state: State, target: Target) -> str:
    """The platform's current endpoint for a state service (it may reopen a tunnel); else host_url."""
    if target.source == "state" and target.name and file.is_file():
        from taoplan import platforms
        from taoplan.workspace import Workspace

        record = state.services[target.name]
        if platforms.is_available(record.platform):
            ws = Workspace.open(file, state_dir)
            # Workspace.endpoint (when present) reopens a dead tunnel under the state lock and
            # reports an Endpoint(url, detail); older platforms return the URL directly.
            reopen: Any = getattr(ws, "endpoint", None)
            if reopen is None:
                return str(ws.platform(record.platform, state.lineage).endpoint(record))
            found = reopen(state, record)
            if found.url is None:
                raise RequestError(f"{target.name} cannot be reached now: {found.detail}")
            return str(found.url)
    if not target.host_url:
        raise RequestError(f"{target.name or target.job_id} has no endpoint recorded (is it started?)")
    return target.host_url


def _finish(session: Session, prepared: Prepared, ex: Exchange, wait: float) -> dict[str, Any]:
    session.log.append(session, prepared, ex)
    who = session.target.name or session.target.job_id
    if ex.transport_error is not None:
        raise RequestError(f"cannot reach {who} at {session.url}: {ex.transport_error}")
    assert ex.answer is not None
    if ex.answer.kind != OK:
        waited = wait > 0 and ex.attempts > 1
        raise RequestError(failure_message(session.target, ex.answer, wait=wait, waited=waited))
    body: dict[str, Any] = ex.body
    return body


def perform(
    session: Session,
    prepared: Prepared,
    *,
    timeout: float | None = None,
    wait: float = 0.0,
    on_wait: OnWait | None = None,
) -> dict[str, Any]:
    """Send, log one line, and return the reply body; a failure raises RequestError (one line)."""
    chat = session.refs.request.chat
    ex = send(
        session.url,
        prepared.payload,
        chat,
        timeout=timeout or chat.timeout_seconds,
        wait=wait,
        on_wait=on_wait,
    )
    return _finish(session, prepared, ex, wait)


async def aperform(
    session: Session,
    prepared: Prepared,
    *,
    timeout: float | None = None,
    wait: float = 0.0,
    on_wait: OnWait | None = None,
) -> dict[str, Any]:
    chat = session.refs.request.chat
    ex = await asend(
        session.url,
        prepared.payload,
        chat,
        timeout=timeout or chat.timeout_seconds,
        wait=wait,
        on_wait=on_wait,
    )
    return _finish(session, prepared, ex, wait)
