"""The Cloud API message payloads msgworker sends, validated before anything is written.

The message classes are public and typed: ``TextMessage(to="+905321234567",
text=Text(body="Hi"))`` builds a payload an editor and mypy check; a plain dict with the same
JSON shape is validated by the same models.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from worker.bounds import body_size_problem, shape_problems
from worker.errors import FieldProblem, InvalidMessage

__all__ = [
    "AudioMessage",
    "DocumentMessage",
    "ImageMessage",
    "Interactive",
    "InteractiveMessage",
    "Language",
    "Media",
    "Message",
    "Template",
    "TemplateMessage",
    "Text",
    "TextMessage",
]

# The Cloud API's own limits.
TEXT_BODY_MAX = 4096
CAPTION_MAX = 1024
URL_MAX = 2048
FILENAME_MAX = 240
MEDIA_ID_MAX = 128
TEMPLATE_COMPONENTS_MAX = 16  # header, body, up to 10 buttons, a carousel
INTERACTIVE_BODY_MAX = 1024
BUTTONS_MAX = 3
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10  # in all sections together
# E.164 allows at most 15 digits; shorter than 7 is no reachable mobile number anywhere.
PHONE_DIGITS_MIN = 7
PHONE_DIGITS_MAX = 15
_PHONE_DECORATION = re.compile(r"[\s().-]")


def normalise_phone(value: str) -> str:
    """Digits only: drop one leading ``+`` and the spaces, dots, dashes and brackets people type."""
    digits = _PHONE_DECORATION.sub("", value).removeprefix("+")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("must be a phone number: digits with an optional leading +")
    if not PHONE_DIGITS_MIN <= len(digits) <= PHONE_DIGITS_MAX:
        raise ValueError(
            f"must have {PHONE_DIGITS_MIN} to {PHONE_DIGITS_MAX} digits with the country code"
        )
    if digits.startswith("0"):
        raise ValueError("must start with the country code, not 0")
    return digits


# normalise_phone's rule for the API's document: digits (an optional + and the decoration people
# type around them allowed), 7 to 15 of them, the first not 0.
_DECORATION = r"[\s().-]*"
PHONE_PATTERN = rf"^{_DECORATION}\+?{_DECORATION}[1-9](?:{_DECORATION}[0-9]){{6,14}}{_DECORATION}$"
Phone = Annotated[
    str,
    AfterValidator(normalise_phone),
    WithJsonSchema({"type": "string", "pattern": PHONE_PATTERN}),
]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


NonBlank = Annotated[str, StringConstraints(min_length=1), AfterValidator(_non_blank)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class _Open(BaseModel):
    """Nested Cloud API objects whose optional fields grow with Meta's releases."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Text(_Strict):
    body: Annotated[str, StringConstraints(max_length=TEXT_BODY_MAX), AfterValidator(_non_blank)]
    preview_url: StrictBool = False  # true or false: 1 or "yes" is a mistake, not a flag


class Media(_Strict):
    """An image, audio or document: a public ``link`` or an uploaded media ``id``."""

    link: Annotated[str, Field(max_length=URL_MAX, pattern=r"^https?://\S+$")] | None = None
    id: Annotated[NonBlank, Field(max_length=MEDIA_ID_MAX)] | None = None
    caption: Annotated[str, Field(max_length=CAPTION_MAX)] | None = None
    filename: Annotated[NonBlank, Field(max_length=FILENAME_MAX)] | None = None

    @model_validator(mode="after")
    def _link_or_id(self) -> Media:
        if (self.link is None) == (self.id is None):
            raise ValueError("give exactly one of link or id")
        return self


# A template's name and language code, as WhatsApp names them (and template holds do).
TEMPLATE_NAME = r"^[a-z0-9_]{1,512}$"
LANGUAGE_CODE = r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$"


class Language(_Strict):
    code: Annotated[str, Field(pattern=LANGUAGE_CODE)]
    policy: Literal["deterministic"] = "deterministic"


class Template(_Strict):
    name: Annotated[str, Field(pattern=TEMPLATE_NAME)]
    language: Language
    components: list[dict[str, Any]] = Field(
        default_factory=list, max_length=TEMPLATE_COMPONENTS_MAX
    )


def _bounded_body(body: dict[str, Any]) -> dict[str, Any]:
    text = body.get("text")
    if isinstance(text, str) and len(text) > INTERACTIVE_BODY_MAX:
        raise ValueError(f"text must have at most {INTERACTIVE_BODY_MAX} characters")
    return body


