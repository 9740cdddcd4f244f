"""Every request and response schema of the API, declared once as pydantic models.

flask-openapi3 reads them twice: to validate each request before the view runs, and to
write the OpenAPI document (`/api/v1/openapi.json`, browsable at `/api/docs`). So the
document cannot drift from what the server accepts, and a view receives parsed values.

Adding a route with a schema:

1. Declare its inputs here: a `Query` subclass for the query string (one field per
   parameter; reuse `Id`, `PageSize`, `one_of(...)`, `WindowQuery`), a `Path` model for
   `<id:...>` parts, a `Body` subclass for a JSON body. Each field's `description` becomes
   the parameter's documentation.
2. Declare its answer here as a `Schema` model (a `RootModel` with `openapi_extra` when the
   answer needs its own description, headers or another media type, as `BatchAccepted`).
3. In the route module, annotate the view's arguments (`query: MyQuery`, `path: MyPath`,
   `body: MyBody`) and pass `summary`, `description`, `operation_id` and `responses`
   (the model per status, and `api.openapi.error_answer(...)` for each error it gives).

Errors keep one shape, `{"error": {"code", "message"}}`: a validation failure answers 400
with the failing field's code (`ErrorCode` in its annotation, else the model's
`error_code`) and a message that starts with the parameter's name ("limit: ...",
"urls[2]: ..."). Validators raise `invalid(...)` to choose the message, or the code too.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Collection
from datetime import datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from analysis.card import SHIPPED_MATRICES
from api.context import settings
from core.filters import INCLUDE, UNCERTAIN_CHOICES, Filters, to_utc
from core.settings import Settings
from core.vocabulary import EMOTIONS, IMAGE_STATES, PLATFORMS, SCOPES
from db.queries import BUCKETS

# Ids are 32-bit INTEGER columns: a larger value could never match, and Postgres rejects it.
MAX_ID = 2**31 - 1
MAX_NAME_LENGTH = 200  # Batch.name is VARCHAR(200)
URL_SCHEMES = ("http", "https")
EXPORT_FORMATS = ("csv", "json")
WORKER_STATES = ("idle", "working", "waiting", "stalled")
DIGITS = re.compile(r"[0-9]+")
# "...T12:00:00+02:00" sent unencoded arrives as "...T12:00:00 02:00" (a query-string "+" is a space).
SPACE_FOR_PLUS = re.compile(r"([T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")
UTC_TIME = "ISO 8601, UTC (`Z`)."


def setting_default(name: str) -> Any:
    """A setting's default, for limits the document states (the server enforces the configured value)."""
    return Settings.model_fields[name].default


# --- validation errors -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ErrorCode:
    """Annotation metadata: the error code a failure of this field answers, e.g. `invalid_urls`."""

    code: str


def invalid(message: str, code: str = "invalid") -> PydanticCustomError:
    """A validation failure with our own message; a `code` starting with `invalid_` overrides the field's."""
    return PydanticCustomError(code, message)


