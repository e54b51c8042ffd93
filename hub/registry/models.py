"""The registry's records: sites, zones, rooms, beds, residents, gateways, devices, bindings.

Each record is a frozen pydantic model with its key fields (`KEY`) and the fields that may never
change once it exists (`FIXED`). The `…Spec` models are the nested shape of the hub
configuration's `sites:` list, which seeds the registry on a hub's first start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from contract.wire import Identifier
from hub.core.errors import ConflictError, DomainError, NotFoundError
from hub.registry.contact_urls import url_problem

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
BedCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
ElderCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
# The rule for hub user names (hub/access/users.py, which depends on this module through
# hub.access).
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]
MAX_NOTIFY_URLS = 5
PHONE_PATTERN = r"^\+?[0-9][0-9 ()-]{2,30}$"

ZoneKind = Literal["care_home", "dementia", "nursing", "family"]
RoomKind = Literal["bedroom", "bathroom", "lounge", "dining", "corridor", "exit", "other"]
CareLevel = Literal["self_care", "partly_dependent", "fully_dependent"]
RiskFlag = Literal["living_alone", "dementia", "wander_risk", "no_carer"]
Relation = Literal["family", "family_doctor", "other"]
DeviceRole = Literal["exit_door"]
M = TypeVar("M", bound=BaseModel)
BindingReason = Literal["config", "admission", "transfer", "discharge"]


class RegistryError(DomainError, ValueError):
    """A change the registry refuses; the message says what is wrong in the user's terms."""


class NotFound(RegistryError, NotFoundError):
    """The change or query names a record that does not exist."""


class Conflict(RegistryError, ConflictError):
    """The change clashes with what is there now: a code in use, an occupied bed."""


class RecordBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    KIND: ClassVar[str]
    KEY: ClassVar[tuple[str, ...]]
    FIXED: ClassVar[tuple[str, ...]] = ()

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, name)) for name in self.KEY)

    @property
    def ref(self) -> str:
        """How a person names this record: `room sunrise/r101`, `bed SR-E-101`."""
        return f"{self.KIND} {'/'.join(self.key)}"


class _SiteFields(RecordBase):
    id: Identifier
    name: Name
    # The care service's desk or on-call line: what a family calls when nobody answers.
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)


class _ZoneFields(RecordBase):
    id: Identifier
    name: Name
    kind: ZoneKind = "care_home"


class _RoomFields(RecordBase):
    id: Identifier
    name: Name
    kind: RoomKind = "bedroom"


class Contact(BaseModel):
    """Someone to call about a resident; a resident's contacts are kept in calling order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    relation: Relation
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)
    user: Username | None = None  # their hub account: push notifications and the family app
    notify: list[str] = Field(default_factory=list, max_length=MAX_NOTIFY_URLS)

    @field_validator("notify")
    @classmethod
    def _usable_urls(cls, urls: list[str]) -> list[str]:
        urls = [url.strip() for url in urls]
        for n, url in enumerate(urls, 1):
            problem = url_problem(url)
            if problem is not None:
                raise ValueError(f"URL {n}: {problem}")
        if len(set(urls)) != len(urls):
            raise ValueError("the same notify URL is listed twice")
        return urls

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not (self.phone or self.email or self.user or self.notify):
            raise ValueError(
                f"contact {self.name!r} needs a way to be reached: a phone number, an e-mail "
                "address, a hub user (for push) or an Apprise URL to notify"
            )
        return self


class Resident(RecordBase):
    KIND = "resident"
    KEY = ("code",)
    FIXED = KEY

    code: ElderCode
    name: Name
    care_level: CareLevel | None = None
    flags: list[RiskFlag] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list, max_length=20)

    @field_validator("flags")
    @classmethod
    def _flags_once(cls, flags: list[RiskFlag]) -> list[RiskFlag]:
        return sorted(set(flags))


class Site(_SiteFields):
    KIND = "site"
    KEY = ("id",)


class Zone(_ZoneFields):
    KIND = "zone"
    KEY = ("site", "id")
    FIXED = KEY

    site: Identifier


class Room(_RoomFields):
    KIND = "room"
    KEY = ("site", "id")
    FIXED = KEY

    site: Identifier
    zone: Identifier


class Bed(RecordBase):
    KIND = "bed"
    KEY = ("code",)
    FIXED = ("code", "site")

    code: BedCode
    site: Identifier
    room: Identifier
    label: str | None = Field(default=None, max_length=200)


class Gateway(RecordBase):
    KIND = "gateway"
    KEY = ("site", "id")
    FIXED = KEY

    site: Identifier
    id: Identifier
    name: str | None = Field(default=None, max_length=200)


class _DeviceFields(RecordBase):
    id: Identifier
    gateway: Identifier
    profile: str = Field(min_length=1, max_length=100)
    bed: BedCode | None = None
    room: Identifier | None = None
    role: DeviceRole | None = None

    @model_validator(mode="after")
    def _bound_once(self) -> _DeviceFields:
        if self.bed is not None and self.room is not None:
            raise ValueError(
                f"device {self.id!r} is bound to both bed {self.bed!r} and room {self.room!r}; "
                "bind it to one of them"
            )
        if self.bed is None and self.room is None:
            raise ValueError(f"device {self.id!r} must be bound to a bed or a room")
        return self


class Device(_DeviceFields):
    KIND = "device"
    KEY = ("id",)
    FIXED = KEY

    site: Identifier


class Binding(RecordBase):
    """A resident in a bed from `start` until `end` (None: still there). Times are Unix seconds."""

    KIND = "binding"
    KEY = ("resident", "start")
    FIXED = KEY

    resident: ElderCode
    bed: BedCode
    start: float = Field(ge=0)
    end: float | None = None
    start_reason: BindingReason
    end_reason: BindingReason | None = None

    def covers(self, at: float) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


Record = Site | Zone | Room | Bed | Resident | Gateway | Device
RECORD_KINDS: dict[str, type[Record]] = {
    kind.KIND: kind for kind in (Site, Zone, Room, Bed, Resident, Gateway, Device)
}


# The configuration file's nested shape.


ResidentSpec = Resident


class BedSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: BedCode
    label: str | None = Field(default=None, max_length=200)
    resident: ResidentSpec | None = None


class RoomSpec(_RoomFields):
    beds: list[BedSpec] = Field(default_factory=list)


class ZoneSpec(_ZoneFields):
    rooms: list[RoomSpec] = Field(default_factory=list)


class DeviceSpec(_DeviceFields):
    pass


class SiteSpec(_SiteFields):
    zones: list[ZoneSpec] = Field(default_factory=list)
    gateways: list[Identifier] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)


def record_fields(record: BaseModel) -> dict[str, Any]:
    """A record's fields as JSON-ready values (for the API, the store and the audit log)."""
    return record.model_dump(mode="json")


def parse_record(kind: type[M], fields: Mapping[str, Any]) -> M:
    """Build a record from untrusted fields; what is wrong is named field by field."""
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        raise RegistryError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
