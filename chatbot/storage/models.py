"""The database schema, as typed SQLAlchemy 2 ORM classes.

All datetimes are stored as UTC (see :class:`UTCDateTime`); the school's timezone only matters
when showing times to people and when applying the policy's hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from chatbot.search_key import fold
from chatbot.storage import append_only


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: identical behaviour on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    forename: Mapped[str] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    roles: Mapped[str] = mapped_column(String(200), default="staff")  # ";"-separated
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The names folded for searching, kept in step by _keep_search_keys below.
    search_key: Mapped[str] = mapped_column(String(400), default="", server_default="")
    # From the staff roster, when the school's MIS export has them (None: not on record).
    dbs_checked: Mapped[date | None] = mapped_column(Date)
    safeguarding_training: Mapped[date | None] = mapped_column(Date)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(";") if r)

    def has_role(self, *roles: str) -> bool:
        return bool(self.role_set.intersection(roles))

    @property
    def name(self) -> str:
        return f"{self.forename} {self.surname}"


class PlatformIdentity(Base):
    """A platform account matched (by email) to a staff member, cached after first contact."""

    __tablename__ = "platform_identity"
    __table_args__ = (UniqueConstraint("platform", "tenant", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    tenant: Mapped[str] = mapped_column(String(100), default="")
    user_id: Mapped[str] = mapped_column(String(200))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    seen_at: Mapped[datetime]


def short_name(forename: str, surname: str) -> str:
    """Forename and surname initial ("Sam T"): how pupils are shown to other staff. No full
    stop, so a sentence that ends with a name ends with one full stop."""
    return f"{forename} {surname[:1]}" if surname else forename


class Pupil(Base):
    __tablename__ = "pupil"
    # Pickers list pupils in this order, fifty at a time: read in index order, not sorted.
    __table_args__ = (Index("ix_pupil_search_key", "search_key", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upn: Mapped[str] = mapped_column(String(20), unique=True)
    forename: Mapped[str] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    class_name: Mapped[str] = mapped_column(String(50), default="")
    parent_email: Mapped[str | None] = mapped_column(String(320))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The names folded for searching, kept in step by _keep_search_keys below.
    search_key: Mapped[str] = mapped_column(String(400), default="", server_default="")
    # Set when live video does not suit this pupil: calls with them are refused, with the
    # reason, and the family's preferred way of keeping in touch is shown instead.
    video_unsuitable_reason: Mapped[str | None] = mapped_column(Text)
    keep_in_touch_by: Mapped[str | None] = mapped_column(String(300))
    video_unsuitable_at: Mapped[datetime | None]
    video_unsuitable_by: Mapped[str | None] = mapped_column(String(200))

    @property
    def short_name(self) -> str:
        """How the pupil is shown to other staff (see the function of that name)."""
        return short_name(self.forename, self.surname)

    @property
    def initials(self) -> str:
        return f"{self.forename[:1]}{self.surname[:1]}".upper()


class Consent(Base):
    """A parent's written agreement to live video, with the evidence that it arrived."""

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupil.id"), index=True)
    parent_email: Mapped[str] = mapped_column(String(320))
    received_on: Mapped[date] = mapped_column(Date)  # the day it arrived (school time zone)
    received_at: Mapped[datetime | None]  # the moment, when the time was given
    evidence_kind: Mapped[str] = mapped_column(String(20))  # "message_id" | "eml_sha256"
    evidence: Mapped[str] = mapped_column(String(1000))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    recorded_by_label: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by_label: Mapped[str | None] = mapped_column(String(200))