def where(loc: tuple[int | str, ...]) -> str:
    """("urls", 2) -> "urls[2]": the parameter or field as the message names it."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class Request(BaseModel):
    """Base of every request model; knows which code each of its fields' failures answers."""

    error_code: ClassVar[str] = "invalid_parameter"
    by_name: ClassVar[dict[str, type[Request]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        Request.by_name[cls.__name__] = cls

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Cached per model: flask-openapi3 reads a query model's schema on every request (1.5 ms uncached)."""
        return copy.deepcopy(cached_json_schema(cls, args, tuple(sorted(kwargs.items()))))

    @classmethod
    def field_code(cls, name: int | str) -> str:
        field = cls.model_fields.get(str(name))
        codes = [item.code for item in field.metadata if isinstance(item, ErrorCode)] if field else []
        return codes[0] if codes else cls.error_code


@cache
def cached_json_schema(model: type[Request], args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> Any:
    return super(Request, model).model_json_schema(*args, **dict(kwargs))


def error_for(exc: ValidationError) -> tuple[str, str]:
    """(code, message) for the first failure: fields validate in declaration order, so the first wins."""
    first = exc.errors(include_url=False)[0]
    loc, kind, reason = tuple(first["loc"]), first["type"], first["msg"]
    if kind == "missing":
        reason = "required"
    model = Request.by_name.get(exc.title)
    if kind.startswith("invalid_"):
        code = kind
    elif not loc:
        return "invalid_json", "the body must be a JSON object (Content-Type: application/json)"
    else:
        code = model.field_code(loc[0]) if model else "invalid_parameter"
    return code, f"{where(loc)}: {reason}" if loc else reason


# --- query parameters ------------------------------------------------------------------------------


def positive_int(value: Any) -> int:
    """Ids, pages and sizes: digits only (no sign, space or fraction) and within a 32-bit id."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise invalid(f"must be an integer from 1 to {MAX_ID}")
    if not DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_ID:
        raise invalid(f"must be an integer from 1 to {MAX_ID}")
    return int(text)


def one_of(choices: Collection[str]) -> Callable[[Any], str]:
    """A validator accepting exactly one of `choices` (case-sensitive), naming them all otherwise."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise invalid(f"must be one of {', '.join(choices)}")
        return value

    return check


def parse_datetime(value: str) -> datetime:
    """ISO 8601 date or datetime, as an aware UTC datetime; no offset means UTC. ValueError if invalid."""
    return to_utc(datetime.fromisoformat(SPACE_FOR_PLUS.sub(r"\1+\2", value)))


def utc_datetime(value: Any) -> datetime:
    try:
        return to_utc(value) if isinstance(value, datetime) else parse_datetime(value)
    except (TypeError, ValueError) as exc:
        reason = str(exc) if "range of dates" in str(exc) else "must be an ISO 8601 date or datetime"
        raise invalid(f"{reason}, e.g. 2025-01-31 or 2025-01-31T12:00:00Z") from None


ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
Id = Annotated[int, BeforeValidator(positive_int), WithJsonSchema(ID_SCHEMA)]
PageSize = Annotated[
    int,
    BeforeValidator(positive_int),
    WithJsonSchema({**ID_SCHEMA, "default": setting_default("page_size")}),
]
Instant = Annotated[
    datetime,
    BeforeValidator(utc_datetime),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}),
]


def choice(choices: tuple[str, ...]) -> Any:
    """A parameter or field taking one of `choices`, documented as their enum."""
    return Annotated[str, BeforeValidator(one_of(choices)), WithJsonSchema({"type": "string", "enum": list(choices)})]


PlatformName = choice(PLATFORMS)
EmotionName = choice(EMOTIONS)
ImageState = choice(IMAGE_STATES)


def as_query_parameters(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A query parameter is a string or absent, never null: drop pydantic's `null` alternative and default."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]
        options = prop.pop("anyOf", None)
        if options is not None:
            kept = [option for option in options if option != {"type": "null"}]
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})


class Query(Request):
    """A query string: absent and empty (`?platform=`) both mean "not given"; unknown names are ignored."""

    model_config = ConfigDict(json_schema_extra=as_query_parameters)

    @model_validator(mode="before")
    @classmethod
    def blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value != ""}
        return data


class WindowQuery(Query):
    """The filters the dashboard's panels share: `/stats`, `/timeline`, `/queue`, `/faces`, `/images`, `/batches`."""

    platform: PlatformName | None = Field(None, description="Only this platform.")
    batch_id: Id | None = Field(None, description="Only this batch.")
    since: Instant | None = Field(
        None,
        description="Inclusive lower bound: ISO 8601 date or date-time; without an offset it is UTC.",
        json_schema_extra={"example": "2025-01-31T12:00:00Z"},
    )
    until: Instant | None = Field(
        None,
        description="Exclusive upper bound: ISO 8601 date or date-time; without an offset it is UTC.",
        json_schema_extra={"example": "2025-02-01"},
    )

    min_face_px: Id | None = Field(
        None,
        description="Only faces at least this many pixels on the shorter side of their box (e.g. 28 leaves out the "
        "`low_resolution` ones). The hourly rollups do not know face sizes: such views are counted from the faces.",
    )
    uncertain: choice(UNCERTAIN_CHOICES) | None = Field(
        None,
        description="Faces the classifier abstained on: `include` (default), `exclude` or `only`; counted from the "
        "faces like `min_face_px`.",
    )

    def filters(self) -> Filters:
        """The one filter value `db.queries` takes (its times are already UTC)."""
        return Filters(
            platform=self.platform,
            batch_id=self.batch_id,
            since=self.since,
            until=self.until,
            min_face_px=self.min_face_px,
            uncertain=self.uncertain or INCLUDE,
        )


