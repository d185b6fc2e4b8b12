"""Options declared once, on the frozen config dataclasses; flags and YAML keys derived from them.

A stage's config dataclass (:class:`~cubestream.l1.config.L1Config`,
:class:`~cubestream.l2.config.L2Config`, :class:`~cubestream.execution.ClientOptions`, ...) is
the one declaration of its options: each field that a user sets carries :func:`option` metadata
(its help, and where they differ its flag name and parser), and a field holding a nested config
(``L1Config.integrity``) is marked :func:`nested`. From these fields this module derives

- the flags of the stage's command (:func:`add_flags`) and the config from the parsed flags
  (:func:`from_args`),
- the keys of the stage's section in a pipeline YAML, checked with messages that name the key
  (:func:`check_section`),
- the command line that runs the stage with those values (:func:`command_flags`).

Only :mod:`dataclasses`, :mod:`typing` and :mod:`argparse` are used here, and the config modules
are light, so building the command line imports no array library.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NoReturn, Union, get_args, get_origin, get_type_hints

__all__ = [
    "Flag",
    "Param",
    "add_flags",
    "check_section",
    "command_flags",
    "from_args",
    "key",
    "nested",
    "option",
    "params",
]

_META = "cubestream.option"
_NESTED = "cubestream.nested"


@dataclass(frozen=True, kw_only=True)
class Flag:
    """How a config field appears on the command line and in a pipeline YAML.

    Attributes
    ----------
    help : str
        The flag's help (also the meaning of the YAML key); for a ``bool`` that defaults to true,
        the help of its ``--no-NAME`` flag.
    name : str, optional
        The flag and key when not the field's name (``dem`` for ``AuxiliarySources.srtm``).
    aliases : tuple of str
        Further flag names (``--srtm`` for ``--dem``).
    parse : callable, optional
        Parser of one command-line value (default: from the field's type).
    separator : str, optional
        A tuple given as one value joined by this (``--invalid-scl 0,1,3``) instead of several.
    nargs : {"*", "+"}
        How many values a tuple's flag takes when it has no separator: any (``"*"``, none counts
        as not given) or at least one (``"+"``).
    metavar : str, optional
        The value's name in the help.
    pipeline : bool
        Whether the key belongs to the stage's pipeline section (``--scheduler`` does not).
    execution : bool
        Whether it changes only how a stage runs (its cluster, workers), not what it writes.
    choices : callable, optional
        The values an option admits, asked when a parser is built or a YAML checked: a
        registry's names (``--provider``), where a ``Literal`` cannot list them.
    """

    help: str
    name: str | None = None
    aliases: tuple[str, ...] = ()
    parse: Callable[[str], Any] | None = None
    separator: str | None = None
    nargs: Literal["*", "+"] = "*"
    metavar: str | None = None
    pipeline: bool = True
    execution: bool = False
    choices: Callable[[], Iterable[Any]] | None = None


def option(default: Any = MISSING, *, factory: Any = MISSING, **flag: Any) -> Any:
    """A dataclass field that is a user option (the keywords are those of :class:`Flag`).

    Examples
    --------
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Config:
    ...     seed: int = option(0, help="seed of the draw")
    """
    meta = {_META: Flag(**flag)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def nested(factory: Callable[[], Any]) -> Any:
    """A dataclass field holding a config whose own options are flags of the same command."""
    return field(default_factory=factory, metadata={_NESTED: True})


def key(name: str) -> str:
    """The flag / YAML spelling of a field name (``windows_per_cube`` -> ``windows-per-cube``)."""
    return name.replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class Param:
    """One option of a config, found among its (nested) fields.

    Attributes
    ----------
    name : str
        Its name on the command line and in the YAML, with underscores (the argparse dest).
    path : tuple of str
        The fields leading to it (``("auxiliary", "srtm")``).
    kind : type
        The field's annotation, ``None`` taken out of a union.
    optional : bool
        Whether the annotation admits None.
    default : object
        The field's default (``dataclasses.MISSING`` when required).
    flag : Flag
        The field's metadata.
    """

    name: str
    path: tuple[str, ...]
    kind: Any
    optional: bool
    default: Any
    flag: Flag

    @property
    def required(self) -> bool:
        """Whether the config needs a value (it has no default)."""
        return self.default is MISSING

    @property
    def choices(self) -> tuple[Any, ...] | None:
        """The values a ``Literal`` admits, or those its flag's ``choices`` names now."""
        if self.flag.choices is not None:
            return tuple(self.flag.choices())
        return get_args(self.kind) if get_origin(self.kind) is Literal else None


