"""BigBlueButton's XML answers as urok writes them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from signaling.bbb import xml_responses as x


def test_a_failure_has_returncode_message_key_and_message_in_that_order() -> None:
    root = ET.fromstring(x.render("FAILED", [("messageKey", "checksumError"), ("message", "Checksums do not match")]))
    assert root.tag == "response"
    assert [(c.tag, c.text) for c in root] == [("returncode", "FAILED"), ("messageKey", "checksumError"),
                                               ("message", "Checksums do not match")]


def test_values_nest_and_booleans_numbers_and_empties_are_written_as_bigbluebutton_does() -> None:
    body = x.render("SUCCESS", [
        ("running", True), ("hasBeenForciblyEnded", False), ("createTime", 1531155809613),
        ("attendees", [("attendee", [("fullName", "Пётр <Петров> & Co"), ("customdata", None)])]),
        ("metadata", []), ("dialNumber", "")])
    root = ET.fromstring(body)
    assert root.findtext("running") == "true" and root.findtext("hasBeenForciblyEnded") == "false"
    assert root.findtext("createTime") == "1531155809613"
    assert root.findtext("attendees/attendee/fullName") == "Пётр <Петров> & Co"  # escaped, read back whole
    assert root.find("metadata") is not None and len(root.find("metadata")) == 0  # type: ignore[arg-type]
    assert root.findtext("dialNumber") == ""
    assert "<metadata />" in body


def test_a_response_is_http_200_text_xml() -> None:
    r = x.failed("notFound", "no")
    assert r.status == 200 and r.content_type == "text/xml" and r.charset == "utf-8"


def test_dates_are_written_like_javas_date_in_utc_and_times_in_milliseconds() -> None:
    assert x.java_date(1531155809.613) == "Mon Jul 09 17:03:29 UTC 2018"
    assert x.millis(1531155809.6131) == 1531155809613
    assert x.millis(None) == 0