LIMIT_DESCRIPTION = "Items to return; values above the server maximum (default 500) are capped."


def page_size(requested: int | None) -> int:
    """The configured default when absent, capped at the configured maximum."""
    config = settings()
    return min(requested or config.page_size, config.max_page_size)


class BatchListQuery(WindowQuery):
    limit: PageSize | None = Field(None, description=LIMIT_DESCRIPTION)


class BatchImagesQuery(Query):
    page: Annotated[int, BeforeValidator(positive_int), WithJsonSchema({**ID_SCHEMA, "default": 1})] = Field(
        1, description="1-based page number; past the last page gives no items."
    )
    per_page: PageSize | None = Field(
        None, description="Images per page; values above the server maximum (default 500) are capped."
    )
    status: ImageState | None = Field(None, description="Only images in this state.")


class ImageListQuery(WindowQuery):
    status: ImageState | None = Field(None, description="Only images in this state.")
    limit: PageSize | None = Field(None, description=LIMIT_DESCRIPTION)
    cursor: Id | None = Field(
        None, description="Only images with an id below this (the previous page's `next_cursor`)."
    )


class FaceExportQuery(WindowQuery):
    emotion: EmotionName | None = Field(None, description="Only faces whose dominant emotion is this.")
    format: Annotated[
        Literal["csv", "json"],
        BeforeValidator(one_of(EXPORT_FORMATS)),
        WithJsonSchema({"type": "string", "enum": list(EXPORT_FORMATS), "default": "csv"}),
    ] = Field("csv", description="`csv` (default) or `json`.")


class FaceListQuery(WindowQuery):
    emotion: EmotionName | None = Field(None, description="Only faces whose dominant emotion is this.")
    limit: PageSize | None = Field(None, description=LIMIT_DESCRIPTION)
    cursor: Id | None = Field(None, description="Only faces with an id below this (the previous page's `next_cursor`).")


class TimelineQuery(WindowQuery):
    bucket: choice(BUCKETS) | None = Field(None, description="Force hourly or daily buckets.")


class BatchPath(Request):
    batch_id: Id = Field(description="The batch's id.")


class ImagePath(Request):
    image_id: Id = Field(description="The image's id.")


# --- request bodies --------------------------------------------------------------------------------


def url_problem(url: object, max_length: int) -> str | None:
    """Why `url` cannot be fetched, or None if it can; the worker decides about private hosts."""
    if not isinstance(url, str):
        return "must be a string"
    if len(url) > max_length:
        return f"longer than {max_length} characters"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in URL_SCHEMES:
        return "scheme must be http or https"
    if not parts.hostname:
        return "has no host"
    return None


def fetchable_url(url: Any) -> str:
    problem = url_problem(url, settings().max_url_length)
    if problem:
        raise invalid(problem, "invalid_url")
    return url


def url_list(urls: Any) -> list[Any]:
    """A list of 1 to `max_batch_urls` items (a server setting, so checked here rather than in the schema)."""
    limit = settings().max_batch_urls
    if not isinstance(urls, list):
        raise invalid("required, a list of image URLs")
    if not 1 <= len(urls) <= limit:
        raise invalid(f"must hold 1 to {limit} URLs, got {len(urls)}")
    return urls


def batch_name(name: Any) -> str | None:
    """A batch label; blank means none. No NUL: a Postgres text column cannot hold one."""
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
        raise invalid(f"must be a string of at most {MAX_NAME_LENGTH} characters")
    if name and "\x00" in name:
        raise invalid("must not contain NUL characters")
    return (name or "").strip() or None


def optional_platform(platform: Any) -> str | None:
    return None if platform is None else one_of(PLATFORMS)(platform)


NAME_SCHEMA = {"type": "string", "maxLength": MAX_NAME_LENGTH, "pattern": "^[^\\u0000]*$"}
FetchableUrl = Annotated[
    str,
    BeforeValidator(fetchable_url),
    WithJsonSchema({"type": "string", "format": "uri", "maxLength": setting_default("max_url_length")}),
]