def _bounded_action(action: dict[str, Any]) -> dict[str, Any]:
    """Reply buttons and list rows as many as WhatsApp shows; a link as long as it takes."""
    buttons = action.get("buttons")
    if isinstance(buttons, list) and len(buttons) > BUTTONS_MAX:
        raise ValueError(f"at most {BUTTONS_MAX} buttons")
    sections = action.get("sections")
    if isinstance(sections, list):
        if len(sections) > LIST_SECTIONS_MAX:
            raise ValueError(f"at most {LIST_SECTIONS_MAX} sections")
        rows = [
            s["rows"] for s in sections if isinstance(s, dict) and isinstance(s.get("rows"), list)
        ]
        if sum(len(r) for r in rows) > LIST_ROWS_MAX:
            raise ValueError(f"at most {LIST_ROWS_MAX} rows in all sections together")
    parameters = action.get("parameters")
    url = parameters.get("url") if isinstance(parameters, dict) else None
    if isinstance(url, str) and len(url) > URL_MAX:
        raise ValueError(f"parameters.url must have at most {URL_MAX} characters")
    return action


class Interactive(_Open):
    type: Literal["button", "list", "cta_url", "flow", "product", "product_list"]
    body: Annotated[dict[str, Any], AfterValidator(_bounded_body)] | None = None
    action: Annotated[dict[str, Any], AfterValidator(_bounded_action)]


def _type_is_required(schema: dict[str, Any]) -> None:
    """The document says what validation does: ``type`` picks the message's kind (it is the
    union's discriminator), so a payload without it is refused, default or not."""
    schema["required"] = ["type", *schema.get("required", [])]


class _Base(_Strict):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=False, json_schema_extra=_type_is_required
    )
    messaging_product: Literal["whatsapp"] = "whatsapp"
    recipient_type: Literal["individual"] = "individual"
    to: Phone
    context: dict[str, Any] | None = None
    biz_opaque_callback_data: Annotated[str, Field(max_length=512)] | None = None


class TextMessage(_Base):
    type: Literal["text"] = "text"
    text: Text


class ImageMessage(_Base):
    type: Literal["image"] = "image"
    image: Media


class AudioMessage(_Base):
    type: Literal["audio"] = "audio"
    audio: Media


class DocumentMessage(_Base):
    type: Literal["document"] = "document"
    document: Media


class TemplateMessage(_Base):
    type: Literal["template"] = "template"
    template: Template


class InteractiveMessage(_Base):
    type: Literal["interactive"] = "interactive"
    interactive: Interactive


Message = Annotated[
    TextMessage
    | ImageMessage
    | AudioMessage
    | DocumentMessage
    | TemplateMessage
    | InteractiveMessage,
    Field(discriminator="type"),
]
MESSAGE_TYPES = ("text", "image", "audio", "document", "template", "interactive")

_message_adapter: TypeAdapter[Message] = TypeAdapter(Message)


def parse_message(payload: object) -> Message:
    """Validate a Cloud API payload; raise InvalidMessage naming every bad field.

    Its shape (depth, counts, lengths, numbers) is checked first, without recursion, so no
    payload can make validation itself fail or take long.
    """
    problems = shape_problems(payload)
    if problems:
        raise InvalidMessage(problems)
    try:
        message = _message_adapter.validate_python(payload)
    except ValidationError as exc:
        raise InvalidMessage(field_problems(exc)) from None
    too_large = body_size_problem(message_body(message))
    if too_large is not None:
        raise InvalidMessage([too_large])
    return message


def message_body(message: Message) -> dict[str, Any]:
    """The JSON body to POST: normalised, without the fields nobody set."""
    return message.model_dump(mode="json", exclude_none=True)


def field_problems(exc: ValidationError, *, prefix: str = "") -> list[FieldProblem]:
    """Turn pydantic's errors into ``field: message`` pairs, the tagged-union noise removed."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        parts = [str(part) for part in error["loc"]]
        if len(parts) > 1 and parts[0] in MESSAGE_TYPES:
            parts = parts[1:]  # the union's tag, which pydantic puts first
        path = ".".join(p for p in parts if p)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":
            path, message = "type", f"must be one of {', '.join(MESSAGE_TYPES)}"
        elif error["type"] == "union_tag_not_found":
            path, message = "type", "is required"
        problems.append(FieldProblem(field=prefix + (path or "message"), message=message))
    return problems