_PARAMS: dict[type[Any], tuple[Param, ...]] = {}


def params(cls: type[Any]) -> tuple[Param, ...]:
    """Every option of the config class ``cls``, nested configs' included, in field order."""
    if cls not in _PARAMS:
        _PARAMS[cls] = tuple(_params(cls, ()))
    return _PARAMS[cls]


def _params(cls: type[Any], path: tuple[str, ...]) -> Iterator[Param]:
    hints = get_type_hints(cls)
    for f in fields(cls):
        if f.metadata.get(_NESTED):
            yield from _params(hints[f.name], (*path, f.name))
            continue
        flag = f.metadata.get(_META)
        if flag is None:
            continue
        kind, optional = _unwrap(hints[f.name])
        yield Param(
            name=flag.name or f.name,
            path=(*path, f.name),
            kind=kind,
            optional=optional,
            default=_default(f),
            flag=flag,
        )


def _unwrap(kind: Any) -> tuple[Any, bool]:
    if get_origin(kind) in (Union, types.UnionType):
        inner = [a for a in get_args(kind) if a is not type(None)]
        if len(inner) == 1:
            return inner[0], len(inner) < len(get_args(kind))
    return kind, False


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


# -- the command line ----------------------------------------------------------------------------


def add_flags(
    parser: argparse._ActionsContainer,
    cls: type[Any],
    *,
    skip: tuple[str, ...] = (),
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Add a flag to ``parser`` for every option of ``cls`` (but those named in ``skip``).

    ``parser`` may be an argument group. A field without default is a required flag; a
    ``Literal`` (or the flag's ``choices``) gives the choices, a ``bool`` a bare flag (``--no-NAME``
    where it defaults to true), a tuple several values (or one joined value, see
    :attr:`Flag.separator`). ``defaults`` overrides the fields' defaults on this command.
    """
    for p in params(cls):
        if p.name in skip:
            continue
        default = (defaults or {}).get(p.name, p.default)
        names = [f"--{key(n)}" for n in (p.name, *p.flag.aliases)]
        kwargs: dict[str, Any] = {"dest": p.name, "help": p.flag.help}
        if p.flag.metavar:
            kwargs["metavar"] = p.flag.metavar
        if p.kind is bool:
            if default is True:
                names = [f"--no-{key(n)}" for n in (p.name, *p.flag.aliases)]
            action = "store_false" if default is True else "store_true"
            parser.add_argument(*names, action=action, **kwargs)
            continue
        if default is MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        item = get_args(p.kind)[0] if get_origin(p.kind) is tuple else p.kind
        if get_origin(p.kind) is tuple and p.flag.separator is None:
            kwargs["nargs"] = p.flag.nargs
        choices = get_args(item) if get_origin(item) is Literal else p.choices
        if choices:
            kwargs["choices"] = list(choices)
        kwargs["type"] = p.flag.parse or _parser(type(choices[0]) if choices else item)
        parser.add_argument(*names, **kwargs)


def _parser(kind: object) -> Callable[[str], Any]:
    if kind is dt.date:
        from cubestream.checks import parse_date

        return parse_date
    scalars: tuple[Callable[[str], Any], ...] = (int, float, str, Path)
    for scalar in scalars:
        if kind is scalar:
            return scalar
    raise TypeError(f"no command-line parser for options of type {kind!r}")


def from_args(cls: type[Any], args: argparse.Namespace, **given: Any) -> Any:
    """The config ``cls`` from parsed flags; fields that are no flags take ``given`` or defaults.

    An empty list of values (``--tiles`` with none) counts as not given.
    """
    return _build(cls, args, given)


def _build(cls: type[Any], args: argparse.Namespace, given: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    hints = get_type_hints(cls)
    for f in fields(cls):
        if f.metadata.get(_NESTED):
            kwargs[f.name] = _build(hints[f.name], args, given.get(f.name, {}))
            continue
        flag = f.metadata.get(_META)
        if flag is not None and hasattr(args, flag.name or f.name):
            value = getattr(args, flag.name or f.name)
            if isinstance(value, list):
                value = tuple(value) if value else _default(f)
            kwargs[f.name] = value
        elif f.name in given:
            kwargs[f.name] = given[f.name]
    return cls(**kwargs)


def command_flags(values: Mapping[str, Any], cls: type[Any]) -> list[str]:
    """``--name value`` for every option of ``cls`` in ``values`` (keyed by :attr:`Param.name`).

    None and False are left out, True is a bare flag, a tuple several values or one joined value;
    a ``bool`` that defaults to true is ``--no-NAME`` where false, left out where true.
    """
    out: list[str] = []
    for p in params(cls):
        value = values.get(p.name)
        if p.kind is bool and p.default is True:
            out += [] if value is None or value is True else [f"--no-{key(p.name)}"]
            continue
        if value is None or value is False:
            continue
        flag = f"--{key(p.name)}"
        if value is True:
            out.append(flag)
        elif isinstance(value, tuple | list):
            texts = [str(v) for v in value]
            out += [flag, p.flag.separator.join(texts)] if p.flag.separator else [flag, *texts]
        else:
            out += [flag, str(value)]
    return out


# -- the pipeline YAML ---------------------------------------------------------------------------


Fail = Callable[[str, str], NoReturn]
"""``fail(key_path, what)``: raise the error of a YAML file, naming the key."""


def check_section(
    fail: Fail,
    section: str,
    raw: Any,
    options: Mapping[str, Param],
    *,
    required: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The values of a YAML section, each checked against its option's type.

    Parameters
    ----------
    fail : callable
        Raises the error naming the key path (``l2.windows-per-cube``) and what is wrong.
    section : str
        The section's name.
    raw : object
        The section as read from the YAML (a mapping; ``-`` or ``_`` both work in its keys, and
        a flag's aliases name it too).
    options : mapping of str to Param
        The keys the section admits.
    required : frozenset of str
        The keys it must give.

    Returns
    -------
    dict
        The values given, by :attr:`Param.name`: lists made tuples, days ``YYYY-MM-DD`` strings,
        paths :class:`~pathlib.Path`.
    """
    if not isinstance(raw, Mapping):
        fail(section, f"is {raw!r}; it must be a mapping of options")
    aliases = {a.replace("-", "_"): n for n, p in options.items() for a in p.flag.aliases}
    values = {
        aliases.get(k, k): v for k, v in ((str(k).replace("-", "_"), v) for k, v in raw.items())
    }
    unknown(fail, f"{section}.", values, set(options))
    out: dict[str, Any] = {}
    for name, p in options.items():
        path = f"{section}.{key(name)}"
        if name not in values:
            if name in required:
                fail(path, "is missing (required)")
            continue
        value = values[name]
        if value is None and not p.required:
            continue  # null: the default
        out[name] = check_value(fail, path, value, p.kind)
        if p.flag.choices is not None and out[name] not in (known := list(p.flag.choices())):
            fail(path, f"is {value!r}; use one of {known}")
    return out


def unknown(fail: Fail, prefix: str, data: Mapping[str, Any], known: set[str]) -> None:
    """Fail on the first key of ``data`` not in ``known``, with the closest known key."""
    for name in data:
        if name not in known:
            shown = sorted(key(k) for k in known)
            close = difflib.get_close_matches(key(name), shown, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(f"{prefix}{key(name)}", f"is not a known key{hint}; the keys here are {shown}")


def check_value(fail: Fail, path: str, value: Any, kind: Any) -> Any:
    """``value`` checked against the annotation ``kind``; lists made tuples, days strings."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        inner, _ = _unwrap(kind)
        return check_value(fail, path, value, inner)
    if origin is Literal:
        if value not in get_args(kind):
            fail(path, f"is {value!r}; use one of {list(get_args(kind))}")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            fail(path, f"is {value!r}; it must be a list")
        item = get_args(kind)[0]
        return tuple(check_value(fail, f"{path}[{i}]", v, item) for i, v in enumerate(value))
    return _scalar(fail, path, value, kind)


def _scalar(fail: Fail, path: str, value: Any, kind: Any) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            fail(path, f"is {value!r}; it must be true or false")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            fail(path, f"is {value!r}; it must be a whole number")
        return value
    if kind is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            fail(path, f"is {value!r}; it must be a number")
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        hint = " (YAML reads 04:00:00 as a number: quote it)" if isinstance(value, int) else ""
        fail(path, f"is {value!r}; it must be a string{hint}")
    if kind is dt.date:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            fail(path, f"is {value!r}; write a day as YYYY-MM-DD")
    return Path(value) if kind is Path else value