def checked_callback_url(url: Any) -> str | None:
    """Where to POST the batch's signed summary; refused without a secret to sign with."""
    if url is None or url == "":
        return None
    problem = url_problem(url, settings().max_url_length)
    if problem:
        raise invalid(problem)
    if not settings().webhook_secret:
        raise invalid("this server has no SOCIALFER_WEBHOOK_SECRET to sign callbacks with")
    return url


CALLBACK_URL_SCHEMA = {
    "type": "string",
    "maxLength": setting_default("max_url_length"),
    "pattern": "^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
}
CallbackUrl = Annotated[
    str | None,
    BeforeValidator(checked_callback_url),
    ErrorCode("invalid_callback_url"),
    WithJsonSchema({"anyOf": [CALLBACK_URL_SCHEMA, {"type": "null"}]}),
]
CALLBACK_DESCRIPTION = (
    "http(s) URL that receives the batch's summary when it ends, as a POST signed with HMAC-SHA256 "
    "(`X-Socialfer-Signature: t=<unix>,v1=<hex>` over `<t>.<body>`; README: Batch callbacks). Refused "
    "(`invalid_callback_url`) unless the server has `SOCIALFER_WEBHOOK_SECRET`. Sent through the same address "
    "checks as image downloads."
)
BatchName = Annotated[
    str | None,
    BeforeValidator(batch_name),
    ErrorCode("invalid_name"),
    WithJsonSchema({"anyOf": [NAME_SCHEMA, {"type": "null"}]}),
]
BatchPlatform = Annotated[
    str | None,
    BeforeValidator(optional_platform),
    ErrorCode("invalid_platform"),
    WithJsonSchema({"anyOf": [{"type": "string", "enum": list(PLATFORMS)}, {"type": "null"}]}),
]


class Body(Request):
    """A JSON body: an object, whose fields answer their own codes; anything else is `invalid_json`."""

    error_code: ClassVar[str] = "invalid_json"

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Any:
        """flask-openapi3 hands a body that is a JSON string here to be parsed a second time;
        a string is not an object, so it is validated (and refused) as the value it is."""
        return cls.model_validate(json_data, **kwargs)


class BatchCreate(Body):
    """Validated whole before anything is stored, so a rejected batch leaves no trace."""

    urls: Annotated[
        list[FetchableUrl],
        BeforeValidator(url_list),
        ErrorCode("invalid_urls"),
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "maxItems": setting_default("max_batch_urls"),
                "items": {"type": "string", "format": "uri", "maxLength": setting_default("max_url_length")},
            }
        ),
    ] = Field(
        description="http(s) URLs with a host, at most 2048 characters each, no whitespace "
        "(limits are server settings; these are the defaults)."
    )
    platform: BatchPlatform = Field(
        None, description="Platform for every image; omitted or null means inferred per URL."
    )
    name: BatchName = Field(None, description="A label; blank is stored as null.")
    callback_url: CallbackUrl = Field(None, description=CALLBACK_DESCRIPTION)


class UploadForm(Body):
    """The multipart form of `POST /uploads`; `files` are read and checked by the route (api/uploads.py)."""

    files: list[Any] = Field(
        json_schema_extra={
            "type": "array",
            "minItems": 1,
            "maxItems": setting_default("max_batch_urls"),
            "items": {"type": "string", "format": "binary"},
        },
        description="The images; at most 1000 per batch and 20 MiB each (server settings; these are the defaults).",
    )
    platform: Annotated[
        str | None,
        BeforeValidator(optional_platform),
        ErrorCode("invalid_platform"),
        WithJsonSchema({"type": "string", "enum": list(PLATFORMS)}),
    ] = Field(None, description="Platform for every image; omitted means `other`.")
    name: Annotated[
        str | None,
        BeforeValidator(batch_name),
        ErrorCode("invalid_name"),
        WithJsonSchema(NAME_SCHEMA),
    ] = Field(None, description="A label; blank is stored as null.")
    callback_url: Annotated[
        str | None,
        BeforeValidator(checked_callback_url),
        ErrorCode("invalid_callback_url"),
        WithJsonSchema(CALLBACK_URL_SCHEMA),
    ] = Field(None, description=CALLBACK_DESCRIPTION)


# --- answers ---------------------------------------------------------------------------------------


