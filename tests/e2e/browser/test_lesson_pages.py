"""The e-journal's pages in real Chromium against the real server: the teacher's page (/teacher) and
the per-person lesson link (/lesson/{id}).

A teacher plans a lesson for a class from the page's form, sees it in today's schedule and starts it
(lands in the room as its host); a roster student's link goes straight into the room; a stranger with
a token for the same room waits for the teacher; a link opened before the window says when the
lesson starts, counts down and goes on by itself when entry opens. Both pages fit a 390-px phone.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, ViewportSize

from tests.e2e.browser.conftest import PHONE, Browsers
from tests.e2e.browser.util import eventually, prejoin_ready

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

MSK = timezone(timedelta(hours=3))
PHONE_SIZE: ViewportSize = {"width": PHONE["width"], "height": PHONE["height"]}
DESKTOP_SIZE: ViewportSize = {"width": 1280, "height": 800}
NO_SIDEWAYS_SCROLL_JS = "() => document.documentElement.scrollWidth <= window.innerWidth"
TEACHER = {"teacher_id": "t-1", "name": "Мария Иванова", "family_name": "Иванова", "given_name": "Мария"}


async def teacher_url(server: Any) -> str:
    status, body = await server.rest("POST", "/v1/teacher_tokens", TEACHER)
    assert status in (200, 201), body
    assert body["url"].endswith("/teacher#token=" + body["token"]), body
    return f"{server.base}/teacher#token={body['token']}"


def on_this_server(server: Any, url: str) -> str:
    """A link from the API, opened on the test server (the API names its public base URL)."""
    parts = urlsplit(url)
    return f"{server.base}{parts.path}" + (f"?{parts.query}" if parts.query else "") + f"#{parts.fragment}"


async def lesson_links(server: Any, lesson_id: str) -> dict[str, str]:
    status, body = await server.rest("GET", f"/v1/lessons/{lesson_id}/links")
    assert status == 200, body
    links = body["links"] if isinstance(body, dict) else body
    return {link["identity"]: on_this_server(server, link["join_url"]) for link in links}


async def plan_lesson(server: Any, *, starts_at: datetime, name: str = "Физика, 8А", **extra: Any) -> dict[str, Any]:
    body = {"external_id": f"e2e-{name}-{starts_at.timestamp()}", "subject": name.split(",")[0],
            "name": name, "class": {"id": "8a", "name": "8А"},
            "teachers": [{"id": "t-1", "family_name": "Иванова", "given_name": "Мария"}],
            "students": [{"id": "s-1", "family_name": "Петров", "given_name": "Пётр"}],
            "starts_at": starts_at.isoformat(), "duration_minutes": 45, **extra}
    status, lesson = await server.rest("POST", "/v1/lessons", body)
    assert status == 201, lesson
    return dict(lesson)


async def wait_joined(page: Page, status: str = "joined") -> None:
    await page.wait_for_function(f"() => window.urok.session && window.urok.session.status === '{status}'",
                                 timeout=15_000)


async def enter_through_prejoin(page: Page) -> None:
    await prejoin_ready(page)
    await page.click("#prejoin-camera")  # the camera is not what these tests look at
    await page.click("#join")


async def fits_phone(page: Page) -> bool:
    await page.set_viewport_size(PHONE_SIZE)
    await page.wait_for_timeout(150)
    fits: bool = await page.evaluate(NO_SIDEWAYS_SCROLL_JS)
    return fits


def local_hhmm(offset_min: int, when: datetime) -> str:
    """The time the page shows for ``when`` in the browser's zone (its getTimezoneOffset)."""
    return when.astimezone(timezone(timedelta(minutes=-offset_min))).strftime("%H:%M")


