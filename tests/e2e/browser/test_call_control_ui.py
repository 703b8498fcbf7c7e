"""The call control UI in Chromium: the host panel (waiting room, participants and their actions,
locks), the unmute request dialog, attention with acknowledgement, chat with deletion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from signaling.app_keys import ROOMS
from signaling.rooms import Role
from tests.e2e.browser.conftest import PHONE, Browsers
from tests.e2e.browser.util import eventually, join, join_url, prejoin_ready

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def person(pid: str) -> str:
    return f'.person[data-participant-id="{pid}"]'


async def person_action(host: Page, pid: str, action: str, screenshot: Path | None = None) -> None:
    """Opens the participants tab and runs one of a person's actions from the ⋯ menu."""
    if not await host.locator("#pane-participants").is_visible():
        await host.click("#tab-participants")
    await host.click(f"{person(pid)} .more")
    if screenshot:
        await host.screenshot(path=str(screenshot))
    await host.click(f'{person(pid)} [data-action="{action}"]')


async def set_lock(host: Page, name: str, on: bool) -> None:
    await host.click("#btn-host")
    box = host.locator(f"#lock-{name}")
    if await box.is_checked() != on:
        await box.click()
    await host.wait_for_function(
        "([n, on]) => Boolean(window.urok.session.room.settings.lock[n]) === on", arg=[name, on])
    await host.keyboard.press("Escape")


async def test_guest_waits_and_host_admits_from_the_panel(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room()  # ALWAYS_ACCEPT_AUTH: an unregistered guest waits
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Мария Ивановна", role=Role.HOST)),
               camera=False)
    guest = await browsers.page()
    guest_token = server.token(room, "guest", name="Гость <i>Пётр</i>", registered=False)
    await guest.goto(join_url(server.base, room, guest_token))
    await prejoin_ready(guest)
    await guest.click("#join")
    await guest.wait_for_function("() => window.urok.session && window.urok.session.status === 'waiting'")
    gid = await guest.evaluate("window.urok.session.me")
    # the host's panel opens on the waiting room with the guest (name as text, marked as a guest)
    row = host.locator(f'#waiting-list [data-participant-id="{gid}"]')
    await row.wait_for()
    assert await host.locator("#pane-waiting").is_visible()
    assert "Гость <i>Пётр</i>" in (await row.text_content() or "")
    assert await row.locator("i").count() == 0
    assert "гость" in (await row.locator(".tag").text_content() or "")
    assert await host.text_content("#tab-waiting .tab-badge") == "1"
    await host.screenshot(path=str(artifacts / "call-control-waiting-1280x800.png"))
    await row.locator('[data-action="admit"]').click()
    await guest.wait_for_function("() => window.urok.session.status === 'joined'")
    await row.wait_for(state="detached")
    assert await host.locator("#waiting-empty").is_visible()
    # both see each other in the participants list; a guest reads the chat but may not write
    await host.click("#tab-participants")
    await host.locator(person(gid)).wait_for()
    await guest.click("#btn-panel")
    await guest.click("#tab-chat")
    assert await guest.locator("#chat-disabled").is_visible()
    assert "Гости" in (await guest.text_content("#chat-disabled") or "")
    assert await guest.locator("#chat-form").is_hidden()
    assert await guest.locator("#btn-host").is_hidden()


async def test_host_mutes_student_and_unmute_is_locked(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Учитель", role=Role.HOST)),
               camera=False)
    student = await browsers.page()
    pid = await join(student, join_url(server.base, room, server.token(room, "pupil", name="Ученик")), camera=False)
    await student.wait_for_function("() => window.urok.session.local.micOn === true")
    await set_lock(host, "self_unmute", True)
    await student.wait_for_function("() => window.urok.session.room.settings.lock.self_unmute === true")
    assert await student.locator("#btn-mic").is_enabled()  # still on: muting oneself is always allowed
    await person_action(host, pid, "mute-mic", screenshot=artifacts / "call-control-person-actions-1280x800.png")
    await student.wait_for_function("() => window.urok.session.local.micOn === false")
    banner = await student.text_content("#banner") or ""
    assert "выключил ваш микрофон" in banner and "Поднимите руку" in banner, banner
    mic = student.locator("#btn-mic")
    assert await mic.is_disabled()
    assert "Поднимите руку" in (await mic.get_attribute("title") or "")
    await student.screenshot(path=str(artifacts / "call-control-student-locked-1280x800.png"))
    # the host's list shows the crossed microphone
    await host.locator(f"{person(pid)} .muted-icon.mic").wait_for()
    # the host asks to unmute: the student is asked, the button comes back, Accept turns the mic on
    await person_action(host, pid, "ask-unmute")
    await student.locator("#unmute-dialog").wait_for()
    assert "включить микрофон" in (await student.text_content("#unmute-dialog") or "")
    assert await mic.is_enabled()
    await student.click("#unmute-accept")
    await student.wait_for_function("() => window.urok.session.local.micOn === true")
    await host.locator(f"{person(pid)} .muted-icon.mic").wait_for(state="detached")
    # muted again: locked again until the lock is lifted
    await person_action(host, pid, "mute-mic")
    await student.wait_for_function("() => window.urok.session.local.micOn === false")
    await eventually(mic.is_disabled, what="microphone button disabled again")
    await set_lock(host, "self_unmute", False)
    await eventually(mic.is_enabled, what="microphone button enabled after the lock is lifted")
    await mic.click()
    await student.wait_for_function("() => window.urok.session.local.micOn === true")