class Schema(BaseModel):
    """Base of every answer: documents JSON that `api.serialize` writes (tests hold one against the other)."""

    model_config = ConfigDict(extra="ignore")


Count = Annotated[int, Field(ge=0)]
UtcTime = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description=UTC_TIME)]


class ErrorDetail(Schema):
    code: str = Field(
        description="Stable, snake_case; branch on this.", examples=["invalid_url", "not_found", "method_not_allowed"]
    )
    message: str = Field(description="For people; may change.")


class Error(Schema):
    error: ErrorDetail


class Callback(Schema):
    state: Literal["waiting", "pending", "delivered", "failed"] = Field(
        description="`waiting` for the batch to end, `pending` while being sent or retried, then `delivered`, "
        "or `failed` (a refused address, or 24 h of failures)."
    )
    attempts: Count
    last_status: int | None = Field(description="The receiver's HTTP status at the last attempt.")
    last_error: str | None


class Batch(Schema):
    id: int
    name: str | None
    platform: PlatformName | None = Field(description="The platform given at submission; null if inferred per image.")
    created_at: UtcTime
    total: Annotated[int, Field(ge=1)]
    queued: Count
    processing: Count
    done: Count
    failed: Count
    faces: Count = Field(description="Faces found in the done images.")
    status: Literal["queued", "processing", "done"] = Field(
        description="`queued` while no image has started, `done` when none is queued or processing, else `processing`."
    )
    callback: Callback | None = Field(description="The batch-end callback's delivery; null when none was asked for.")


class BatchAccepted(RootModel[Batch]):
    """A batch just stored and queued; `Location` says where to follow it."""

    model_config = ConfigDict(
        openapi_extra={
            "description": "Accepted: stored and queued.",
            "headers": {"Location": {"description": "The batch's URL.", "schema": {"type": "string"}}},
        }
    )


class BatchList(Schema):
    items: list[Batch]


Probability = Annotated[float, Field(ge=0, le=1)]
Scores = create_model(
    "Scores",
    __base__=Schema,
    __doc__="Probability of each emotion.",
    **{name: (Probability, ...) for name in EMOTIONS},
)


class Face(Schema):
    id: int
    image_id: int
    box: list[int] = Field(min_length=4, max_length=4, description="[x, y, width, height] in pixels of the image.")
    confidence: float = Field(description="Face detector confidence.")
    emotion: EmotionName
    scores: Scores
    size_px: Count = Field(description="The shorter side of the box, in pixels of the image.")
    low_resolution: bool = Field(
        description="Smaller than the size the classifier is reliable at (SOCIALFER_LOW_RESOLUTION_PX when analysed)."
    )
    uncertain: bool = Field(description="The classifier abstained: its top probability is under its threshold.")


class ListedFace(Face):
    platform: PlatformName
    batch_id: int
    analyzed_at: UtcTime


class ExportedFace(ListedFace):
    image_url: str = Field(description="The image's URL (`upload:<file name>` for uploads).")


class FacePage(Schema):
    items: list[ListedFace]
    next_cursor: int | None = Field(description="`cursor` for the next page; null on the last page.")


