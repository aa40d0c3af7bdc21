"""A webhook source's mapping config: the TOML file of ``ledger sources add|configure --config FILE``.

The file is read strictly: an unknown key, a value of the wrong type, an item pattern that does not compile
or has no ``item`` group, a user mapped to anything but a pseudonymous id are refused with
``SourceConfigInvalid`` naming the file and the key (``users.17``, ``item.pattern``). The same document, as
jsonb, is what ``webhook_sources.config`` holds, and it is read back through the same check
(``parse_config``): what the ledger stored is what the file said. ``docs/webhook-source.example.toml``
shows every key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from ledger.domain.errors import ConfigurationError, FieldError
from ledger.domain.fields import IDENTIFIER_PATTERN, MAX_IDENTIFIER_LENGTH
from ledger.domain.identifiers import find_direct_identifier
from ledger.webhooks.model import SourceConfig

Id = Annotated[StrictStr, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=IDENTIFIER_PATTERN)]


def _pseudonymous(value: str) -> str:
    kind = find_direct_identifier(value)
    if kind is not None:
        msg = f"holds {kind}; only pseudonymous ids may enter the ledger"
        raise ValueError(msg)
    return value


Pseudonym = Annotated[Id, AfterValidator(_pseudonymous)]
"""An id the ledger records (an actor, a dataset, a model): holding no direct identifier."""
Size = Annotated[StrictInt, Field(ge=1, le=1_000_000)]
_DEFAULT_PATTERN = SourceConfig().item_pattern


class SourceConfigInvalid(ConfigurationError):
    """A source config cannot be used: unreadable, not TOML, or a key is wrong (``errors`` names each)."""

    code = "webhook_config_invalid"
    title = "The webhook source config is not valid"


class _Closed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _Item(_Closed):
    """``[item]``: ``field``, the ``task.data`` key of the URL (default ``image``, no other fallback);
    ``pattern``, matched against the whole of the URL path's last segment (``re.fullmatch``), whose
    ``item`` group is the item id. The default accepts only an opaque id as the file name's stem (a DICOM
    UID, a UUID, a hex digest of 16 or more digits), in linear time."""

    field: Annotated[StrictStr, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)] | None = None
    pattern: Annotated[StrictStr, Field(min_length=1, max_length=1000)] = _DEFAULT_PATTERN

    @model_validator(mode="after")
    def _compiles(self) -> Self:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            msg = f"pattern: not a regular expression ({exc})"
            raise ValueError(msg) from None
        if "item" not in compiled.groupindex:
            msg = "pattern: has no named group (?P<item>...) to take the item id from"
            raise ValueError(msg)
        return self


class _Guideline(_Closed):
    id: Pseudonym
    version: Pseudonym


class _Image(_Closed):
    width: Size
    height: Size


class _Model(_Closed):
    name: Pseudonym


class _ConfigFile(_Closed):
    dataset: Pseudonym | None = None
    item: _Item = Field(default_factory=_Item)
    guideline: _Guideline | None = None
    image: _Image | None = None
    model: _Model | None = None
    users: dict[Id, Pseudonym] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _user_ids_only(self) -> Self:
        for n, user in enumerate(self.users, start=1):
            kind = find_direct_identifier(user)
            if kind is not None:  # not repeated in the refusal: the key is named by its place
                msg = f"users: the key of entry {n} holds {kind}; a key is the tool's user id"
                raise ValueError(msg)
        return self


def load_config(path: Path | str) -> SourceConfig:
    """The config in the TOML file at ``path``; ``SourceConfigInvalid`` names the file and each wrong key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"webhook source config: cannot read {path}: {exc.strerror or exc}"
        raise SourceConfigInvalid(msg) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"webhook source config {path} is not valid TOML: {exc}"
        raise SourceConfigInvalid(msg) from None
    return parse_config(document, where=str(path))


def parse_config(document: Mapping[str, Any], *, where: str) -> SourceConfig:
    """The config a TOML-shaped document holds (a file's, or ``webhook_sources.config``); ``where`` names
    it in the refusal."""
    try:
        parsed = _ConfigFile.model_validate(document)
    except ValidationError as exc:
        errors = [_field_error(err) for err in exc.errors()]
        listed = "; ".join(f"{e.field}: {e.message}" for e in errors)
        msg = f"webhook source config {where}: {listed}"
        raise SourceConfigInvalid(msg, errors=errors) from None
    return SourceConfig(
        users=dict(parsed.users),
        dataset=parsed.dataset,
        item_field=parsed.item.field,
        item_pattern=parsed.item.pattern,
        guideline_id=parsed.guideline.id if parsed.guideline else None,
        guideline_version=parsed.guideline.version if parsed.guideline else None,
        image_width=parsed.image.width if parsed.image else None,
        image_height=parsed.image.height if parsed.image else None,
        model_name=parsed.model.name if parsed.model else None,
    )


def config_document(config: SourceConfig) -> dict[str, Any]:
    """The TOML-shaped document of ``config``, as stored in ``webhook_sources.config``; ``parse_config``
    reads it back to an equal ``SourceConfig``. Keys left at their defaults are left out, except the item
    pattern, which is always written: a later release's default never renames a source's items."""
    document: dict[str, Any] = {}
    if config.dataset is not None:
        document["dataset"] = config.dataset
    item: dict[str, Any] = {}
    if config.item_field is not None:
        item["field"] = config.item_field
    item["pattern"] = config.item_pattern
    document["item"] = item
    if config.guideline_id is not None or config.guideline_version is not None:
        document["guideline"] = {"id": config.guideline_id, "version": config.guideline_version}
    if config.image_width is not None or config.image_height is not None:
        document["image"] = {"width": config.image_width, "height": config.image_height}
    if config.model_name is not None:
        document["model"] = {"name": config.model_name}
    if config.users:
        document["users"] = dict(config.users)
    return document


def _field_error(err: Any) -> FieldError:
    """A pydantic error as the key it is about (``users.17``, ``item.pattern``) and what is wrong."""
    loc = [str(part) for part in err["loc"]]
    message = str(err["msg"]).removeprefix("Value error, ")
    for key in ("pattern", "users"):  # a table's own check names its key
        if message.startswith(f"{key}: "):
            loc, message = [*loc, key], message.removeprefix(f"{key}: ")
    if err["type"] == "string_pattern_mismatch":
        message = "must be one token: no spaces or control characters"
    if err["type"] == "extra_forbidden":
        message = "is not a key of a webhook source config (see docs/webhook-source.example.toml)"
    return FieldError(".".join(loc) or "(file)", message)
