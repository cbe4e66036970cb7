"""List pages answered from ``.values()`` rows, in exactly the JSON the output serializer writes.

A page of 50 built as model instances (with their joined relations) and walked field by field by
DRF cost about four times the query itself (bench: BENCHMARKS.md). Most output serializers are
flat: every field shows one column, the row's own or one across foreign keys. For those the
serializer is read once, here, into a plan of (name, lookup, conversion), and a page becomes one
``.values()`` query and a dict per row. The serializer stays the one description of the output:
the plan is made from its fields and calls their own ``to_representation`` wherever that does more
than hand the value through. A nested serializer of a row across such a link is flat too (an
assessment's id and date in an outcome): its columns are read under the link's name, and it is
null where the link is. A serializer with any other kind of field (method fields, lists of rows)
has no plan and keeps the serializer path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

from django.core.exceptions import FieldDoesNotExist
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

# Fields whose ``to_representation`` hands a database value of their type through unchanged.
# (A slug field of ``uuid`` answers the UUID object, on both paths; the renderer writes a string.)
_PASSED_THROUGH = {
    serializers.CharField,
    serializers.ChoiceField,
    serializers.BooleanField,
    serializers.IntegerField,
    serializers.EmailField,
    serializers.SlugRelatedField,
}


@dataclass(frozen=True)
class Column:
    name: str
    lookup: str
    field: serializers.Field | None  # None: the value is already what the serializer would answer
    # A nested serializer's columns (their lookups under this one's); ``lookup`` is then the link.
    nested: tuple[Column, ...] = ()

    @property
    def lookups(self) -> tuple[str, ...]:
        return (self.lookup, *(lookup for column in self.nested for lookup in column.lookups))

    def under(self, link: str) -> Column:
        return replace(
            self, lookup=f"{link}__{self.lookup}", nested=tuple(c.under(link) for c in self.nested)
        )

    def converter(self) -> Callable | None:
        """How this page converts the column's values (looked up once a page, not once a value)."""
        if self.field is None:
            return None
        if type(self.field) is serializers.DateTimeField:
            return _datetime_converter(self.field)
        return self.field.to_representation


def _datetime_converter(field: serializers.DateTimeField) -> Callable:
    """DRF's ``DateTimeField.to_representation`` with the time zone looked up once per page: it
    asks for the current zone (a context-local lookup) for every value, most of its cost."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    if zone is None or output_format is None or output_format.lower() != ISO_8601:
        return field.to_representation

    def convert(value):
        if not isinstance(value, datetime) or value.tzinfo is None:
            return field.to_representation(value)
        try:
            text = value.astimezone(zone).isoformat()
        except OverflowError:  # DRF answers its own error for it
            return field.to_representation(value)
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


@dataclass(frozen=True)
class RowPlan:
    columns: tuple[Column, ...]

    @property
    def lookups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lookup for column in self.columns for lookup in column.lookups))

    def without(self, hidden: Iterable[str]) -> RowPlan:
        hidden = set(hidden)
        return RowPlan(tuple(c for c in self.columns if c.name not in hidden)) if hidden else self

    def represent(self, rows: Iterable[dict]) -> list[dict]:
        read = _reader(self.columns)
        return [read(row) for row in rows]


def _reader(columns: tuple[Column, ...]) -> Callable[[dict], dict]:
    cells = [(c.name, c.lookup, c.converter(), _reader(c.nested) if c.nested else None) for c in columns]

    def read(row: dict) -> dict:
        # As DRF's Serializer.to_representation: a null is answered as null, unconverted.
        answer = {}
        for name, lookup, convert, nested in cells:
            value = row[lookup]
            if value is None:
                answer[name] = None
            elif nested is not None:
                answer[name] = nested(row)
            else:
                answer[name] = value if convert is None else convert(value)
        return answer

    return read


def _single_row_link(model, path: str):
    """The model at the end of ``path`` and whether a row on the way may be missing (a nullable
    foreign key, a reverse one-to-one link); None if ``path`` crosses a link of more than one row."""
    missing = False
    for name in path.split("__"):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if not (field.one_to_one or (field.many_to_one and field.concrete)):
            return None
        missing = missing or not field.concrete or field.null
        model = field.related_model
    return model, missing


def _column_path(model, lookup: str) -> tuple[bool, bool] | None:
    """Whether a row on the way of ``lookup`` may be missing, if it reads one concrete column
    across links of at most one row; else None."""
    *links, last = lookup.split("__")
    missing = False
    if links:
        found = _single_row_link(model, "__".join(links))
        if found is None:
            return None
        model, missing = found
    try:
        field = model._meta.get_field(last)
    except FieldDoesNotExist:
        return None
    return missing if field.concrete and not field.is_relation else None


def _column(model, field) -> Column | None:
    if isinstance(field, serializers.ModelSerializer) and field.source != "*":
        link = "__".join(field.source_attrs)
        inner, found = row_plan(type(field)), _single_row_link(model, link)
        if inner is None or found is None or found[0] is not field.Meta.model:
            return None
        if found[1] and not field.allow_null:  # DRF would leave the field out, not answer null
            return None
        return Column(field.field_name, link, None, tuple(c.under(link) for c in inner.columns))
    if type(field) is serializers.SlugRelatedField:
        lookup = "__".join([*field.source_attrs, field.slug_field])
    elif isinstance(field, serializers.Field) and not isinstance(
        field,
        serializers.BaseSerializer
        | serializers.RelatedField
        | serializers.ManyRelatedField
        | serializers.SerializerMethodField
        | serializers.ModelField
        | serializers.ListField
        | serializers.DictField
        | serializers.JSONField,
    ):
        if field.source == "*":
            return None
        lookup = "__".join(field.source_attrs)
    else:
        return None
    missing = _column_path(model, lookup)
    # A row missing on the way: DRF answers null only for a field that allows it (it leaves any
    # other out of the answer), so only such a field reads the same from a column.
    if missing is None or (missing and not field.allow_null):
        return None
    return Column(field.field_name, lookup, None if type(field) in _PASSED_THROUGH else field)


@cache
def row_plan(serializer_class) -> RowPlan | None:
    """The plan of a flat ``ModelSerializer``, or None if any readable field is not one column."""
    meta = getattr(serializer_class, "Meta", None)
    model = getattr(meta, "model", None)
    if model is None:
        return None
    # Its own to_representation could answer anything: not a plan's to read, unless it declares
    # it only leaves out the fields the view's ``hidden_fields()`` names (the row path drops them).
    custom = serializer_class.to_representation is not serializers.ModelSerializer.to_representation
    if custom and not getattr(serializer_class, "representation_only_hides_fields", False):
        return None
    columns = []
    for field in serializer_class().fields.values():
        if field.write_only:
            continue
        column = _column(model, field)
        if column is None:
            return None
        columns.append(column)
    return RowPlan(tuple(columns))