class FaceExport(RootModel[list[ExportedFace]]):
    """The export download: a CSV file, or this JSON array."""

    model_config = ConfigDict(
        openapi_extra={
            "description": "The faces, as an attachment (`Content-Disposition`).",
            "headers": {
                "Content-Disposition": {
                    "description": '`attachment; filename="socialfer-faces-<UTC time>.<format>"`',
                    "schema": {"type": "string"},
                }
            },
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    )


class ImageError(Schema):
    code: str
    message: str | None


class Timings(Schema):
    fetch_ms: Annotated[float, Field(ge=0)] | None
    analyze_ms: Annotated[float, Field(ge=0)] | None


class Detection(Schema):
    min_face_px: Count | None = Field(
        description="The smallest face size (pixels) looked for: the setting, or more when the scan's pixel budget "
        "bound (`scan_capped`) or every face found was large; null before analysis."
    )
    scan_capped: bool = Field(description="The image was too large to scan for faces down to the setting.")
    faces_beyond_cap: Count = Field(description="Faces found beyond SOCIALFER_MAX_FACES, not kept (the smallest).")


class Image(Schema):
    id: int
    batch_id: int
    url: str
    platform: PlatformName
    status: ImageState
    error: ImageError | None = Field(description="Why a failed image failed; null otherwise.")
    width: Count | None
    height: Count | None
    content_type: str | None
    byte_size: Count | None
    face_count: Count | None = Field(description="Set when done.")
    attempts: Count
    timings: Timings
    created_at: UtcTime
    started_at: UtcTime | None = Field(description="ISO 8601, UTC (`Z`); null until it happens.")
    finished_at: UtcTime | None = Field(description="ISO 8601, UTC (`Z`); null until it happens.")
    detection: Detection
    faces: list[Face]


class ImagePage(Schema):
    items: list[Image]
    page: Annotated[int, Field(ge=1)]
    per_page: Annotated[int, Field(ge=1)]
    total: Count = Field(description="Images matching, all pages.")
    pages: Count


class ImageList(Schema):
    items: list[Image]
    next_cursor: int | None = Field(description="`cursor` for the next page; null on the last page.")


Interval = Annotated[
    list[float], Field(min_length=2, max_length=2, description="95 % interval [low, high] (docs/statistics.md).")
]


class CorrectedShare(Schema):
    """The estimated true share: the raw shares corrected with the model card's confusion matrix
    (`statistics.corrected`), its interval carrying the sampling error and the matrix's own."""

    share: Probability
    interval: Interval


class EmotionCount(Schema):
    count: Count
    share: Probability = Field(description="The classifier's raw share: count / faces, 0 when there are no faces.")
    interval: Interval = Field(
        description="95 % interval of the raw share: Wilson's at the effective number of faces of a cluster-robust "
        "variance (the faces of one image are not independent)."
    )
    corrected: CorrectedShare | None = Field(description="Null when there are no faces or no matrix is available.")


EmotionShares = create_model(
    "EmotionShares",
    __base__=Schema,
    __doc__="Every emotion, in model order.",
    **{name: (EmotionCount, ...) for name in EMOTIONS},
)
EmotionCounts = create_model(
    "EmotionCounts",
    __base__=Schema,
    __doc__="Faces per emotion, every emotion present.",
    **{name: (Count, ...) for name in EMOTIONS},
)


class Summary(Schema):
    images: Count = Field(description="Done images.")
    images_with_faces: Count = Field(description="Done images with at least one of the faces counted.")
    faces: Count
    uncertain: Count = Field(description="Of `faces`, those the classifier abstained on.")
    low_resolution: Count = Field(description="Of `faces`, those flagged low resolution.")
    reliable: bool = Field(
        description="At least `statistics.min_images` (SOCIALFER_MIN_IMAGES_FOR_SHARE) images with faces; "
        "below that, read the intervals rather than the shares."
    )
    emotions: EmotionShares


class CorrectionMethod(Schema):
    matrix: str = Field(description="The model card's confusion matrix the shares were corrected with.")
    method: str
    replicates: int = Field(ge=1, description="Draws the corrected intervals come from.")
    calibration_faces: dict[str, float] = Field(
        description="Per emotion, the labelled faces its matrix row was measured from, at their effective number "
        "(people as clusters); 0: the row is its prior alone (FER2013's confusions of that expression)."
    )
    thin_rows: list[str] = Field(
        description="Emotions whose row is worth fewer than `thin_row_faces` faces: their corrected shares lean on "
        "the prior (a quarter of the row's weight or more), an assumption the data could not check."
    )
    thin_row_faces: int = Field(ge=1, description="The threshold of `thin_rows`.")
    prior_faces: float = Field(ge=0, description="What each row's prior (FER2013's row shape) weighs, in faces.")
    measured_on: Literal["real_photos", "fer2013_crops"] | None = Field(
        description="The faces the matrix was measured on (null: a matrix the card does not explain)."
    )
    warning: str | None = Field(
        description="Set when the matrix was not measured on real photos: such a correction of real photos rests on "
        "errors the classifier makes on other faces (docs/statistics.md, section 5)."
    )


class StatisticsMethod(Schema):
    """What the intervals and corrected shares are (docs/statistics.md)."""

    level: float = Field(description="Coverage of every interval: 0.95.")
    min_images: int = Field(ge=1, description="Images with faces a set needs to be `reliable`.")
    raw: str
    corrected: CorrectionMethod | None = Field(description="Null when no matrix is available (see `note`).")
    note: str | None = Field(None, description="Why corrected shares are missing, when they are.")


class Stats(Summary):
    faces_left_out: Count = Field(description="Faces of the same view that `min_face_px` and `uncertain` leave out.")
    by_platform: dict[Literal[PLATFORMS], Summary]  # type: ignore[valid-type] - the platforms with done images
    statistics: StatisticsMethod


MATRIX_DESCRIPTION = (
    "The model card's confusion matrix to correct shares with: `wild_calibration` (real photos, the calibration "
    "fold; the default, SOCIALFER_CONFUSION_MATRIX), `fer2013_publictest` or `wild_heldout`."
)


class StatsQuery(WindowQuery):
    matrix: choice(SHIPPED_MATRICES) | None = Field(None, description=MATRIX_DESCRIPTION)


def side_field(side: str, name: str, annotation: Any, description: str) -> Any:
    return (
        annotation | None,
        Field(None, alias=f"{side}.{name}", description=f"Set {side.upper()}: {description} Overrides `{name}`."),
    )


SIDE_FILTERS = {
    "platform": (PlatformName, "only this platform."),
    "batch_id": (Id, "only this batch."),
    "since": (Instant, "inclusive lower bound (ISO 8601; UTC without an offset)."),
    "until": (Instant, "exclusive upper bound (ISO 8601; UTC without an offset)."),
}
CompareSides = create_model(
    "CompareSides",
    __base__=StatsQuery,
    **{
        f"{side}_{name}": side_field(side, name, annotation, description)
        for side in ("a", "b")
        for name, (annotation, description) in SIDE_FILTERS.items()
    },
)


class CompareQuery(CompareSides):  # type: ignore[misc, valid-type] - fields made from SIDE_FILTERS
    """Two sets, `a.*` and `b.*`; the unprefixed filters apply to both unless a set's own override them."""

    def side(self, side: str) -> Filters:
        own = {name: getattr(self, f"{side}_{name}") for name in SIDE_FILTERS}
        common = self.filters()
        return Filters(**{name: own[name] if own[name] is not None else getattr(common, name) for name in own})


class SideFilters(Schema):
    platform: PlatformName | None
    batch_id: int | None
    since: UtcTime | None
    until: UtcTime | None


class CompareSide(Summary):
    filters: SideFilters = Field(description="The set's filters, shared and own together.")
    faces_left_out: Count = Field(description="Faces of the set that `min_face_px` and `uncertain` leave out.")


class ShareDifference(Schema):
    difference: float = Field(ge=-1, le=1, description="a - b.")
    interval: Interval
    p_value: Probability = Field(description="Two-sided, against no difference.")
    p_holm: Probability = Field(description="Holm-adjusted over the seven emotions.")
    significant: bool = Field(description="p_holm < 0.05: distinguishable from zero after correcting for seven tests.")


class EmotionDifference(Schema):
    raw: ShareDifference = Field(
        description="Of the classifier's shares: t interval (Welch's degrees of freedom), cluster-robust variances."
    )
    corrected: ShareDifference | None = Field(
        description="Of the corrected shares: percentile interval over the two sets' replicates, paired by "
        "matrix draw (unconstrained, so a difference is not pulled by either side's clipping); null "
        "when a set has no faces or no matrix is available."
    )


EmotionDifferences = create_model(
    "EmotionDifferences",
    __base__=Schema,
    __doc__="Every emotion, in model order.",
    **{name: (EmotionDifference, ...) for name in EMOTIONS},
)


class Comparison(Schema):
    a: CompareSide
    b: CompareSide
    reliable: bool = Field(description="Both sets are reliable.")
    differences: EmotionDifferences
    statistics: StatisticsMethod


class TimelineBucket(Schema):
    start: str = Field(json_schema_extra={"format": "date-time"}, description="The hour or day's start, UTC.")
    faces: Count
    emotions: EmotionCounts


class Timeline(Schema):
    bucket: choice(BUCKETS)
    start: str | None = Field(
        json_schema_extra={"format": "date-time"},
        description="Start of the range: `since`, else the first face's time; ISO 8601, UTC (`Z`).",
    )
    end: str | None = Field(
        json_schema_extra={"format": "date-time"}, description="End of the range: `until`, else the last face's time."
    )
    items: list[TimelineBucket]


ImageStates = create_model("ImageStates", __base__=Schema, **{state: (Count, ...) for state in IMAGE_STATES})


class Worker(Schema):
    state: choice(WORKER_STATES)
    queued: Count
    processing: Count
    oldest_queued_at: UtcTime | None = Field(description="When the longest-waiting image was queued.")
    last_finished_at: UtcTime | None = Field(description="When an image last finished, done or failed.")


class Queue(Schema):
    images: ImageStates
    worker: Worker


class Health(Schema):
    status: Literal["ok", "error"]
    database: Literal["ok", "error"]
    broker: Literal["ok", "error"]


class Live(Schema):
    status: Literal["ok"]


# --- access control --------------------------------------------------------------------------------

MAX_KEY_NAME = 100


KEY_NAME_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_NAME,
    "pattern": "^[^\\u0000]*\\S[^\\u0000]*$",
}
PRESENTED_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200}


