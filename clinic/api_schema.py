"""How the OpenAPI schema describes what drf-spectacular cannot see by itself."""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_serializer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "clinic.api_auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; create a key with `manage.py create_api_client NAME --role ROLE`.",
        }


class StrictInputScheme(OpenApiSerializerExtension):
    """An input that refuses fields it does not know (``patients.api.StrictInput``) says so: a
    client generated from the schema, or a fuzzer, must not take an unknown field for a valid one."""

    target_class = "patients.api.StrictInput"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


# A query parameter given empty or blank is refused (``clinic.api.query_refusals``), and a text
# holding a NUL character (which PostgreSQL cannot compare with), which a free text's schema must
# say: "" is a string like any other.
NON_BLANK = {"minLength": 1, "pattern": r"^[^\x00]*\S[^\x00]*$"}


def with_non_blank_query_strings(operation: dict | None) -> dict | None:
    """``operation`` with ``NON_BLANK`` on each query parameter whose schema is free text (a
    format, an enum or a pattern already keeps a blank value out)."""
    for parameter in (operation or {}).get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter["in"] != "query":
            continue
        for text in (schema, schema.get("items") or {}):
            if text.get("type") == "string" and not {"enum", "format", "pattern"} & set(text):
                text.update(NON_BLANK)
    return operation


FIELD_ERRORS = {
    "type": "object",
    "description": "Messages by field name, nested like the body (list items by their index); "
    "cross-field ones under `non_field_errors`. When a rule of the clinic refused the request (a "
    "service's refusal, not a malformed body), `error_codes` holds the code of each message, nested "
    "the same way (for a visit move: invalid_transition, outside_window, before_treatment, "
    "still_ahead, not_yet_passed, reason_required, correction_not_allowed, already_rebooked, "
    "measured_at_visit, archived, ...).",
    "properties": {"error_codes": {"type": "object", "additionalProperties": {}}},
    "additionalProperties": {},
}
DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
ERRORS = {
    400: OpenApiResponse(FIELD_ERRORS, description="Invalid input or query parameter, or a rule refused it."),
    401: OpenApiResponse(DETAIL, description="No valid credentials."),
    403: OpenApiResponse(DETAIL, description="The caller's role may not do this."),
    404: OpenApiResponse(DETAIL, description="No such record (or an invalid cursor)."),
    409: OpenApiResponse(
        FIELD_ERRORS, description="The slot was taken meanwhile (code slot_full): choose another."
    ),
    412: OpenApiResponse(DETAIL, description="If-Match does not match the record's current ETag."),
    422: OpenApiResponse(DETAIL, description="This Idempotency-Key was used with another body."),
    429: OpenApiResponse(DETAIL, description="Too many requests; retry later."),
}
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag of the version read; a stale one is a 412 and changes nothing.",
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag of a version read before: while the record is still that version, the "
    "answer is 304 Not Modified without a body.",
)
NOT_MODIFIED = OpenApiResponse(description="The version named in If-None-Match is current; no body.")


def conditional_read(view_method):
    """Marks a read that answers ``If-None-Match`` with 304 (``clinic.api.read_answer``): the schema
    then lists the header and the 304 on it, and only on it (a view that reads its own way, like a
    patient's flags, says nothing it does not do)."""
    view_method.answers_if_none_match = True
    return view_method


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="A retry with the same key and body answers the first response and creates nothing. "
    "At most 255 characters (a longer key is a 400, never cut short).",
)


class ResourceSchema(AutoSchema):
    """A ``ResourceViewSet`` as the schema tells it (an operation's ``extend_schema`` still wins):
    every operation lists the errors of API.md it can answer and the headers it honours
    (``Idempotency-Key`` on create, ``If-Match`` on PUT and PATCH)."""

    def get_operation(self, *args, **kwargs):
        operation = with_non_blank_query_strings(super().get_operation(*args, **kwargs))
        handler = getattr(self.view, getattr(self.view, "action", None) or "", None)
        if operation and self.method == "GET" and getattr(handler, "answers_if_none_match", False):
            # After the operation's own extend_schema, which would otherwise replace the 304.
            operation.setdefault("parameters", []).append(
                {
                    "in": "header",
                    "name": IF_NONE_MATCH.name,
                    "schema": {"type": "string"},
                    "description": IF_NONE_MATCH.description,
                }
            )
            operation["responses"]["304"] = {"description": NOT_MODIFIED.description}
        return operation

    def get_response_serializers(self):
        ok = super().get_response_serializers()
        if not is_serializer(ok):
            return ok
        action = getattr(self.view, "action", None)
        if self.method == "DELETE":
            success = {204: None}
        elif action == "create":
            success = {201: ok}
        else:
            success = {200: ok}
        codes = {400, 401, 403, 429}  # 400: an unknown query parameter, on every operation
        if "{" in self.path or action == "list":
            codes.add(404)  # no such record, or a cursor that is not one of ours
        if action in ("update", "partial_update"):
            codes.add(412)
        if action == "create":
            codes.add(422)
        return {**success, **{code: ERRORS[code] for code in sorted(codes)}}

    def get_override_parameters(self):
        # Only the standard actions of ResourceViewSet honour these; an extra action says its own.
        headers = {"create": [IDEMPOTENCY_KEY], "update": [IF_MATCH], "partial_update": [IF_MATCH]}
        return [*super().get_override_parameters(), *headers.get(getattr(self.view, "action", None), [])]

    def get_request_serializer(self):
        # Writes read their own input serializer (ids of other records, code lists), not the output.
        input_class = getattr(self.view, "input_serializer_class", None)
        standard_write = getattr(self.view, "action", None) in ("create", "update", "partial_update")
        if input_class is not None and standard_write:
            return input_class(context={"request": getattr(self.view, "request", None)})
        return super().get_request_serializer()


def keep_dollar_in_paths(endpoints):
    """Preprocessing hook: put back the ``$`` of FHIR operations in the schema's paths.

    DRF turns a route into a path by stripping regex metacharacters, ``$`` among them, so
    ``fhir/Patient/<id>/$everything`` would be documented as ``.../everything``, which is no route.
    """
    fixed = []
    for path, path_regex, method, callback in endpoints:
        for name in re.findall(r"\\?\$(\w+)", path_regex):  # a route's "$x", or a regex's "\$x"
            path = re.sub(rf"/{name}(?=/|$)", f"/${name}", path)
        fixed.append((path, path_regex, method, callback))
    return fixed
