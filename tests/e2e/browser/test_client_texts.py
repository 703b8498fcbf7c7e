"""The client's words (issue 15), checked through the page's own string table (web/i18n.js) in
Chromium: Russian plural forms, numbers written the language's way (2,2 с), and the Russian table
read whole for the mistakes the issue found (a feminine noun after "ваш", jargon such as "токен")."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.browser.conftest import Browsers
from tests.e2e.browser.util import join_url, prejoin_ready

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

FORMS = """async () => {
  const m = await import('/web/i18n.js');
  const out = {lang: m.lang, minutes: {}, attendance: {}, audience: {}};
  for (const n of [0, 1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111]) {
    out.minutes[n] = m.t('minutesN', {n});
    out.attendance[n] = m.t('attendanceCount', {n});
    out.audience[n] = m.t('audienceN', {n});
  }
  out.seconds = m.t('seconds', {n: 2.2});
  out.big = m.num(1500);
  out.answered1 = m.t('attentionStatus', {n: 1, acked: 1, total: 3});
  out.answered2 = m.t('attentionStatus', {n: 2, acked: 2, total: 3});
  out.table = m.strings(m.lang);
  return out;
}"""


async def _forms(browsers: Browsers, server: Any, lang: str | None) -> dict[str, Any]:
    room = await server.create_room()
    page = await browsers.page()
    await page.goto(join_url(server.base, room, server.token(room, "a"), lang=lang))
    await prejoin_ready(page)
    forms: dict[str, Any] = await page.evaluate(FORMS)
    return forms


async def test_russian_plural_forms_and_numbers(server: Any, browsers: Browsers) -> None:
    f = await _forms(browsers, server, None)
    assert f["lang"] == "ru"
    m = f["minutes"]
    assert (m["1"], m["2"], m["4"], m["5"], m["11"], m["12"], m["14"]) == (
        "1 минута", "2 минуты", "4 минуты", "5 минут", "11 минут", "12 минут", "14 минут")
    assert (m["21"], m["22"], m["25"], m["101"], m["111"], m["0"]) == (
        "21 минута", "22 минуты", "25 минут", "101 минута", "111 минут", "0 минут")
    a = f["attendance"]
    assert (a["1"], a["2"], a["5"], a["21"]) == ("Был 1 участник", "Было 2 участника", "Было 5 участников",
                                                 "Был 21 участник")
    au = f["audience"]
    assert (au["1"], au["4"], au["11"]) == ("и 1 зритель", "и 4 зрителя", "и 11 зрителей")
    assert f["seconds"] == "2,2 с"
    assert f["big"] in ("1\u00a0500", "1\u202f500", "1 500")
    assert f["answered1"] == "Ответил 1 из 3" and f["answered2"] == "Ответили 2 из 3"


async def test_the_russian_table_has_no_known_mistakes(server: Any, browsers: Browsers) -> None:
    f = await _forms(browsers, server, None)
    table: dict[str, Any] = f["table"]
    assert len(table) > 300  # the whole table, with the features' own strings
    texts = {k: " ".join(v.values()) if isinstance(v, dict) else v for k, v in table.items()}
    feminine = ("камеру", "клавиатуру", "руку", "доску", "ссылку")
    wrong = [(k, v) for k, v in texts.items() for noun in feminine if f"ваш {noun}" in v.lower()]
    assert not wrong, wrong
    jargon = [(k, v) for k, v in texts.items() for word in ("токен", "token", "jwt", "сокет", "websocket")
              if word in v.lower()]
    assert not jargon, jargon
    assert table["mutedByHost_camera"] == "Учитель выключил вашу камеру."
    # no Russian text left in English: a word of Latin letters outside {placeholders}
    names = r"\{\w+\}|CSV|PDF|PNG|SVG|WebVTT|VTT|WebM|MP4|Ctrl|localhost|https?://\S*"  # formats, keys, addresses
    english = [(k, v) for k, v in texts.items() if k != "lang_en" and re.search(r"[A-Za-z]{3,}", re.sub(names, "", v))]
    assert not english, english


async def test_english_forms_and_numbers(server: Any, browsers: Browsers) -> None:
    f = await _forms(browsers, server, "en")
    assert f["lang"] == "en"
    assert (f["minutes"]["1"], f["minutes"]["2"], f["minutes"]["21"]) == ("1 minute", "2 minutes", "21 minutes")
    assert f["seconds"] == "2.2 s" and f["big"] == "1,500"
    assert f["answered1"] == "1 of 3 answered"