def key_name(value: Any) -> str:
    """A name that shows something: not blank, no NUL (Postgres cannot store it)."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_KEY_NAME
        or "\x00" in value
        or not re.search(r"\S", value)
    ):
        raise invalid(f"must be a string of 1 to {MAX_KEY_NAME} characters, not blank, without NUL")
    return value.strip()


def presented_key(value: Any) -> str:
    """Any non-empty string: whether it is a key is for authentication to say (401)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise invalid("required, the API key to sign in with")
    return value


class SignIn(Body):
    key: Annotated[
        str, BeforeValidator(presented_key), ErrorCode("invalid_key"), WithJsonSchema(PRESENTED_KEY_SCHEMA)
    ] = Field(description="An API key; it is exchanged for an HttpOnly session cookie and not kept by the page.")


class KeyCreate(Body):
    name: Annotated[str, BeforeValidator(key_name), ErrorCode("invalid_name"), WithJsonSchema(KEY_NAME_SCHEMA)] = Field(
        description="Who or what the key is for; shown in lists and the audit log."
    )
    scope: Annotated[
        str,
        BeforeValidator(one_of(SCOPES)),
        ErrorCode("invalid_scope"),
        WithJsonSchema({"type": "string", "enum": list(SCOPES)}),
    ] = Field(description="`read` < `write` (submit, upload) < `admin` (delete, manage keys).")


