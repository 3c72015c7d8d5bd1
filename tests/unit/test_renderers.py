"""Every channel-neutral view has a rendering in every channel, and dialogs/views.py says which renderers there
are: a view type one renderer lacks would raise TypeError the first time that channel is asked to show it."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from pathlib import Path

import pytest

import dialogs.render.slack as slack
import dialogs.render.teams as teams
import dialogs.views as views

RENDERERS = {"teams": lambda view: teams.render(view), "slack": lambda view: slack.render(view)}


def _sample(kind: typing.Any) -> typing.Any:
    """A small value of a field's type: enough for a renderer to show something."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return None if type(None) in typing.get_args(kind) else _sample(typing.get_args(kind)[0])
    if origin is tuple or kind is tuple:
        args = typing.get_args(kind)
        if args and args[-1] is not Ellipsis:  # a fixed-length tuple, e.g. a (label, value) pair
            return tuple(_sample(arg) for arg in args)
        one = _sample(args[0]) if args else None
        return () if one is None else (one,)  # one row, part or choice: a view of nothing may render as nothing
    if dataclasses.is_dataclass(kind):
        return _instance(kind)
    if inspect.isclass(kind) and issubclass(kind, enum.Enum):
        return next(iter(kind))
    return {str: "sample text", int: 1, bool: False}.get(kind)


def _instance(cls: type) -> typing.Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(cls)
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING})


@pytest.mark.parametrize("view_type", typing.get_args(views.View), ids=lambda t: t.__name__)
@pytest.mark.parametrize("channel", sorted(RENDERERS))
def test_every_view_type_renders_in_every_channel(channel: str, view_type: type) -> None:
    assert RENDERERS[channel](_instance(view_type)), f"{channel} renders {view_type.__name__} as nothing"


def test_the_view_models_docstring_names_every_renderer() -> None:
    render_dir = Path(teams.__file__).parent
    renderers = sorted(p.name for p in render_dir.glob("*.py") if "\ndef render(" in p.read_text(encoding="utf-8"))
    assert renderers == ["slack.py", "teams.py"]
    assert views.__doc__ is not None
    for name in renderers:
        assert f"dialogs/render/{name}" in views.__doc__, name
