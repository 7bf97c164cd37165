"""The fields each event kind carries, read from the wire Structs in ``stumble.events``.

The linter, the JSON Schema export and the catalog all need to know which fields a kind has,
which of them are identifiers (and so may be closed with ``values``), which are fixed
choices, and which bounds apply. Reading that from msgspec's type information keeps the plan
tooling in step with the wire format: a field added to an event Struct shows up here with no
second list to update.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

import msgspec
import msgspec.inspect as mi

from stumble.events import COMMON_FIELDS, IDENTIFIER_MAX_LENGTH, KIND_TO_CLASS

Shape = Literal[
    "identifier", "identifier_list", "string", "int", "number", "bool", "choice", "object"
]

PER_INSTANCE_FIELDS: Final = frozenset(
    {"event_id", "event_name", "ts", "session_id", "operation_id"}
)
"""Fields whose value is particular to one event, session or operation (or, for the name, is
the event's key in the plan): a closed list of them would refuse every event, and a funnel
step filtering on one would match a single instance at most."""


class WireField(msgspec.Struct, frozen=True):
    """One field of an event kind as the plan tooling sees it."""

    name: str
    shape: Shape
    required: bool
    common: bool
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def closable(self) -> bool:
        """Whether a plan's ``values`` may restrict this field to a closed list."""
        is_identifier = self.shape in ("identifier", "identifier_list")
        return is_identifier and self.name not in PER_INSTANCE_FIELDS

    @property
    def filterable(self) -> bool:
        """Whether a funnel step's ``where`` can usefully compare this field with one value."""
        comparable = self.shape in ("identifier", "choice", "int", "number", "bool")
        return comparable and self.name not in PER_INSTANCE_FIELDS


@functools.cache
def wire_fields(kind: str) -> Mapping[str, WireField]:
    """Every field of ``kind``, common ones first, keyed by name. ``KeyError`` if unknown.

    Read-only, because it is cached and shared."""
    info = mi.type_info(KIND_TO_CLASS[kind])
    assert isinstance(info, mi.StructType)
    fields = [_describe(field) for field in info.fields if field.name != info.tag_field]
    fields.sort(key=lambda field: not field.common)  # stable: declaration order within groups
    return MappingProxyType({field.name: field for field in fields})


def closable_fields(kind: str) -> tuple[str, ...]:
    """The fields of ``kind`` a plan may close with ``values``."""
    return tuple(name for name, field in wire_fields(kind).items() if field.closable)


def _describe(field: mi.Field) -> WireField:
    field_type = _without_none(field.type)
    described = WireField(
        name=field.name,
        shape=_simple_shape(field_type),
        required=field.required,
        common=field.name in COMMON_FIELDS,
    )
    if isinstance(field_type, mi.LiteralType):
        choices = tuple(str(value) for value in field_type.values)
        return msgspec.structs.replace(described, shape="choice", choices=choices)
    if isinstance(field_type, mi.IntType | mi.FloatType):
        return msgspec.structs.replace(
            described,
            shape="int" if isinstance(field_type, mi.IntType) else "number",
            minimum=field_type.ge,
            maximum=field_type.le,
        )
    return described


def _simple_shape(field_type: mi.Type) -> Shape:
    if isinstance(field_type, mi.StrType):
        return "identifier" if _is_identifier(field_type) else "string"
    if isinstance(field_type, mi.ListType) and isinstance(field_type.item_type, mi.StrType):
        return "identifier_list" if _is_identifier(field_type.item_type) else "object"
    if isinstance(field_type, mi.BoolType):
        return "bool"
    return "object"


def _is_identifier(field_type: mi.StrType) -> bool:
    # `Identifier` is the only string type bounded at exactly this length with no pattern;
    # routes are longer and ids/time zones carry their own pattern.
    return field_type.pattern is None and field_type.max_length == IDENTIFIER_MAX_LENGTH


def _without_none(field_type: mi.Type) -> mi.Type:
    if isinstance(field_type, mi.UnionType):
        rest = [member for member in field_type.types if not isinstance(member, mi.NoneType)]
        if len(rest) == 1:
            return rest[0]
    return field_type
