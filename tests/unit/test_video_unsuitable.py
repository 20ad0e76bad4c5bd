"""A pupil for whom live video is not suitable (issue #11, consent 3), through the Bot."""

from __future__ import annotations

from sqlalchemy import select

from chatbot.effects import CloseForm, Effect, Ephemeral, FormErrors, OpenForm
from chatbot.outbox import Dispatcher
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Booking, Pupil
from chatbot.uow import Units
from tests.conftest import GOOD, HOST, command, submit
from tests.fakes import RecordingMessenger

SAM = "A123456789012"
REASON = "Sam finds the screen distressing and his mum asked us to stop"
KEEP = "a weekly phone call with his teacher"


def said(effects: list[Effect]) -> str:
    return " ".join(e.message.text for e in effects if isinstance(e, Ephemeral))


async def sam(core: Units) -> Pupil:
    async with core.db.reading() as s:
        return (await s.execute(select(Pupil).where(Pupil.upn == SAM))).scalar_one()


async def test_marked_not_suitable_refuses_booking_with_the_reason(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    effects = await bot.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
    await dispatcher.drain()
    messenger.sent.clear()

    [opened] = await bot.handle(command(HOST, "consent", "not-suitable"))
    assert isinstance(opened, OpenForm) and opened.form.id == "video_unsuitable"
    # Any member of staff may record it (it protects the pupil); both answers are needed.
    [err] = await bot.handle(submit("other@school.test", "video_unsuitable", {"pupil": SAM}))
    assert isinstance(err, FormErrors) and set(err.errors) == {"reason", "keep_in_touch"}
    values = {"pupil": SAM, "reason": REASON, "keep_in_touch": KEEP}
    effects = await bot.handle(submit("other@school.test", "video_unsuitable", values))
    assert isinstance(effects[0], CloseForm), effects
    assert "1 booked call(s) were called off" in said(effects)
    marked = await sam(school)
    assert (marked.video_unsuitable_reason, marked.keep_in_touch_by) == (REASON, KEEP)
    assert marked.video_unsuitable_by == "other@school.test"

    async with school.db.reading() as s:
        [b] = (await s.execute(select(Booking))).scalars()
        assert b.status == "cancelled"
    await dispatcher.drain()
    [host_told] = messenger.to(HOST)
    assert "video calls were marked not suitable for Sam T" in host_told.text
    slt = [str(m.to_json()) for m in messenger.to("slt")]
    assert any("Video calls not suitable" in m for m in slt), slt
    assert all(REASON not in m and "Sam" not in m for m in slt)  # initials, never the reason

    [refused] = await bot.handle(submit(HOST, "book_call", dict(GOOD, date="2026-12-08")))
    assert isinstance(refused, FormErrors)
    message = refused.errors["pupils"]
    assert f"Video calls are not suitable for Sam T: {REASON}." in message, message
    assert f"The family keeps in touch by {KEEP} instead." in message


async def test_only_slt_dsl_or_admin_mark_video_suitable_again(school: Units, bot: Bot) -> None:
    values = {"pupil": SAM, "reason": REASON, "keep_in_touch": KEEP}
    await bot.handle(submit(HOST, "video_unsuitable", values))
    [opened] = await bot.handle(command(HOST, "consent", "suitable"))
    assert isinstance(opened, OpenForm) and opened.form.id == "video_suitable"
    [err] = await bot.handle(submit(HOST, "video_suitable", {"pupil": SAM}))
    assert isinstance(err, FormErrors) and "Only SLT" in err.errors["pupil"]
    assert (await sam(school)).video_unsuitable_reason == REASON
    effects = await bot.handle(submit("dsl@school.test", "video_suitable", {"pupil": SAM}))
    assert isinstance(effects[0], CloseForm), effects
    assert (await sam(school)).video_unsuitable_reason is None
    effects = await bot.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
    async with school.db.reading() as s:
        actions = list(
            (
                await s.execute(
                    select(AuditEvent.action)
                    .where(AuditEvent.action.like("pupil.video%"))
                    .order_by(AuditEvent.id)
                )
            ).scalars()
        )
    assert actions == [
        "pupil.video_unsuitable",
        "pupil.video_suitable_refused",
        "pupil.video_suitable",
    ]