async def test_teacher_plans_and_starts_a_lesson_a_roster_student_enters_and_a_stranger_waits(
        server: Any, browsers: Browsers, artifacts: Path) -> None:
    teacher = await browsers.page()
    await teacher.goto(await teacher_url(server))
    await teacher.wait_for_function("() => window.urok.teacher && window.urok.teacher.loads >= 1")
    assert "#token=" not in teacher.url  # the token leaves the address bar
    assert await teacher.text_content("#teacher-name") == "Мария Иванова"
    assert "Сегодня уроков нет" in (await teacher.text_content("#today") or "")

    # the form: a class, its students (one pasted from a journal's table: number, name, id by tabs),
    # today two minutes from now (inside the 15-minute window)
    await teacher.fill("#plan-class-id", "7b")
    await teacher.fill("#plan-class-name", "7Б")
    await teacher.fill("#plan-subject", "Алгебра")
    await teacher.fill("#plan-students", "Петров Пётр; s-1\n2\tСидорова Анна\ts-2\n")
    when = await teacher.evaluate("""() => {
      const now = new Date();
      let d = new Date(now.getTime() + 120000);
      if (d.getDate() !== now.getDate()) d = now;  // just before midnight: today's lesson starts now
      const p = (n) => String(n).padStart(2, '0');
      return {date: `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`,
              time: `${p(d.getHours())}:${p(d.getMinutes())}`};
    }""")
    await teacher.fill("#plan-date", when["date"])
    await teacher.fill("#plan-time", when["time"])
    await teacher.fill("#plan-duration", "40")
    await teacher.click("#plan-submit")
    await teacher.wait_for_selector("#plan-status.ok")
    assert "Алгебра, 7Б" in (await teacher.text_content("#plan-status") or ""), browsers.log(teacher)
    item = teacher.locator("#today-list .tp-item", has_text="Алгебра, 7Б")
    await item.wait_for()
    lesson_id = await item.get_attribute("data-lesson-id")
    assert lesson_id and lesson_id.startswith("LS_")
    assert f"{when['time']}–" in (await item.locator(".tp-time").text_content() or "")

    # the lesson as the server keeps it: the teacher from the token, both students, the browser's zone
    status, lesson = await server.rest("GET", f"/v1/lessons/{lesson_id}")
    assert status == 200, lesson
    assert [t["id"] for t in lesson["teachers"]] == ["t-1"]
    assert sorted(s["id"] for s in lesson["students"]) == ["s-1", "s-2"]
    names = {(s["family_name"], s["given_name"]) for s in lesson["students"]}
    assert names == {("Петров", "Пётр"), ("Сидорова", "Анна")}
    assert lesson["duration_minutes"] == 40

    # "copy the students' links": one line per student, family names in order, the links shown too
    await teacher.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    await item.locator(".copy-links").click()
    await item.locator(".tp-note.ok").wait_for()
    shown = await item.locator("textarea.links-text").input_value()
    lines = shown.splitlines()
    assert [line.split(" — ")[0] for line in lines] == ["Петров Пётр", "Сидорова Анна"], shown
    assert all(f"/lesson/{lesson_id}#token=" in line for line in lines), shown
    assert await teacher.evaluate("navigator.clipboard.readText()") == shown

    # the teacher's page on a phone: no sideways scroll, links and form included
    assert await fits_phone(teacher), "the teacher's page scrolls sideways at 390 px"
    await teacher.screenshot(path=str(artifacts / "teacher-phone-390.png"), full_page=True)
    await teacher.set_viewport_size(DESKTOP_SIZE)

    # "Start": the teacher's own lesson link -> the lesson page -> the room, as its host
    await item.locator(".start").click()
    await teacher.wait_for_url("**/join/**")
    await enter_through_prejoin(teacher)
    await wait_joined(teacher)
    assert await teacher.evaluate("window.urok.claims.role") == "host"
    room_id = urlsplit(teacher.url).path.split("/")[-1]
    assert await teacher.text_content("#room-name"), "the room has the lesson's name"

    # a roster student's link: straight in, no waiting room
    student = await browsers.page(viewport=PHONE)
    await student.goto((await lesson_links(server, lesson_id))["s-2"])
    await student.wait_for_url(f"**/join/{room_id}**")
    await enter_through_prejoin(student)
    await wait_joined(student)
    assert await student.evaluate("window.urok.session.statusLog.includes('waiting')") is False

    # a stranger with a token for the same room, not on the roster: waits for the teacher
    status, minted = await server.rest("POST", f"/v1/rooms/{room_id}/tokens",
                                       {"identity": "stranger", "name": "Посторонний", "registered": True})
    assert status in (200, 201), minted
    stranger = await browsers.page()
    await stranger.goto(on_this_server(server, minted["join_url"]))
    await enter_through_prejoin(stranger)
    await wait_joined(stranger, "waiting")
    await stranger.wait_for_timeout(1000)
    assert await stranger.evaluate("window.urok.session.status") == "waiting"


