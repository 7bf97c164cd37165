"""Routes reduced to path templates: ``/requests/123/edit?iin=…`` becomes ``/requests/:id/edit``.

A route is worth keeping for analytics only as the shape of a screen, never as the record it
showed. So only the path is kept: scheme, user info, host and port are dropped, and so are the
query and the fragment, which is where URLs carry personal data (``?iin=…``, ``#token=…``).
Each path segment is percent-decoded and judged on its own; a segment that is or contains an
id (digits, a UUID, a long hex run, a token, anything a detector hits, anything outside the
identifier alphabet) becomes ``:id``.

Nothing removed is ever returned, but what the detectors found in it is, so the guard can
count (and, for secrets, refuse) the event. The host is not inspected: it names the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, unquote_plus

from stumble.events import IDENTIFIER_MAX_LENGTH, ROUTE_MAX_LENGTH
from stumble.privacy.detectors import Detector, detect, is_sensitive_key

ID_PLACEHOLDER: Final = ":id"

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_PLACEHOLDER: Final = re.compile(rf":[A-Za-z_][A-Za-z0-9_]{{0,{IDENTIFIER_MAX_LENGTH - 2}}}")
_IDENTIFIER_SEGMENT: Final = re.compile(r"[A-Za-z0-9_.:-]+")
_UUID: Final = re.compile(r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}")
_HEX_ID: Final = re.compile(r"(?<![A-Za-z0-9])[0-9A-Fa-f]*[0-9][0-9A-Fa-f]*(?![A-Za-z0-9])")
_HEX_ID_MIN: Final = 12
_PARAM_SEPARATORS: Final = re.compile(r"[&;]")
_DOT_SEGMENTS: Final = frozenset({".", ".."})
_DETECTOR_RANK: Final = {detector: rank for rank, detector in enumerate(Detector)}


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """A path template and what was found in the parts removed to make it."""

    template: str | None
    """``/``-rooted, identifier alphabet only, at most 200 characters; None if no path."""
    detectors: tuple[Detector, ...]
    """Each detector that hit something removed, once, in ``Detector`` order."""
    changed: bool
    """Whether ``template`` differs from the input."""


def template_route(raw: str) -> RouteTemplate:
    """Reduce a route or URL to its path template (see the module docstring)."""
    found: set[Detector] = set()
    path = _path_of(raw.strip(), found)
    template = None if path is None else _template_path(path, found)
    ordered = tuple(sorted(found, key=_DETECTOR_RANK.__getitem__))
    return RouteTemplate(template=template, detectors=ordered, changed=template != raw)


def _path_of(url: str, found: set[Detector]) -> str | None:
    """The path part of a URL; query, fragment, scheme and authority are inspected and cut."""
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    _inspect_params(url[cut + 1 :], found)
    url = url[:cut]
    scheme = _SCHEME.match(url)
    if scheme is not None:
        url = url[scheme.end() :]
        if not url.startswith("//"):
            # An opaque URI (``javascript:``, ``mailto:``, ``data:``) has no path to keep.
            _note(detect(url), found)
            return None
    if url.startswith("//"):
        return _drop_authority(url[2:], found)
    return url or None


def _drop_authority(rest: str, found: set[Detector]) -> str:
    slash = rest.find("/")
    authority, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" in authority:
        # Any user info is a credential, or at least a person's login.
        found.add(Detector.URL_CREDENTIALS)
    return path


def _inspect_params(text: str, found: set[Detector]) -> None:
    """Record what a dropped query or fragment carried; the text itself goes nowhere."""
    for param in _PARAM_SEPARATORS.split(text):
        key, _, value = param.partition("=")
        key, value = unquote_plus(key), unquote_plus(value)
        _note(detect(key), found)
        hit = detect(value) if value else None
        if hit is None and value and is_sensitive_key(key):
            hit = Detector.SENSITIVE_KEY
        _note(hit, found)


def _note(detector: Detector | None, found: set[Detector]) -> None:
    if detector is not None:
        found.add(detector)


def _template_path(path: str, found: set[Detector]) -> str:
    segments: list[str] = []
    for raw_segment in path.split("/"):
        segment = unquote(raw_segment)
        if segment in _DOT_SEGMENTS:
            # Resolved as a browser would, so ``/a/../b`` and ``/b`` are one route.
            if segment == ".." and segments:
                segments.pop()
        elif segment:
            segments.append(_template_segment(segment, found))
    return _join_within_limit(segments)


def _template_segment(segment: str, found: set[Detector]) -> str:
    if _PLACEHOLDER.fullmatch(segment):
        return segment
    hit = detect(segment)
    _note(hit, found)
    if hit is not None or _is_id(segment):
        return ID_PLACEHOLDER
    return segment


def _is_id(segment: str) -> bool:
    return (
        len(segment) > IDENTIFIER_MAX_LENGTH
        or _IDENTIFIER_SEGMENT.fullmatch(segment) is None
        or segment.isdigit()
        or _UUID.search(segment) is not None
        or any(len(m.group()) >= _HEX_ID_MIN for m in _HEX_ID.finditer(segment))
    )


def _join_within_limit(segments: list[str]) -> str:
    """``/``-joined segments, dropping trailing ones that would pass the route length limit."""
    template = ""
    for segment in segments:
        if len(template) + 1 + len(segment) > ROUTE_MAX_LENGTH:
            break
        template += "/" + segment
    return template or "/"


# --- routes the tracking plan declares ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    route: str | None
    """The declared template the route matched, the longest declared prefix of it, or None."""
    exact: bool
    """Whether a declared template matched the whole route."""


class DeclaredRoutes:
    """The plan's route templates (``/requests/:id/edit``): the only routes storage keeps.

    Templating alone keeps every segment it cannot prove to be an id, so a person's name in a
    path (``/users/ivan-petrov/edit``) would survive it. A declared template decides instead:
    a ``:name`` segment stands for any one segment, whatever it holds, and a route that no
    template matches is cut to the longest declared template matching its first segments, or
    dropped. Resolutions are memoised: real traffic repeats a few hundred routes endlessly.
    """

    MAX_MEMO: Final = 4096

    def __init__(self, templates: tuple[str, ...]) -> None:
        self._templates = [(t, _segments(t)) for t in templates]
        # Longest first, and at equal length literal segments before placeholders.
        self._templates.sort(key=lambda item: (-len(item[1]), _placeholder_count(item[1])))
        self._memo: dict[str, ResolvedRoute] = {}

    def resolve(self, template: str) -> ResolvedRoute:
        resolved = self._memo.get(template)
        if resolved is None:
            resolved = self._resolve(_segments(template))
            if len(self._memo) >= self.MAX_MEMO:
                self._memo.clear()
            self._memo[template] = resolved
        return resolved

    def _resolve(self, segments: list[str]) -> ResolvedRoute:
        for declared, parts in self._templates:
            if len(parts) == len(segments) and _matches(parts, segments):
                return ResolvedRoute(declared, exact=True)
        for declared, parts in self._templates:
            # The root is no one's prefix: "/" would pass an unknown page off as the home page.
            if 0 < len(parts) < len(segments) and _matches(parts, segments[: len(parts)]):
                return ResolvedRoute(declared, exact=False)
        return ResolvedRoute(None, exact=False)


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _placeholder_count(parts: list[str]) -> int:
    return sum(part.startswith(":") for part in parts)


def _matches(declared: list[str], actual: list[str]) -> bool:
    return all(d.startswith(":") or d == a for d, a in zip(declared, actual, strict=True))
