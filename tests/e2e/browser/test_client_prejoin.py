"""The join page before the lesson (issue 15): the link is checked before any device is asked for,
the pre-join screen says which lesson and in which role and fits a 390-px phone, the ru/en switch
is remembered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signaling.rooms import Role
from tests.e2e.browser.conftest import PHONE, Browsers
from tests.e2e.browser.util import join_url, prejoin_ready

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
EN_PREJOIN = "() => document.documentElement.lang === 'en' && document.querySelector('#prejoin h1')"
RU_PREJOIN = "() => document.documentElement.lang === 'ru' && document.querySelector('#prejoin h1')"

WIDEST = """() => {
  const wide = [];
  for (const el of document.querySelectorAll('#app *')) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 0.5) wide.push(`${el.tagName}#${el.id}.${el.className} ${Math.round(r.right)}`);
  }
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, wide: wide.slice(0, 5)};
}"""


async def test_phone_prejoin_fits_390_px_with_long_device_names(server: Any, browsers: Browsers,
                                                                artifacts: Path) -> None:
    room = await server.create_room(name="Алгебра, 7 «Б» класс: квадратные уравнения")
    page = await browsers.page(viewport=PHONE)
    await page.goto(join_url(server.base, room, server.token(room, "a", name="Анна Константиновна Преображенская")))
    await prejoin_ready(page)
    # real machines name their devices at length ("Default - Microphone Array (Realtek(R) Audio)")
    await page.evaluate("""() => { for (const id of ['camera-select', 'mic-select', 'speaker-select']) {
      const o = document.createElement('option');
      o.textContent = 'По умолчанию — Микрофонный массив (Realtek(R) High Definition Audio с очень длинным названием)';
      document.getElementById(id).appendChild(o);
      document.getElementById(id).hidden = false; } }""")
    fit = await page.evaluate(WIDEST)
    assert fit["scroll"] <= 390 and not fit["wide"], fit
    assert "квадратные уравнения" in (await page.text_content("#prejoin-lesson") or "")
    assert "ученик" in (await page.text_content("#prejoin-role") or "")
    await page.screenshot(path=str(artifacts / "client-prejoin-390x844.png"), full_page=True)
    desktop = await browsers.page()
    await desktop.goto(join_url(server.base, room, server.token(room, "t", name="Учитель", role=Role.HOST)))
    await prejoin_ready(desktop)
    assert "учитель" in (await desktop.text_content("#prejoin-role") or "")
    await desktop.screenshot(path=str(artifacts / "client-prejoin-1280x800.png"))


async def test_link_checks_come_before_the_device_check(server: Any, browsers: Browsers) -> None:
    room = await server.create_room(name="История, 5 А")
    token = server.token(room, "pupil")
    status, _ = await server.rest("DELETE", f"/v1/rooms/{room}")
    assert status == 200
    cases = [
        (join_url(server.base, room, token), "Урок «История, 5 А» уже закончился"),
        (join_url(server.base, room, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")), "повреждена"),
        (join_url(server.base, "no-such-room", server.token("no-such-room", "u")), "Урок не найден"),
    ]
    for url, said in cases:
        page = await browsers.page()
        # count camera/microphone requests: none may happen before the link is known to be good
        await page.add_init_script("""window.__gum = 0;
          const orig = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
          navigator.mediaDevices.getUserMedia = (c) => { window.__gum++; return orig(c); };""")
        await page.goto(url)
        await page.wait_for_selector("#message")
        assert said in (await page.text_content("#message") or ""), url
        assert await page.locator("#prejoin").count() == 0
        assert await page.evaluate("window.__gum") == 0
    # the page's own check endpoint: bad token 401, good token 200 with the name and the role
    status, body = await server.rest("GET", f"/join/{room}/check", auth=False,
                                     headers={"Authorization": "Bearer x.y.z"})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    live = await server.create_room(name="Физика")
    status, body = await server.rest("GET", f"/join/{live}/check", auth=False,
                                     headers={"Authorization": f"Bearer {server.token(live, 'p', role=Role.HOST)}"})
    assert status == 200 and body["name"] == "Физика" and body["role"] == "host" and body["ended"] is False
    status, body = await server.rest("GET", f"/join/{live}/attendance", auth=False,
                                     headers={"Authorization": f"Bearer {server.token(live, 'p')}"})
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_language_switch_is_visible_and_remembered(server: Any, browsers: Browsers) -> None:
    room = await server.create_room()
    page = await browsers.page()
    await page.goto(join_url(server.base, room, server.token(room, "a")))
    await prejoin_ready(page)
    assert "Проверьте камеру" in (await page.text_content("#prejoin h1") or "")
    await page.click("#lang-en")
    await page.wait_for_function(EN_PREJOIN)
    await prejoin_ready(page)  # the reload keeps the link (the tab's token) and asks for nothing new
    assert "Check your camera" in (await page.text_content("#prejoin h1") or "")
    assert await page.get_attribute("#lang-en", "aria-pressed") == "true"
    # remembered: a later page of the same browser profile opens in English
    again = await page.context.new_page()
    await again.goto(join_url(server.base, room, server.token(room, "b")))
    await prejoin_ready(again)
    assert "Check your camera" in (await again.text_content("#prejoin h1") or "")
    await again.click("#lang-ru")
    await again.wait_for_function(RU_PREJOIN)
