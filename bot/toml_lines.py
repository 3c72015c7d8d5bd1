"""Where things are written in a TOML text: the line of every table header, key and array element.

tomllib parses but forgets positions; a policy error must name its line, so this reads the same text a
second time only to note positions. Kept apart from the policy rules so each file says one thing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]  # e.g. ("schedule", "deadline") or ("roles", 1, "owners"); ints count from 0
BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_NESTING = 64



@dataclass
class _Statement:
    """A table header or a ``key = value`` line, with the lines its value spans."""

    path: KeyPath
    first_line: int
    last_line: int
    header: bool


class TomlLocations:
    """Reads TOML text only to note the line of every header, key and array element.

    It never rejects anything: on valid text (the normal case, after tomllib accepted it) it is exact,
    and on broken text (to name the key at a syntax error) it keeps going, always moving forward.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.statements: list[_Statement] = []
        self._array_tables: dict[KeyPath, int] = {}  # [[name]] path -> index of its latest table
        self._table: KeyPath = ()

    def key_at(self, line: int) -> KeyPath | None:
        """The key whose statement covers ``line``, else the table being written there."""
        table: KeyPath | None = None
        for statement in self.statements:
            if statement.first_line > line:
                break
            if statement.header:
                table = statement.path
            elif statement.last_line >= line:
                return statement.path
        return table

    def scan(self) -> TomlLocations:
        while self.pos < len(self.text):
            self._skip_blank(newlines=True)
            start = self.pos
            if self._peek() == "[":
                self._header()
            elif self._peek():
                self._key_value(self._table, 0, statement=True)
            if self.pos == start and self.pos < len(self.text):
                self._advance()
        return self

    def _peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def _advance(self, count: int = 1) -> None:
        end = min(self.pos + count, len(self.text))
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def _skip_blank(self, *, newlines: bool) -> None:
        while True:
            char = self._peek()
            if char in (" ", "\t") or (newlines and char in ("\n", "\r")):
                self._advance()
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def _note(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    def _header(self) -> None:
        line = self.line
        array = self.text.startswith("[[", self.pos)
        self._advance(2 if array else 1)
        keys = self._key()
        self._skip_blank(newlines=False)
        closing = "]]" if array else "]"
        if self.text.startswith(closing, self.pos):
            self._advance(len(closing))
        if not keys:
            return
        resolved: list[str | int] = []
        for index, key in enumerate(keys):
            resolved.append(key)
            latest = self._array_tables.get(tuple(resolved))
            if latest is not None and (index < len(keys) - 1 or not array):
                resolved.append(latest)  # [roles.x] continues the latest [[roles]] table
        path = tuple(resolved)
        if array:
            index = self._array_tables.get(path, -1) + 1
            self._array_tables[path] = index
            self._note(path, line)
            path += (index,)
        self._note(path, line)
        self._table = path
        self.statements.append(_Statement(path, line, line, header=True))

    def _key_value(self, table: KeyPath, depth: int, *, statement: bool) -> None:
        line = self.line
        keys = self._key()
        if not keys:
            return
        path = table + tuple(keys)
        for end in range(len(table) + 1, len(path) + 1):
            self._note(path[:end], line)
        self._skip_blank(newlines=False)
        if self._peek() == "=":
            self._advance()
            self._skip_blank(newlines=False)
            self._value(path, depth)
        if statement:
            self.statements.append(_Statement(path, line, self.line, header=False))

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            char = self._peek()
            if char in ('"', "'"):
                keys.append(_decode_quoted_key(self._string(char)))
            elif char and char in BARE_KEY_CHARS:
                start = self.pos
                while self._peek() and self._peek() in BARE_KEY_CHARS:
                    self._advance()
                keys.append(self.text[start : self.pos])
            else:
                return keys
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return keys
            self._advance()

    def _value(self, path: KeyPath, depth: int) -> None:
        char = self._peek()
        if char in ('"', "'") and self.text.startswith(char * 3, self.pos):
            self._multiline_string(char)
        elif char in ('"', "'"):
            self._string(char)
        elif char == "[" and depth < MAX_NESTING:
            self._array(path, depth + 1)
        elif char == "{" and depth < MAX_NESTING:
            self._inline_table(path, depth + 1)
        else:  # numbers, booleans, dates: nothing inside them can end a statement early
            while self._peek() and self._peek() not in ",]}\n\r#":
                self._advance()

    def _string(self, quote: str) -> str:
        start = self.pos
        self._advance()
        while (char := self._peek()) and char != "\n":
            if char == "\\" and quote == '"':
                self._advance(2)
                continue
            self._advance()
            if char == quote:
                break
        return self.text[start : self.pos]

    def _multiline_string(self, quote: str) -> None:
        self._advance(3)
        while self.pos < len(self.text):
            if quote == '"' and self._peek() == "\\":
                self._advance(2)
            elif self.text.startswith(quote * 3, self.pos):
                self._advance(3)
                for _ in range(2):  # up to two quotes may sit just inside the closing delimiter
                    if self._peek() == quote:
                        self._advance()
                return
            else:
                self._advance()

    def _array(self, path: KeyPath, depth: int) -> None:
        self._advance()
        index = 0
        while True:
            self._skip_blank(newlines=True)
            char = self._peek()
            if char in ("", "]"):
                self._advance()
                return
            if char == ",":
                self._advance()
                continue
            start = self.pos
            self._note(path + (index,), self.line)
            self._value(path + (index,), depth)
            index += 1
            if self.pos == start:
                self._advance()

    def _inline_table(self, path: KeyPath, depth: int) -> None:
        self._advance()
        while True:
            self._skip_blank(newlines=True)
            char = self._peek()
            if char in ("", "}"):
                self._advance()
                return
            if char == ",":
                self._advance()
                continue
            start = self.pos
            self._key_value(path, depth, statement=False)
            if self.pos == start:
                self._advance()


def locate(text: str) -> TomlLocations:
    return TomlLocations(text).scan()


def _decode_quoted_key(raw: str) -> str:
    """A quoted key as tomllib reads it, escapes and all, so its path matches the parsed document."""
    try:
        return str(tomllib.loads(f"k = {raw}")["k"])
    except tomllib.TOMLDecodeError:
        return raw.strip("\"'")
