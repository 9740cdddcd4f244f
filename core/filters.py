"""The filter every aggregate and listing takes: platform, batch, a time window, and which faces count.

Built once at the edges (the API's query parameters, the CLI's options) and passed down
to the queries as one value. Times are normalised to aware UTC here, once: a naive time
means UTC, an aware one is converted, and a time that falls outside what a datetime can
hold once converted (0001-01-01T00:00:00+05:00) is refused as a ValueError, which the
edges turn into their own error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from core.vocabulary import PLATFORMS


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive means UTC. ValueError when the UTC time cannot be represented."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is outside the range of dates once converted to UTC") from None


INCLUDE, EXCLUDE, ONLY = "include", "exclude", "only"
UNCERTAIN_CHOICES = (INCLUDE, EXCLUDE, ONLY)


@dataclass(frozen=True)
class Filters:
    """`since` is inclusive and `until` exclusive, so consecutive windows never count a row twice.

    `min_face_px` and `uncertain` choose faces, not images: faces smaller than `min_face_px`
    (the box's shorter side) are left out, and faces the classifier abstained on are kept
    (`include`), left out (`exclude`) or alone kept (`only`). The hourly rollups know neither,
    so the queries count such views from the faces themselves.
    """

    platform: str | None = None
    batch_id: int | None = None
    since: datetime | None = field(default=None)
    until: datetime | None = field(default=None)
    min_face_px: int | None = None
    uncertain: str = INCLUDE

    def __post_init__(self) -> None:
        if self.platform is not None and self.platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}")
        if self.uncertain not in UNCERTAIN_CHOICES:
            raise ValueError(f"uncertain must be one of {', '.join(UNCERTAIN_CHOICES)}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, to_utc(value))

    @property
    def has_window(self) -> bool:
        return self.since is not None or self.until is not None

    @property
    def chooses_faces(self) -> bool:
        """Whether some faces under the other filters are left out (the rollups cannot count that)."""
        return bool(self.min_face_px and self.min_face_px > 1) or self.uncertain != INCLUDE

    def all_faces(self) -> Filters:
        """The same view with every face counted: what `faces_left_out` is measured against."""
        return replace(self, min_face_px=None, uncertain=INCLUDE)


NO_FILTERS = Filters()
