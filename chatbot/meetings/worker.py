"""The meetings worker: brings each booking's Zoom meeting into line with the booking.

Why a ``meeting`` row and not outbox rows: a meeting's operations must happen in order and
coalesce (a call cancelled before its meeting was made needs no Zoom call at all; two changes
of time need one update), and the crash-safe "creating" state belongs to the meeting. So the
row records what the booking wants (``version`` goes up with every change) and what Zoom was
last given; each pass works out the next step from the two, the way the outbox's dispatcher
works out where a message goes. Rows are claimed one at a time like outbox rows (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL, a lease that another replica may take over).

Idempotency: a create is preceded by a committed ``creating`` state, and a row found in that
state (the process died between Zoom's answer and storing it) is first looked up on Zoom by
its ``marker``, which the meeting carries in its agenda, before anything is created. Updates
and deletes are idempotent at Zoom; a meeting already gone counts as deleted.

Failures: 429 waits for Zoom's ``Retry-After`` (a per-user daily limit is reported to the host
and SLT), 5xx and network errors back off and retry, other 4xx are reported to the host and
SLT and wait for the booking to change. Logs carry row ids and error codes only: never a link,
a passcode or a name.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select, update

from chatbot.mail import invites
from chatbot.meetings import notices, rules
from chatbot.meetings.service import on_zoom, people
from chatbot.outbox import backoff
from chatbot.ports import MeetingError, MeetingInfo, Meetings, MeetingSpec
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Booking, Meeting, Staff
from chatbot.ui import Message
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.meetings")

LEASE = timedelta(seconds=120)  # renewed before each step; longer than a step can take
STEPS = 6  # steps one pass may take (create, read back, update, ...) before it lets go
TELL_AFTER_ATTEMPTS = 5  # transient failures before the host hears the meeting is late


@dataclass(frozen=True)
class View:
    """One meeting row with its booking, read at the start of a step (no ORM objects)."""

    row_id: int
    state: str
    zoom_id: str | None
    marker: str
    passcode: str
    join_url: str
    applied: dict[str, Any] | None
    alt_host_refused: bool
    found: dict[str, Any]  # the last mismatches: {"meeting": [...], "account": [...]}
    version: int
    prechecked: bool
    announced: bool  # the host and co-host have their join details
    booking_id: int
    host_email: str
    want: str  # "present", "absent" (call off: delete it) or "leave" (call over)
    spec: MeetingSpec | None
    precheck_at: datetime


Step = Callable[[Units, Meetings, View, str], Awaitable[None]]


async def run(units: Units, zoom: Meetings, rounds: int = 20) -> int:
    """Work on due meetings one at a time; returns how many were worked on."""
    async with units.read() as u:  # most ticks find nothing: don't take the write lock
        if (await u.session.execute(_due(u.now).limit(1))).first() is None:
            return 0
    done = 0
    for _ in range(rounds):
        token = uuid.uuid4().hex
        row_id = await _claim(units, token)
        if row_id is None:
            break
        await _work(units, zoom, row_id, token)
        done += 1
    return done


def _due(now: datetime) -> Select[int]:
    return select(Meeting.id).where(
        Meeting.due_at <= now,
        or_(Meeting.claimed_until.is_(None), Meeting.claimed_until < now),
    )


async def _claim(units: Units, token: str) -> int | None:
    async with units.write() as u:
        row_id = (
            await u.session.execute(
                _due(u.now)
                .order_by(Meeting.due_at, Meeting.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if row_id is not None:
            m = await u.session.get(Meeting, row_id)
            assert m is not None
            m.claimed_by, m.claimed_until = token, u.now + LEASE
    return row_id


async def _work(units: Units, zoom: Meetings, row_id: int, token: str) -> None:
    version = 0
    try:
        for _ in range(STEPS):
            async with units.read() as u:
                view = await _look(u, row_id)
            version = view.version
            step = _next_step(view, units.now())
            if step is None:
                break
            if not await _renew(units, row_id, token):
                return  # held too long: another worker has it now
            await step(units, zoom, view, token)
    except MeetingError as e:
        await _failed(units, row_id, token, e, version)
        return
    await _release(units, row_id, token, version)


async def _renew(units: Units, row_id: int, token: str) -> bool:
    """Extend this pass's lease for one more step (each step takes less than LEASE: a few
    requests, each cut off after 15 seconds); False when the lease was lost."""
    async with units.write() as u:
        held = update(Meeting).where(Meeting.id == row_id, Meeting.claimed_by == token)
        return await rows_changed(u.session, held.values(claimed_until=u.now + LEASE)) == 1


async def _look(u: Unit, row_id: int) -> View:
    m = await u.session.get(Meeting, row_id)
    assert m is not None
    b = await u.session.get(Booking, m.booking_id)
    assert b is not None
    host, cohost = await people(u.session, b)
    if b.status != "confirmed" or not on_zoom(b):
        want = "absent"
    elif b.ends_at <= u.now:
        want = "leave"
    else:
        want = "present"
    minutes = int((b.ends_at - b.starts_at).total_seconds() // 60)
    spec = rules.spec_for(
        u.policy,
        b.id,
        m.marker,
        b.starts_at,
        minutes,
        m.passcode or "",
        cohost.email if cohost is not None and cohost.active else None,
    )
    return View(
        row_id=m.id,
        state=m.state,
        zoom_id=m.zoom_id,
        marker=m.marker,
        passcode=m.passcode or "",
        join_url=m.join_url or "",
        applied=m.applied,
        alt_host_refused=m.alt_host_refused,
        found=m.mismatches or {},
        version=m.version,
        prechecked=m.prechecked_at is not None,
        announced=(m.applied or {}).get("announced") is True,
        booking_id=b.id,
        host_email=host.email,
        want=want,
        spec=spec,
        precheck_at=b.starts_at - timedelta(minutes=u.policy.checklist_lead_minutes),
    )


def _next_step(v: View, now: datetime) -> Step | None:
    if v.want == "absent":
        if v.state == "deleted":
            return None
        return _delete
    if v.want == "leave" or v.spec is None:
        return None
    if v.zoom_id is None:
        return _create
    if _changed(v):
        return _update
    if v.state in ("created", "failed"):
        return _verify
    if not v.prechecked and now >= v.precheck_at:
        return _precheck
    return None


def _changed(v: View) -> bool:
    assert v.spec is not None
    given = {k: (v.applied or {}).get(k) for k in ("start", "minutes", "alternative_host")}
    return given != rules.applied(v.spec)


# ----- the steps: each calls Zoom, then stores what it learnt in a unit of its own


async def _create(units: Units, zoom: Meetings, v: View, token: str) -> None:
    assert v.spec is not None
    if v.state == "creating":
        # An earlier pass may have created it and died before storing the answer.
        found = await zoom.find(v.host_email, v.marker)
        if found is not None:
            log.info("meeting %s: found the meeting made before a restart", v.row_id)
            await _store(units, v, token, found, v.spec, v.alt_host_refused, "meeting.adopt")
            return
    else:
        async with units.write() as u:
            m = await _ours(u, v, token)
            if m is None:
                return
            m.state = "creating"  # committed before the request goes out
    info, refused = await _with_alt_host_fallback(
        v.spec, lambda spec: zoom.create(v.host_email, spec)
    )
    assert info is not None
    await _store(units, v, token, info, v.spec, refused, "meeting.create")


async def _update(units: Units, zoom: Meetings, v: View, token: str) -> None:
    assert v.spec is not None and v.zoom_id is not None
    zoom_id = v.zoom_id
    try:
        _, refused = await _with_alt_host_fallback(v.spec, lambda s: zoom.update(zoom_id, s))
    except MeetingError as e:
        if not e.not_found:
            raise
        await _forget(units, v, token)  # deleted in Zoom by hand: make it again
        return
    async with units.write() as u:
        m = await _ours(u, v, token)
        if m is None:
            return
        m.applied = {**rules.applied(v.spec), "announced": v.announced}
        m.alt_host_refused = refused
        m.state = "created"  # to be read back
        u.audit(None, "meeting.update", "booking", v.booking_id, {"meeting": m.id})


async def _with_alt_host_fallback(
    spec: MeetingSpec, call: Callable[[MeetingSpec], Awaitable[MeetingInfo | None]]
) -> tuple[MeetingInfo | None, bool]:
    """Ask with the co-host as alternative host; if Zoom refuses the request (the co-host
    is not a licensed user of the school's account, say), ask again without. Returns the
    answer and whether the alternative host was refused."""
    try:
        return await call(spec), False
    except MeetingError as e:
        if not (e.permanent and not e.not_found and spec.alternative_host):
            raise
    return await call(replace(spec, alternative_host=None)), True


async def _verify(units: Units, zoom: Meetings, v: View, token: str) -> None:
    await _read_back(units, zoom, v, token, precheck=False)


async def _precheck(units: Units, zoom: Meetings, v: View, token: str) -> None:
    await _read_back(units, zoom, v, token, precheck=True)


async def _read_back(units: Units, zoom: Meetings, v: View, token: str, precheck: bool) -> None:
    """Read the meeting and the host's account settings back and compare them with the
    policy; tell the people concerned what changed. Shortly before the call (``precheck``)
    the meeting's settings are asked for again first, in case a lock has been lifted."""
    assert v.spec is not None and v.zoom_id is not None
    try:
        info = await zoom.get(v.zoom_id)
        wrong = rules.mismatches(v.spec, info)
        if wrong and precheck:
            spec = replace(v.spec, alternative_host=None) if v.alt_host_refused else v.spec
            await zoom.update(v.zoom_id, spec)
            info = await zoom.get(v.zoom_id)
            wrong = rules.mismatches(v.spec, info)
    except MeetingError as e:
        if not e.not_found:
            raise
        await _forget(units, v, token)
        return
    remaining, fixed = await _account(units, zoom, v.host_email)
    async with units.write() as u:
        m = await _ours(u, v, token)
        if m is None:
            return
        b = await u.session.get(Booking, v.booking_id)
        assert b is not None
        host, cohost = await people(u.session, b)
        before = v.found.get("meeting", [])
        m.state = "ready"
        m.join_url = info.join_url or m.join_url
        m.passcode = info.passcode or m.passcode
        if b.status == "confirmed" and m.join_url and m.passcode:
            # The families' invitations carry this meeting's join details (chatbot.mail.invites
            # sends them once; a call whose invitations already went out keeps them).
            await invites.record_join(u, b, m.join_url, m.passcode, "zoom")
        account = v.found.get("account", []) if remaining is None else [x.key for x in remaining]
        m.mismatches = {"meeting": wrong, "account": account}
        if precheck:
            m.prechecked_at = u.now
        m.applied = {**(m.applied or {}), "announced": True}
        u.audit(
            None,
            "meeting.check",
            "booking",
            b.id,
            {"meeting": m.id, "mismatches": wrong, "account": account, "fixed": fixed},
        )
        problems = problems_of(wrong, account)
        # The first time, after a change of time, or when what they show has changed.
        if (
            not v.announced
            or v.state == "created"
            or (m.join_url, m.passcode) != (v.join_url, v.passcode)
            or problems != problems_of(before, v.found.get("account", []))
        ):
            await _announce(u, b, cohost, m, wrong, problems, v.announced)
        if wrong and (wrong != before or precheck):
            for message, to in (
                (notices.settings_wrong(b, host, cohost, u.zone, wrong, False), host.id),
                (notices.settings_wrong(b, host, cohost, u.zone, wrong, True), None),
            ):
                _send(u, message, to, b)
        elif before and not wrong:
            _send(u, notices.settings_fixed(b, host, cohost, u.zone, False), host.id, b)
            _send(u, notices.settings_fixed(b, host, cohost, u.zone, True), None, b)
        previous = set(v.found.get("account", []))
        fixed_breaches = [rules.BREACHES[k] for k in fixed]
        if remaining and ({x.key for x in remaining} != previous or precheck) or fixed_breaches:
            message = notices.account_settings(b, u.zone, remaining or [], fixed_breaches)
            u.to_staff(host.id, message)


def problems_of(wrong: list[str], account: list[str]) -> list[str]:
    return [rules.SETTING_NAMES.get(k, k) for k in wrong] + [
        rules.BREACHES[k].what for k in account if k in rules.BREACHES
    ]


async def _account(
    units: Units, zoom: Meetings, email: str
) -> tuple[list[rules.Breach] | None, list[str]]:
    """The host's account settings that break the policy (None: they could not be read), and
    the keys of those the bot switched off itself, where the policy file allows it."""
    try:
        found = rules.breaches(await zoom.user_settings(email))
        if not found or not units.policy.zoom_fix_user_settings:
            return found, []
        await zoom.update_user_settings(email, rules.fixes(found))
        after = rules.breaches(await zoom.user_settings(email))
    except MeetingError as e:
        if not e.permanent:
            raise
        # Not the meeting's fault (a scope missing, say): the IT technician sees it in the
        # log and in `chatbot zoom check`; the meeting goes ahead.
        log.warning("meetings: could not read or change a host's Zoom settings (%s)", e.kind)
        return None, []
    still = {x.key for x in after}
    return after, [x.key for x in found if x.key not in still]


async def _announce(
    u: Unit,
    b: Booking,
    cohost: Staff | None,
    m: Meeting,
    wrong: list[str],
    problems: list[str],
    announced: bool,
) -> None:
    """Send the host and co-host the join details, or bring the messages they have up to
    date. Nobody else ever gets them."""
    if not m.join_url:
        return
    audience = [("host", b.host_id, False)]
    if cohost is not None:
        audience.append(("cohost", cohost.id, True))
    for role, staff_id, for_cohost in audience:
        message = notices.ready(
            b,
            u.zone,
            m.join_url,
            m.passcode or "",
            problems if not for_cohost else [rules.SETTING_NAMES.get(k, k) for k in wrong],
            for_cohost,
            m.alt_host_refused,
            changed=announced,
        )
        if announced:
            await u.update_thread(notices.thread(b, role), message)
        else:
            u.to_staff(staff_id, message, thread_key=notices.thread(b, role))


async def _delete(units: Units, zoom: Meetings, v: View, token: str) -> None:
    target = v.zoom_id
    if target is None and v.state == "creating":
        found = await zoom.find(v.host_email, v.marker)
        target = found.meeting_id if found is not None else None
    if target is not None:
        await zoom.delete(target)
    async with units.write() as u:
        m = await _ours(u, v, token)
        if m is None:
            return
        m.state = "deleted"
        if target is not None:
            m.zoom_id = target  # kept: a later "meeting started" can still be recognised
            u.audit(None, "meeting.delete", "booking", v.booking_id, {"meeting": m.id})
        if v.announced:
            b = await u.session.get(Booking, v.booking_id)
            assert b is not None
            for role in ("host", "cohost"):
                await u.update_thread(notices.thread(b, role), notices.deleted(b, u.zone))


async def _forget(units: Units, v: View, token: str) -> None:
    """The meeting was deleted in Zoom by someone else: make a new one."""
    async with units.write() as u:
        m = await _ours(u, v, token)
        if m is None:
            return
        log.warning("meeting %s: deleted in Zoom, making it again", m.id)
        m.zoom_id, m.join_url, m.state, m.applied = None, None, "pending", None
        m.marker = uuid.uuid4().hex
        u.audit(None, "meeting.gone", "booking", v.booking_id, {"meeting": m.id})


async def _store(
    units: Units,
    v: View,
    token: str,
    info: MeetingInfo,
    spec: MeetingSpec,
    refused: bool,
    action: str,
) -> None:
    async with units.write() as u:
        m = await _ours(u, v, token)
        if m is None:
            return
        m.zoom_id = info.meeting_id
        m.join_url = info.join_url
        m.passcode = info.passcode or m.passcode
        m.applied = {**rules.applied(spec), "announced": False}
        m.alt_host_refused = refused
        m.state = "created"
        u.audit(None, action, "booking", v.booking_id, {"meeting": m.id, "zoom": info.meeting_id})


async def _ours(u: Unit, v: View, token: str) -> Meeting | None:
    """The row, locked, if this pass still holds it (a pass that outlived its lease lets go:
    the replica that took over repeats at most the step in flight, and finds the meeting)."""
    m = await u.session.get(Meeting, v.row_id, with_for_update=True)
    if m is None or m.claimed_by != token:
        log.warning("meeting %s: claim lost; another worker carries on", v.row_id)
        return None
    return m


def _send(u: Unit, message: Message, staff_id: int | None, b: Booking) -> None:
    if staff_id is None:
        u.to_role("slt", message, thread_key=f"slt:{b.id}")
    else:
        u.to_staff(staff_id, message)


# ----- letting go of the row


def _next_due(m: Meeting, b: Booking, u: Unit) -> datetime | None:
    """When the row needs looking at again with nothing changed: the read-back shortly
    before the call."""
    if m.state != "ready" or m.prechecked_at is not None or b.status != "confirmed":
        return None
    at = b.starts_at - timedelta(minutes=u.policy.checklist_lead_minutes)
    return at if b.ends_at > u.now else None


async def _release(units: Units, row_id: int, token: str, version: int) -> None:
    async with units.write() as u:
        m = await u.session.get(Meeting, row_id, with_for_update=True)
        if m is None or m.claimed_by != token:
            return
        b = await u.session.get(Booking, m.booking_id)
        assert b is not None
        m.claimed_by = m.claimed_until = None
        m.attempts, m.last_error, m.problem_told_at = 0, None, None
        # A booking change while this pass worked: look again at once.
        m.due_at = u.now if m.version != version else _next_due(m, b, u)


async def _failed(units: Units, row_id: int, token: str, e: MeetingError, version: int) -> None:
    """Try again later, or (a refusal) wait for the booking to change; tell the host and SLT
    when it matters: a refusal, Zoom's daily limit, or a meeting still not made near the call."""
    async with units.write() as u:
        m = await u.session.get(Meeting, row_id, with_for_update=True)
        if m is None or m.claimed_by != token:
            return
        b = await u.session.get(Booking, m.booking_id)
        assert b is not None
        host, cohost = await people(u.session, b)
        made = m.zoom_id is not None
        m.claimed_by = m.claimed_until = None
        m.attempts += 1
        m.last_error = e.kind[:200]
        tell_slt = True
        if e.permanent and not e.daily_limit:
            m.state = "failed"
            # Until the booking changes (at once if it did while this pass worked).
            m.due_at = u.now if m.version != version else None
            reason = _reason(e)
            level = logging.ERROR
        else:
            wait = e.retry_after if e.retry_after is not None else backoff(m.attempts)
            m.due_at = u.now + timedelta(seconds=max(wait, 1.0))
            level = logging.WARNING if m.attempts < TELL_AFTER_ATTEMPTS else logging.ERROR
            if e.daily_limit:
                reason = notices.daily_limit_reason(host, m.due_at, u.zone)
            else:
                reason = f"Zoom can't be reached at the moment; the bot keeps trying ({e.kind})."
                near = b.starts_at - timedelta(minutes=u.policy.checklist_lead_minutes)
                tell_slt = False
                if made or (m.attempts < TELL_AFTER_ATTEMPTS and u.now < near):
                    reason = ""  # the meeting exists, or there is time yet: not worth a word
        log.log(
            level,
            "meeting %s: %s (attempt %s)%s",
            m.id,
            e.kind,
            m.attempts,
            f"; retry at {m.due_at:%H:%M:%S}" if m.due_at else "; waiting for a change",
        )
        if reason and m.problem_told_at is None and b.status == "confirmed":
            m.problem_told_at = u.now
            u.audit(None, "meeting.problem", "booking", b.id, {"meeting": m.id, "error": e.kind})
            u.to_staff(host.id, notices.not_made(b, host, cohost, u.zone, reason, False, made))
            if tell_slt:
                u.to_role(
                    "slt",
                    notices.not_made(b, host, cohost, u.zone, reason, True, made),
                    thread_key=f"slt:{b.id}",
                )


def _reason(e: MeetingError) -> str:
    if e.not_found:
        return (
            "the host's school email is not a user of the school's Zoom account "
            "(IT can add them, or check the roster's email)."
        )
    if e.kind.startswith("zoom_403"):
        return "the bot's Zoom app is not allowed to do this (IT: run `chatbot zoom check`)."
    return f"Zoom refused the request ({e.kind}). IT can look this up in the server's log."