class Booking(Base):
    __tablename__ = "booking"

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    cohost_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # "one_to_one" | "group"
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    platform: Mapped[str] = mapped_column(String(50))
    plan: Mapped[str] = mapped_column(Text)
    # awaiting_cohost -> confirmed | declined | lapsed | cancelled
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime]
    cohost_answered_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # Each sweep claims its step by setting one of these (an atomic UPDATE ... WHERE x IS NULL),
    # so a step happens once even with several replicas and after a restart.
    cohost_lapse_noted_at: Mapped[datetime | None]
    checklist_sent_at: Mapped[datetime | None]
    start_check_at: Mapped[datetime | None]
    log_requested_at: Mapped[datetime | None]
    log_nudged_at: Mapped[datetime | None]
    log_reported_at: Mapped[datetime | None]
    checklist_escalated_at: Mapped[datetime | None]  # unticked checks reported to SLT
    worry_reminded_at: Mapped[datetime | None]  # the log's worry has no concern: host reminded
    worry_reported_at: Mapped[datetime | None]  # ... and the DSL told
    # A call kept but on hold (a parent withdrew consent and the policy says "hold"): the
    # co-host can't accept, the checklist says it must not go ahead. Plain words, no names.
    held_at: Mapped[datetime | None]
    held_reason: Mapped[str | None] = mapped_column(String(300))

    pupils: Mapped[list[BookingPupil]] = relationship(
        back_populates="booking", lazy="selectin", cascade="all, delete-orphan"
    )


class BookingPupil(Base):
    """A pupil on a booking. ``week`` (ISO year*100+week, school timezone) plus the partial
    unique index below make "one call per pupil per week" hold even under concurrent bookings
    (when the policy allows more than one a week, ``slot`` numbers them)."""

    __tablename__ = "booking_pupil"
    __table_args__ = (
        Index(
            "uq_booking_pupil_week_active",
            "pupil_id",
            "week",
            "slot",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), index=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupil.id"), index=True)
    week: Mapped[int] = mapped_column(Integer)
    slot: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    booking: Mapped[Booking] = relationship(back_populates="pupils")
    pupil: Mapped[Pupil] = relationship(lazy="joined")


@event.listens_for(Staff, "before_insert")
@event.listens_for(Staff, "before_update")
@event.listens_for(Pupil, "before_insert")
@event.listens_for(Pupil, "before_update")
def _keep_search_keys(mapper: Any, connection: Connection, target: Staff | Pupil) -> None:
    """Names are searched through a folded copy (see chatbot.search_key), kept in step here so
    every write of a name updates it."""
    target.search_key = fold(f"{target.forename} {target.surname}")[:400]


class CalendarEntry(Base):
    """The school calendar imported from an iCalendar or CSV file (``chatbot policy terms
    import``): terms, named holidays and INSET days, each a run of whole days (both ends
    included). The policy file's own ``terms`` and ``closures`` apply as well."""

    __tablename__ = "school_calendar"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "term" | "holiday" | "inset"
    name: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date, index=True)
    ends_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(300))  # the file it came from
    imported_at: Mapped[datetime]


class ChecklistTick(Base):
    __tablename__ = "checklist_tick"
    __table_args__ = (UniqueConstraint("booking_id", "item_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), index=True)
    item_key: Mapped[str] = mapped_column(String(50))
    ticked_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    ticked_at: Mapped[datetime]


class CallLog(Base):
    """The Keeping in Touch record for one call."""

    __tablename__ = "call_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), unique=True)
    attended: Mapped[str] = mapped_column(Text)
    actual_minutes: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    worrying: Mapped[bool] = mapped_column(Boolean)
    # Whether the second member of staff was on the call; None when the call had none.
    cohost_present: Mapped[bool | None] = mapped_column(Boolean)
    logged_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    logged_at: Mapped[datetime]


class OutboxMessage(Base):
    """A notification to deliver. Written in the same transaction as the change that caused it.

    ``kind`` is "staff" (direct message to ``staff_id``), "role" (post to the ``role`` channel)
    or "update" (re-render every delivered message sharing ``thread_key``).
    ``thread_key`` names what the message is about (e.g. ``cohost:42``) so it can be updated.
    A role row goes to every configured platform: the dispatcher gives it the first platform
    and copies it for the others (``origin_id`` names the row it was copied from).
    ``claimed_by`` is the dispatcher batch holding the row until ``claimed_until``.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    role: Mapped[str | None] = mapped_column(String(10))
    thread_key: Mapped[str | None] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[datetime | None]
    platform: Mapped[str | None] = mapped_column(String(20))
    message_ref: Mapped[str | None] = mapped_column(String(500))
    # Set when a role channel could not be reached and the message went to people directly
    # (on the original row only, so copies for other platforms never message them again).
    fallback_sent_at: Mapped[datetime | None]
    origin_id: Mapped[int | None]


class AuditEvent(Base):
    """Append-only: rows are only ever inserted (see services.audit)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50), index=True)
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]]