async def test_attention_notice_and_acknowledgement(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Учитель", role=Role.HOST)),
               camera=False)
    student = await browsers.page()
    pid = await join(student, join_url(server.base, room, server.token(room, "pupil", name="Саша Петров")),
                     camera=False, microphone=False)
    await host.locator(person(pid)).wait_for()
    await host.click("#btn-host")
    await host.fill("#attention-input", "Посмотрите на доску <b>!</b>")
    await host.click("#attention-all")
    notice = student.locator("#attention-notice")
    await notice.wait_for()
    assert await student.text_content("#attention-text") == "Посмотрите на доску <b>!</b>"
    assert await notice.locator("b").count() == 0
    assert await student.evaluate("typeof window.urok.lastBeep === 'number'")
    status = host.locator("#attention-status")
    await status.wait_for()
    assert "0 из 1" in (await host.text_content("#attention-count") or "")
    assert "Саша Петров" in (await host.text_content("#attention-pending") or "")
    await student.set_viewport_size(PHONE)
    await student.wait_for_timeout(300)
    await student.screenshot(path=str(artifacts / "call-control-attention-phone-390x844.png"))
    await student.click("#attention-ack")
    await notice.wait_for(state="detached")
    await host.wait_for_function(
        "() => (document.querySelector('#attention-count')?.textContent || '').includes('1 из 1')")
    assert "Саша Петров" in (await host.text_content("#attention-acked") or "")
    await host.locator(f"{person(pid)} .ack-badge").wait_for()
    await host.screenshot(path=str(artifacts / "call-control-attention-host-1280x800.png"))


async def test_chat_message_and_deletion(server: Any, browsers: Browsers, artifacts: Path) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT", name="Алгебра, 7Б")
    host = await browsers.page()
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Учитель", role=Role.HOST)),
               camera=False)
    await host.click("#tab-chat")
    await host.fill("#chat-input", "Доброе утро")
    await host.press("#chat-input", "Enter")
    await host.locator("#chat-log .msg").wait_for()
    student = await browsers.page()
    await join(student, join_url(server.base, room, server.token(room, "pupil", name="Ученик")),
               camera=False, microphone=False)
    # history on join; the unread badge on the panel button
    await student.wait_for_function("() => window.urok.call.chat.length === 1")
    assert await student.locator("#panel-badge").is_hidden()  # the history is not "unread"
    await host.fill("#chat-input", "Начинаем")
    await host.press("#chat-input", "Enter")
    await student.wait_for_function("() => document.querySelector('#panel-badge').textContent === '1'")
    assert await student.locator("#panel-badge").is_visible()
    await student.click("#btn-panel")
    await student.click("#tab-chat")
    assert "Доброе утро" in (await student.text_content("#chat-log") or "")
    assert await student.locator("#panel-badge").is_hidden()
    assert await student.locator(".msg-delete").count() == 0  # students cannot delete
    text = "Можно вопрос? <script>x</script>"
    await student.fill("#chat-input", text)
    await student.click("#chat-send")
    msg = host.locator("#chat-log .msg", has_text="Можно вопрос?")
    await msg.wait_for()
    assert await msg.locator(".msg-text").text_content() == text
    assert await host.locator("#chat-log script").count() == 0
    # a private message to the host
    host_pid = await host.evaluate("window.urok.session.me")
    await student.select_option("#chat-to", host_pid)
    await student.fill("#chat-input", "Только учителю")
    await student.press("#chat-input", "Enter")
    private = host.locator("#chat-log .msg.private", has_text="Только учителю")
    await private.wait_for()
    assert "лично" in (await private.locator(".msg-private").text_content() or "")
    await student.select_option("#chat-to", "")
    # the host deletes it: both show the tombstone
    await msg.locator(".msg-delete").click()
    await host.locator("#chat-log .msg.deleted .tombstone").wait_for()
    await student.locator("#chat-log .msg.deleted .tombstone").wait_for()
    assert "Сообщение удалено" in (await student.text_content("#chat-log .msg.deleted") or "")
    assert text not in (await student.text_content("#chat-log") or "")
    # a too long message is refused before sending, with the reason shown
    await student.evaluate("document.querySelector('#chat-input').maxLength = 5000")
    await student.fill("#chat-input", "я" * 2001)
    await student.click("#chat-send")
    assert "2\u00a0000" in (await student.text_content("#chat-error") or "")  # the language's numbers
    # a raised hand shows in the host's hand queue and on the tile
    await student.click("#btn-hand")
    await host.click("#tab-hands")
    await host.locator("#hand-list .hand-row").wait_for()
    assert "Ученик" in (await host.text_content("#hand-list") or "")
    await host.locator(".tile.hand-up").wait_for()
    assert await student.get_attribute("#btn-hand", "aria-pressed") == "true"
    # screenshots of the host view with the panel open
    await host.click("#tab-participants")
    await host.wait_for_timeout(300)
    await host.screenshot(path=str(artifacts / "call-control-host-1280x800.png"))
    await host.click("#btn-host")
    await host.wait_for_timeout(200)
    await host.screenshot(path=str(artifacts / "call-control-host-menu-1280x800.png"))
    await host.keyboard.press("Escape")
    await host.set_viewport_size(PHONE)
    await host.wait_for_timeout(300)
    if not await host.locator("#side").is_visible():
        await host.click("#btn-panel")
    await host.click("#tab-chat")
    await host.wait_for_timeout(300)
    await host.screenshot(path=str(artifacts / "call-control-host-phone-390x844.png"))
    box = await host.locator("#side").bounding_box()
    assert box and box["width"] == PHONE["width"] and box["y"] > 0  # a sheet over the lesson, full width
    await host.click("#panel-close")
    assert await host.locator("#side").is_hidden()
    await host.wait_for_timeout(200)
    await host.screenshot(path=str(artifacts / "call-control-host-phone-closed-390x844.png"))
    await host.click("#btn-host")
    await host.locator("#host-menu").wait_for()
    box = await host.locator("#host-menu").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] and box["y"] >= 0
    await host.screenshot(path=str(artifacts / "call-control-host-menu-phone-390x844.png"))


