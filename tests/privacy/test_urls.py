"""Route templating: only the path survives, ids become ``:id``, findings are reported."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.privacy.corpus import HOSTILE

from stumble.privacy.detectors import Detector
from stumble.privacy.urls import RouteTemplate, template_route

ROUTE = re.compile(r"^/[A-Za-z0-9_.:/-]{0,199}$")
UUID = "3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("raw", "template", "detectors"),
    [
        ("/requests/123/edit", "/requests/:id/edit", ()),
        (
            f"https://user:pw@app.example.kz/requests/{UUID}?iin=921029350851#top",
            "/requests/:id",
            (Detector.KZ_IIN, Detector.URL_CREDENTIALS),
        ),
        ("/search/john.doe@mail.kz", "/search/:id", (Detector.EMAIL,)),
        ("/requests/:id/edit", "/requests/:id/edit", ()),
        ("/reports/:name", "/reports/:name", ()),
        ("javascript:alert(1)", None, ()),
        ("", None, ()),
        ("?token=abc", None, (Detector.SENSITIVE_KEY,)),
        ("#top", None, ()),
        ("mailto:ivan@mail.kz", None, (Detector.EMAIL,)),
        ("https://app.example.kz", "/", ()),
        ("https://app.example.kz:8443/", "/", ()),
        ("//app.example.kz/requests/42", "/requests/:id", ()),
        ("requests/42", "/requests/:id", ()),
        ("/requests//42///edit/", "/requests/:id/edit", ()),
        ("/a/./b/../c", "/a/c", ()),
        ("/../../etc", "/etc", ()),
        ("/api/v2/requests", "/api/v2/requests", ()),
        ("/users/ORD-3f2b8c1e1d2a/items", "/users/:id/items", ()),  # hex run of 12
        ("/users/ORD-3f2b8c1e1d2/items", "/users/ORD-3f2b8c1e1d2/items", ()),  # 11: kept
        (f"/requests/{UUID.replace('-', '')}", "/requests/:id", (Detector.TOKEN,)),
        ("/r/921%20029%20350%20851", "/r/:id", (Detector.KZ_IIN,)),
        ("/r/%2Fetc%2Fpasswd", "/r/:id", ()),  # an encoded slash stays inside its segment
        ("/r/%D0%98%D0%B2%D0%B0%D0%BD", "/r/:id", ()),  # Cyrillic name: outside the alphabet
        ("/r/a%20b", "/r/:id", ()),
        ("/r/{id}", "/r/:id", ()),
        ("/u/+7 701 234 56 78/x", "/u/:id/x", (Detector.PHONE,)),
        ("/x#access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "/x", (Detector.JWT,)),
        ("/x#/users/921029350851", "/x", (Detector.KZ_IIN,)),
        ("/x?password=hunter2&page=2", "/x", (Detector.SENSITIVE_KEY,)),
        ("/x?q=ivan@mail.kz", "/x", (Detector.EMAIL,)),
        ("/x?921029350851", "/x", (Detector.KZ_IIN,)),
        ("/x?page=2&sort=name", "/x", ()),
        ("https://ivan@app.example.kz/x", "/x", (Detector.URL_CREDENTIALS,)),
    ],
)
def test_template_route(raw: str, template: str | None, detectors: tuple[Detector, ...]) -> None:
    result = template_route(raw)
    assert result == RouteTemplate(template, detectors, changed=template != raw)


def test_unchanged_template_reports_unchanged() -> None:
    assert not template_route("/requests/:id/edit").changed
    assert template_route("/requests/1/edit").changed


def test_long_paths_drop_trailing_segments() -> None:
    segment = "s" * 40
    result = template_route("/" + "/".join([segment] * 10))
    assert result.template == "/" + "/".join([segment] * 4)  # 4 x 41 = 164; a 5th is 205
    assert result.changed


def test_overlong_segment_becomes_id() -> None:
    assert template_route("/a/" + "x" * 65 + "/b").template == "/a/:id/b"
    assert template_route("/a/" + "x" * 64 + "/b").template == "/a/" + "x" * 64 + "/b"


@pytest.mark.parametrize(("category", "text"), HOSTILE)
def test_no_hostile_string_survives_as_a_segment(category: str, text: str) -> None:
    result = template_route("/x/" + text.replace("/", "_").replace("?", "_").replace("#", "_"))
    template = result.template or ""
    assert text not in template
    assert template.startswith("/x")


_URLISH = st.text(alphabet="abcAZ019:/?#@&=%.-_+~ \u200b\uff11\u0418", max_size=120) | st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}/{path}?{query}",
    st.sampled_from(["http", "https", "ftp", "x"]),
    st.text(alphabet="abc.:@019", max_size=20),
    st.text(max_size=80),
    st.text(max_size=40),
)


@given(st.text() | _URLISH)
def test_template_is_a_route_or_none(raw: str) -> None:
    result = template_route(raw)
    assert result.template is None or ROUTE.match(result.template)
    assert result.changed is (result.template != raw)
    assert len(set(result.detectors)) == len(result.detectors)


@given(st.text() | _URLISH)
def test_templating_is_idempotent(raw: str) -> None:
    template = template_route(raw).template
    if template is not None:
        again = template_route(template)
        assert again.template == template
        assert again.detectors == ()
        assert not again.changed