@event.listens_for(AuditEvent.__table__, "after_create")
def _audit_append_only(target: Any, connection: Connection, **kw: Any) -> None:
    for stmt in append_only.statements(connection.dialect.name, target.name):
        connection.exec_driver_sql(stmt)


class ProcessedDelivery(Base):
    """Platform delivery ids already handled (Slack retries, repeated Teams activities)."""

    __tablename__ = "processed_delivery"
    __table_args__ = (UniqueConstraint("platform", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class ConversationReference(Base):
    """Where a platform can reach a person or channel proactively (Teams needs these)."""

    __tablename__ = "conversation_reference"
    __table_args__ = (UniqueConstraint("platform", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(300))  # "user:<aad id>" or "channel:<id>"
    reference: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class Concern(Base):
    """A safeguarding concern reported to the DSL (see chatbot.concerns).

    The narrative lives only here and is shown only through "View details" or an export; alerts,
    audit rows and logs carry the reference, category and ids. The chase columns are claimed by
    conditional UPDATEs (``... WHERE resent_at IS NULL``), as the booking sweeps do.
    """

    __tablename__ = "concern"
    __table_args__ = (UniqueConstraint("year", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # C-2026-0042
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reporter_label: Mapped[str] = mapped_column(String(320))
    pupil_id: Mapped[int | None] = mapped_column(ForeignKey("pupil.id"), index=True)
    subject_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    category: Mapped[str] = mapped_column(String(50))
    immediate_risk: Mapped[bool] = mapped_column(Boolean)
    happened_at: Mapped[datetime]
    narrative: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(index=True)
    out_of_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    ack_due_at: Mapped[datetime] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    acknowledged_by_label: Mapped[str | None] = mapped_column(String(320))
    resent_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    # After escalation: when it is next re-sent, until acknowledged. Each repeat is claimed by
    # moving this on with ``... WHERE next_chase_at = <the value read>``, so it happens once.
    next_chase_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | closed
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)


class ConcernEvent(Base):
    """The concern's chronology. Append-only: rows are inserted, never updated; they are only
    deleted with the concern itself when it passes its retention date (and is not on hold)."""

    __tablename__ = "concern_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concern.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    actor_label: Mapped[str] = mapped_column(String(320))
    detail: Mapped[str] = mapped_column(String(500), default="")  # never the narrative
    note: Mapped[str | None] = mapped_column(Text)  # DSL notes and outcomes
    outbox_id: Mapped[int | None] = mapped_column(Integer, unique=True)  # "delivered" events


@event.listens_for(Concern.__table__, "after_create")
def _concern_report_fixed(target: Any, connection: Connection, **kw: Any) -> None:
    for stmt in append_only.fixed_report(connection.dialect.name):
        connection.exec_driver_sql(stmt)


@event.listens_for(ConcernEvent.__table__, "after_create")
def _chronology_never_edited(target: Any, connection: Connection, **kw: Any) -> None:
    for stmt in append_only.no_update(connection.dialect.name, target.name):
        connection.exec_driver_sql(stmt)


class Counter(Base):
    """Numbers handed out one after another (a concern's reference within its year). Taking
    the next number locks the row until the transaction ends, so two concerns filed at once
    on PostgreSQL wait for each other instead of both taking the same number."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


# ----- email (issue #13): mail the bot sends, consent requests and the replies kept as evidence


class MailOut(Base):
    """An email to send: written in the same transaction as the change that causes it, built
    whole (``raw``, with its ``message_id``) before it is ever sent, so every attempt sends
    the same bytes. Claimed and delivered like the chat outbox (see chatbot.mail.outbox);
    ``send_started_at`` marks an attempt that may have reached the mail server.

    ``state``: pending -> sent | refused (a permanent refusal) | failed (gave up after
    retries) | cancelled (not needed any more) | bounced (sent, then returned)."""

    __tablename__ = "mail_out"
    __table_args__ = (Index("ix_mail_out_pending", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # consent_request | invite | ...
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated; one family per email
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    about: Mapped[str] = mapped_column(String(200), default="")  # e.g. pupils' short names
    subject_type: Mapped[str | None] = mapped_column(String(30))
    subject_id: Mapped[int | None] = mapped_column(Integer, index=True)
    caused_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    send_started_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class ConsentRequest(Base):
    """The information email sent to a pupil's parent asking them to reply to agree. The
    ``token`` (in the Reply-To address and the subject) ties their reply to this request.

    ``state``: requested -> replied (a reply waits for the requester's check) -> agreed |
    not_agreed."""

    __tablename__ = "consent_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupil.id"), index=True)
    parent_email: Mapped[str] = mapped_column(String(320))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    requested_by_label: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20))
    mail_id: Mapped[int | None] = mapped_column(Integer)


class ConsentReply(Base):
    """A parent's reply, kept whole as the consent evidence: the raw message as received, its
    size and SHA-256. ``state``: to_confirm (from the roster's parent address) | held (from
    another address: a person decides) -> agreed | not_agreed."""

    __tablename__ = "consent_reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consent_request.id"), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str] = mapped_column(String(500), default="")
    from_address: Mapped[str] = mapped_column(String(320))
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(20))  # "file" | "mailbox"
    imported_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    consent_id: Mapped[int | None] = mapped_column(Integer)


class CallJoin(Base):
    """How families join a confirmed call: recorded by the Zoom integration or typed by the
    host. ``invites_queued_at`` is claimed once, when the invitations are written."""

    __tablename__ = "call_join"

    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), primary_key=True)
    join_url: Mapped[str] = mapped_column(String(1000))
    passcode: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(10))  # "zoom" | "host"
    recorded_at: Mapped[datetime]
    invites_queued_at: Mapped[datetime | None]


class MailboxCursor(Base):
    """How far the mailbox has been read (the newest message seen), per mailbox folder."""

    __tablename__ = "mailbox_cursor"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    after: Mapped[datetime]


class Meeting(Base):
    """The video meeting of one booking (see chatbot.meetings), and the work still to do on it.

    The row is written in the same unit of work as the booking change that calls for it (the
    co-host's acceptance, a cancellation) and is then brought into line with the booking by
    the meetings worker, which claims it (``claimed_by`` until ``claimed_until``) whenever
    ``due_at`` has passed. ``version`` goes up with every booking change, so a change made
    while the worker holds the row makes it due again.

    ``state``: pending (nothing sent yet) -> creating (a create may have reached the platform;
    look for ``marker`` before creating again) -> created (exists; settings not yet read back)
    -> ready; or failed (the platform refused: reported, waits for a change) or deleted.
    ``join_url`` and ``passcode`` go to the call's host and co-host only, never to a channel,
    an audit row or a log.
    """

    __tablename__ = "meeting"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), unique=True)
    marker: Mapped[str] = mapped_column(String(40), unique=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    zoom_id: Mapped[str | None] = mapped_column(String(30), index=True)
    join_url: Mapped[str | None] = mapped_column(String(1000))
    passcode: Mapped[str | None] = mapped_column(String(20))
    # What the platform was last given: start (ISO), minutes, alternative host.
    applied: Mapped[dict[str, Any] | None]
    alt_host_refused: Mapped[bool] = mapped_column(Boolean, default=False)
    # Settings read back that break the policy (their names), and the host's account settings
    # that do: the call is flagged while either list is non-empty.
    mismatches: Mapped[dict[str, Any] | None]
    version: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    problem_told_at: Mapped[datetime | None]  # the host and SLT were told it could not be made
    prechecked_at: Mapped[datetime | None]  # settings read again shortly before the call
    created_at: Mapped[datetime]
    # What really happened, from the platform's events (see MeetingEvent).
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    host_joined_at: Mapped[datetime | None]
    cohost_joined_at: Mapped[datetime | None]
    cohost_checked_at: Mapped[datetime | None]
    overrun_host_told_at: Mapped[datetime | None]
    overrun_slt_told_at: Mapped[datetime | None]


class MeetingEvent(Base):
    """One event the platform reported about a meeting (started, ended, someone joined, left,
    waited or was admitted). ``key`` is derived from the event itself, so a delivery the
    platform repeats is recorded once. ``name`` is as the platform gives it; ``staff_id`` is
    set when the participant matched the roster by email."""

    __tablename__ = "meeting_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id"), index=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime]
    received_at: Mapped[datetime]
    participant: Mapped[str | None] = mapped_column(String(100))  # the platform's id for them
    name: Mapped[str | None] = mapped_column(String(200))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
