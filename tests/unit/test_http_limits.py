"""The edge's body checks and the export link reader, on their own."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.channels.activity_checks import text_problem, user_input_problem
from bot.exports import BadLink, ExportLinks, ExportRequest
from bot.http_limits import media_type, nesting_depth_exceeds

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("body", "limit", "exceeds"),
    [
        (b"[[[1]]]", 3, False),
        (b"[[[[1]]]]", 3, True),
        (b'{"a": "[[[[[[[[[["}', 2, False),  # brackets inside a string do not nest
        (b'{"a": "\\"[[[[[[", "b": [[[1]]]}', 4, False),  # nor after an escaped quote
        (b'{"a": "\\\\", "b": [[[[1]]]]}', 3, True),  # an escaped backslash ends before the closing quote
        (b"[" * 100_000, 32, True),
        (b"not json at all {", 32, False),  # left for the parser to refuse
    ],
)
def test_nesting_is_measured_without_parsing(body: bytes, limit: int, exceeds: bool) -> None:
    assert nesting_depth_exceeds(body, limit) is exceeds


def test_content_type_parameters_are_read_from_any_text() -> None:
    assert media_type('Application/JSON; Charset="UTF-8"') == ("application/json", {"charset": "UTF-8"})
    assert media_type("application/json; charset=") == ("application/json", {"charset": ""})
    assert media_type("\udcff;;=") == ("\udcff", {"": ""})


@pytest.mark.parametrize("text", ["Left in October", "two\nlines\tand a tab", "Windows\r\nline break", "é 中 🙂"])
def test_ordinary_text_is_storable(text: str) -> None:
    assert text_problem(text) is None


@pytest.mark.parametrize(("text", "said"), [("\ud800", "surrogate"), ("a\x00b", "U+0000"), ("\x85", "U+0085"),
                                            ("a\rb", "U+000D"), ("\x7f", "U+007F")])
def test_unstorable_text_is_named(text: str, said: str) -> None:
    problem = text_problem(text)
    assert problem is not None and said in problem


def test_a_field_name_that_cannot_be_shown_is_not_repeated_in_the_refusal() -> None:
    problem = user_input_problem({"value": {"\ud800": "\ud800"}})
    assert problem is not None and "\ud800" not in problem and "on the card" in problem


@pytest.mark.parametrize("token", ["abc.é", "abc.\udcc3", "a" * 5000 + ".b", "", ".", "abc.", ".abc", "a.b.c", "abc def.x"])
def test_export_tokens_with_any_characters_are_bad_links(token: str) -> None:
    with pytest.raises(BadLink):
        ExportLinks("http://127.0.0.1", "secret").read(token, NOW)


def test_a_genuine_export_link_still_reads() -> None:
    links = ExportLinks("http://127.0.0.1", "secret")
    wanted = ExportRequest("contoso:2026-W48", "csv", "alex")
    assert links.read(links.make(wanted, NOW).rsplit("/", 1)[1], NOW) == wanted