class KeyPath(Request):
    key_id: Id = Field(description="The key's id.")


class AuditQuery(Query):
    limit: PageSize | None = Field(None, description=LIMIT_DESCRIPTION)
    cursor: Id | None = Field(
        None, description="Only entries with an id below this (the previous page's `next_cursor`)."
    )


class SessionState(Schema):
    open_mode: bool = Field(description="No API key exists: everything is open (the embedded default's first look).")
    public_reads: bool = Field(description="Reads need no key (SOCIALFER_PUBLIC_READS).")
    signed_in: bool
    name: str | None = Field(description="The signed-in key's name.")
    scope: Literal["read", "write", "admin"] | None = Field(description="What this session may do.")
    csrf_token: str = Field(description="Send it as `X-CSRF-Token` with every write made through the session cookie.")


class SignedOut(Schema):
    signed_in: Literal[False]
    csrf_token: str


class Key(Schema):
    id: int
    name: str
    scope: Literal["read", "write", "admin"]
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: UtcTime
    last_used_at: UtcTime | None
    revoked_at: UtcTime | None


class KeyList(Schema):
    items: list[Key]


class KeyCreated(Key):
    key: str = Field(description="The key itself: shown in this answer only, stored hashed.")


class KeyRevoked(Schema):
    id: int
    revoked: Literal[True]


class AuditEntry(Schema):
    id: int
    at: UtcTime
    actor: str = Field(description="The key's name (`open mode`, `command line`, `env key N`).")
    action: str = Field(examples=["submit", "upload", "delete_batch", "delete_image", "key_create", "key_revoke"])
    target: str | None
    count: Count


class AuditPage(Schema):
    items: list[AuditEntry]
    next_cursor: int | None


class Deleted(Schema):
    id: int
    deleted: Literal[True]
    images: Count | None = Field(None, description="Images erased with the batch.")
