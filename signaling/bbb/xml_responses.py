"""BigBlueButton's XML answers: ``<response><returncode>SUCCESS|FAILED</returncode>...</response>``.

Every answer, errors included, is HTTP 200 with ``text/xml`` (what BigBlueButton's clients check);
a failure carries a stable ``messageKey`` (checksumError, notFound, ...) and an English ``message``.
Fields are (tag, value) pairs in the order BigBlueButton writes them: a value is text, a number, a
boolean (``true``/``false``), None (an empty element) or a list of pairs (nested elements; an empty
list is an empty element such as ``<attendees/>``).
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Union

from aiohttp import web

Value = Union[str, int, float, bool, None, Sequence["Field"]]  # noqa: UP007 (a recursive alias)
Field = tuple[str, Value]

CONTENT_TYPE = "text/xml"

# the messages BigBlueButton gives with its keys (the key is the contract; the text may change)
NO_MEETINGS = "no meetings were found on this server"
NO_RECORDINGS = "There are no recordings for the meeting(s)."
DUPLICATE = "This conference was already in existence and may currently be in progress."
END_SENT = ("A request to end the meeting was sent.  Please wait a few seconds, and then use the "
            "getMeetingInfo or isMeetingRunning API calls to verify that it was ended.")
JOINED = "You have joined successfully."

# what XML 1.0 cannot carry even escaped (control characters but tab, LF, CR; lone surrogates;
# U+FFFE, U+FFFF).  ElementTree writes them as they are, and one such character in an attendee's
# name or a meta_* value would make getMeetingInfo and getMeetings unreadable to the LMS.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _append(parent: ET.Element, fields: Sequence[Field]) -> None:
    for tag, value in fields:
        el = ET.SubElement(parent, tag)
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            el.text = _text(value)
        else:
            _append(el, value)


def render(returncode: str, fields: Sequence[Field]) -> str:
    root = ET.Element("response")
    _append(root, [("returncode", returncode), *fields])
    return ET.tostring(root, encoding="unicode", xml_declaration=False)


def xml_response(body: str) -> web.Response:
    return web.Response(text=body, content_type=CONTENT_TYPE, charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def success(*fields: Field) -> web.Response:
    return xml_response(render("SUCCESS", fields))


def failed(key: str, message: str) -> web.Response:
    return xml_response(render("FAILED", [("messageKey", key), ("message", message)]))


def java_date(epoch_s: float) -> str:
    """A time as BigBlueButton's createDate writes it (Java's Date.toString in UTC)."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(epoch_s))


def millis(epoch_s: float | None) -> int:
    """Seconds since the epoch as BigBlueButton's milliseconds; 0 for "not yet" (startTime, endTime)."""
    return 0 if epoch_s is None else round(epoch_s * 1000)