async def test_teacher_plans_a_weekly_lesson_and_reads_refusals_in_plain_words(
        server: Any, browsers: Browsers) -> None:
    teacher = await browsers.page(locale="en-US")
    await teacher.goto(await teacher_url(server))
    await teacher.wait_for_function("() => window.urok.teacher && window.urok.teacher.loads >= 1")
    await teacher.fill("#plan-class-id", "9v")
    await teacher.fill("#plan-class-name", "9V")
    await teacher.fill("#plan-subject", "Chemistry")
    # a line the page cannot read: said before anything is sent
    await teacher.fill("#plan-students", "Petrov Petr; s-1\nno id here")
    await teacher.click("#plan-submit")
    await teacher.wait_for_selector("#plan-status.error")
    assert "Line 2" in (await teacher.text_content("#plan-status") or "")
    # the server's refusal in plain words: a lesson that is over already
    days = await teacher.evaluate("""() => {
      const p = (n) => String(n).padStart(2, '0');
      const day = (k) => { const d = new Date(); d.setDate(d.getDate() + k);
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`; };
      return {yesterday: day(-1), nextWeek: day(7), inThreeWeeks: day(21)};
    }""")
    await teacher.fill("#plan-students", "Petrov Petr; s-1")
    await teacher.fill("#plan-date", days["yesterday"])
    await teacher.fill("#plan-time", "10:00")
    await teacher.click("#plan-submit")
    await teacher.wait_for_function("document.querySelector('#plan-status').textContent.includes('over already')")
    assert (await teacher.text_content("#plan-status") or "").startswith("The server did not accept it: starts_at")
    # weekly from next week for three weeks: next week and the week after show it
    await teacher.fill("#plan-date", days["nextWeek"])
    await teacher.check("#plan-weekly")
    await teacher.fill("#plan-until", days["inThreeWeeks"])
    await teacher.click("#plan-submit")
    await teacher.wait_for_selector("#plan-status.ok")
    assert await teacher.text_content("#plan-status") == "The lesson “Chemistry, 9V” is planned."
    lesson = await teacher.evaluate("window.urok.lastPlanned")
    assert lesson["recurrence"]["weekly"]["until"] == days["inThreeWeeks"], lesson["recurrence"]
    assert [link["identity"] for link in lesson["links"]] == ["t-1", "s-1"]
    for _ in range(2):
        title = await teacher.text_content("#week-title")
        await teacher.click("#week-next")
        await teacher.wait_for_function("(t) => document.querySelector('#week-title').textContent !== t", arg=title)
        assert (await teacher.text_content("#week-title") or "").startswith("Week: ")
        await teacher.locator("#week .tp-item", has_text="Chemistry, 9V").wait_for()
        assert await teacher.locator("#week .tp-item", has_text="Chemistry, 9V").count() == 1


async def test_a_link_before_the_window_says_when_the_lesson_starts_then_enters_by_itself(
        server: Any, browsers: Browsers, artifacts: Path) -> None:
    # entry opens 15 minutes before the start: this lesson's window opens 6 seconds from now
    starts_at = (datetime.now(MSK) + timedelta(minutes=15, seconds=6)).replace(microsecond=0)
    lesson = await plan_lesson(server, starts_at=starts_at)
    links = await lesson_links(server, lesson["lesson_id"])
    page = await browsers.page(viewport=PHONE)
    await page.goto(links["s-1"])
    await page.wait_for_selector('#lesson-message[data-state="not_open"]')
    assert "#token=" not in page.url
    offset = await page.evaluate("new Date().getTimezoneOffset()")
    title = await page.text_content("#lesson-title") or ""
    assert title == f"Урок «Физика, 8А» начнётся в {local_hhmm(offset, starts_at)}", title
    day = await page.text_content("#lesson-day") or ""
    assert day.startswith(("сегодня", "завтра")), day
    left = await page.text_content("#lesson-left") or ""
    assert left.count(":") == 1, left  # "0:05": minutes and seconds
    # no device check and no error before the window
    assert await page.evaluate("window.urok.prejoin === undefined && !document.querySelector('#prejoin')")
    assert await page.locator("[role=alert]").count() == 0
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS), "the lesson page scrolls sideways at 390 px"
    await page.screenshot(path=str(artifacts / "lesson-starts-at-phone-390.png"))
    # it counts down and goes on to the room when entry opens, by itself
    await page.wait_for_url("**/join/**", timeout=20_000)
    await prejoin_ready(page)
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS)