async def test_reactions_lockdown_allow_unmute_and_end(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT")
    host = await browsers.page(locale="en-US")
    await join(host, join_url(server.base, room, server.token(room, "teacher", name="Teacher", role=Role.HOST)),
               camera=False)
    student = await browsers.page(locale="en-US")
    pid = await join(student, join_url(server.base, room, server.token(room, "pupil", name="Pupil")), camera=False)
    # a reaction shows briefly on the sender's tile, on both pages
    await student.click("#btn-react")
    await student.click('#reaction-menu [data-emoji="👍"]')
    bubble = host.locator(f'.tile[data-participant-id="{pid}"] .reaction-bubble')
    await bubble.wait_for()
    assert await bubble.get_attribute("data-emoji") == "👍"  # drawn as a shipped SVG (img alt), not as text
    await student.locator(".tile.self .reaction-bubble").wait_for()
    await bubble.wait_for(state="detached", timeout=6000)
    # one-click lockdown: everything is locked for the student, then restored
    await host.click("#btn-host")
    await host.click("#lockdown")
    await student.wait_for_function("() => Object.values(window.urok.session.room.settings.lock).every(Boolean)")
    await host.wait_for_function("() => document.querySelector('#lockdown').getAttribute('aria-pressed') === 'true'")
    assert await host.locator("#lock-chat").is_checked()
    assert await student.locator("#btn-react").is_disabled()
    await student.wait_for_function("() => window.urok.session.local.micOn === false")
    assert await student.locator("#btn-mic").is_disabled()
    await student.click("#btn-panel")
    await student.click("#tab-chat")
    assert "turned the chat off" in (await student.text_content("#chat-disabled") or "")
    await host.click("#lockdown")
    # back to the locks before (private messages between students start locked in a school room)
    await student.wait_for_function("() => Object.entries(window.urok.session.room.settings.lock)"
                                    ".every(([k, v]) => !v || k === 'private_chat')")
    assert await student.locator("#btn-react").is_enabled()
    assert await student.locator("#chat-form").is_visible()
    await host.keyboard.press("Escape")
    # self_unmute locked, then the host allows this student to unmute
    await set_lock(host, "self_unmute", True)
    mic = student.locator("#btn-mic")
    await eventually(mic.is_disabled, what="microphone locked")
    await person_action(host, pid, "allow-unmute")
    await eventually(mic.is_enabled, what="microphone allowed")
    assert "allowed you" in (await student.text_content("#banner") or "")
    await mic.click()
    await student.wait_for_function("() => window.urok.session.local.micOn === true")
    # end the lesson for everyone, after a confirmation
    await host.click("#btn-host")
    await host.click("#end-lesson")
    await host.click("#end-confirm")
    await student.wait_for_selector("#message")
    assert "ended" in (await student.text_content("#message") or "")
    await host.wait_for_selector("#message")


async def test_room_ending_banner(server: Any, browsers: Browsers) -> None:
    # a lesson minute lasts 1 s: the 5-minute warning comes 1 s after the start (the first join), the
    # end 5 s after it
    server.app[ROOMS].minute_s = 1.0
    room = await server.create_room(guest_policy="ALWAYS_ACCEPT", duration_minutes=6)
    page = await browsers.page()
    await join(page, join_url(server.base, room, server.token(room, "pupil", name="Ученик")), camera=False,
               microphone=False)
    banner = page.locator("#room-ending")
    await banner.wait_for(timeout=10_000)
    assert "Урок закончится через" in (await banner.text_content() or "")
    await page.wait_for_selector("#message", timeout=20_000)
    assert "закончился" in (await page.text_content("#message") or "")