async def test_a_link_far_ahead_shows_the_start_in_english_and_asks_again_later(
        server: Any, browsers: Browsers) -> None:
    starts_at = (datetime.now(MSK) + timedelta(days=2)).replace(second=0, microsecond=0)
    lesson = await plan_lesson(server, starts_at=starts_at, name="Физика, 8А (вторник)")
    links = await lesson_links(server, lesson["lesson_id"])
    page = await browsers.page(links["s-1"], locale="en-US")
    await page.wait_for_selector('#lesson-message[data-state="not_open"]')
    offset = await page.evaluate("new Date().getTimezoneOffset()")
    assert await page.text_content("#lesson-title") == (
        f"The lesson “Физика, 8А (вторник)” starts at {local_hhmm(offset, starts_at)}")
    assert " d " in (await page.text_content("#lesson-left") or "")  # "1 d 23:59:58"
    assert await page.evaluate("window.urok.lessonPage.tries") == 1


async def test_cancelled_and_broken_links_are_said_at_once(server: Any, browsers: Browsers) -> None:
    starts_at = (datetime.now(MSK) + timedelta(minutes=5)).replace(microsecond=0)
    lesson = await plan_lesson(server, starts_at=starts_at, name="Химия, 9В")
    links = await lesson_links(server, lesson["lesson_id"])
    status, body = await server.rest("DELETE", f"/v1/lessons/{lesson['lesson_id']}")
    assert status == 200, body
    page = await browsers.page(links["s-1"])
    await page.wait_for_selector('#lesson-message[data-state="cancelled"]')
    assert await page.text_content("#lesson-text") == "Этот урок отменён."  # the refusal names no lesson

    broken = await browsers.page(f"{server.base}/lesson/{lesson['lesson_id']}#token=not-a-jwt")
    await broken.wait_for_selector('#lesson-message[data-state="bad_link"]')
    assert "повреждена" in (await broken.text_content("#lesson-text") or "")

    # a well-formed token that the server refuses (signed with another secret)
    forged = links["s-1"].rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    refused = await browsers.page(forged)
    await refused.wait_for_selector('#lesson-message[data-state="bad_link"]')

    missing = await browsers.page(f"{server.base}/lesson/LS_nothing-here#token=" + links["s-1"].split("#token=")[1])
    await missing.wait_for_selector('#lesson-message[data-state]:not([data-state="checking"])')
    assert await missing.get_attribute("#lesson-message", "data-state") in ("not_found", "bad_link")

    # the teacher's page without a teacher token
    student_as_teacher = await browsers.page(f"{server.base}/teacher#token=" + links["s-1"].split("#token=")[1])
    await student_as_teacher.wait_for_selector("#message")
    assert "не ссылка учителя" in (await student_as_teacher.text_content("#message") or "")
    assert await eventually(lambda: student_as_teacher.evaluate("!document.querySelector('#plan-form')"))


async def test_lesson_and_teacher_pages_carry_the_security_headers(server: Any) -> None:
    for path in ("/lesson/LS_x", "/teacher"):
        async with server.http.get(server.base + path) as r:
            assert r.status == 200 and r.content_type == "text/html"
            assert r.headers["Cache-Control"] == "no-store"
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["X-Frame-Options"] == "DENY"
            assert r.headers["Referrer-Policy"] == "no-referrer"
            text = await r.text()
            assert "<script>" not in text and "style=" not in text
