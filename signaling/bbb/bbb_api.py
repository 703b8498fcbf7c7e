"""BigBlueButton's API over urok's rooms: /bigbluebutton/api/{call}, GET or POST.

Each call: read the parameters (the query string, and a POST's form body), check the checksum
(checksum.py), then do the call on the RoomManager and answer BigBlueButton's XML
(xml_responses.py).  A meeting is a urok room created with ``external_id = "bbb:{meetingID}"``;
the store (meetings.py) keeps what the client created it with.  ``join`` mints a urok access token
(moderator -> host, attendee -> participant, guest=true -> not registered, so the room's guest
policy applies) and redirects into urok's client; the token travels in the URL's fragment, which
the browser keeps across the redirect and never sends to any server or log.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from signaling.auth import TokenService
from signaling.bbb import checksum
from signaling.bbb import params as p
from signaling.bbb import xml_responses as x
from signaling.bbb.meetings import BbbMeeting, MeetingStore
from signaling.bbb.params import BbbError
from signaling.cluster.forward import forward_to_owner, may_forward
from signaling.errors import RoomNotFound, ServiceUnavailable
from signaling.room_manager import RoomManager
from signaling.rooms import GuestPolicy, Room, RoomSettings
from signaling.rooms.room_settings import MAX_PARTICIPANTS_CEILING

log = logging.getLogger("urok.bbb")

PREFIX = "/bigbluebutton/api"
API_VERSION = "2.0"
END_REASON = "ended through the BigBlueButton API"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_MAX_EXTERNAL_ID = 200  # RoomSettings.external_id
# with several workers these are answered by the worker serving the meeting's room (_at_the_room)
_AT_THE_ROOM = frozenset({"end", "isMeetingRunning", "getMeetingInfo"})


@dataclass(frozen=True, slots=True)
class Request:
    """One call's parameters: ``first`` (a name's first value, as BigBlueButton reads them) and
    ``pairs`` (every name=value, for meta_*)."""

    call: str
    first: Mapping[str, str]
    pairs: Sequence[tuple[str, str]]


Handler = Callable[["BbbApi", Request], Awaitable[web.Response]]


def room_external_id(meeting_id: str) -> str:
    ext = "bbb:" + meeting_id
    if len(ext) <= _MAX_EXTERNAL_ID:
        return ext
    return "bbb-sha1:" + hashlib.sha1(meeting_id.encode("utf-8")).hexdigest()  # a 256-character meetingID


class BbbApi:
    def __init__(self, *, secret: str, algorithms: Sequence[str], meetings: MeetingStore, rooms: RoomManager,
                 tokens: TokenService, base_url: str, token_ttl_s: int, clock: Callable[[], float]) -> None:
        self.secret = secret
        self.algorithms = tuple(algorithms)
        self.meetings = meetings
        self.rooms = rooms
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.token_ttl_s = min(token_ttl_s, tokens.max_ttl_s)
        self.clock = clock

    # --- the edge ------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        call = request.match_info.get("call", "")
        handler = CALLS.get(call)
        if handler is None:
            return x.failed("unsupportedRequest", "This request is not supported.")
        query = request.rel_url.query
        form: MultiDictProxy[str] | MultiDict[str] = MultiDict()
        if request.method == "POST" and request.content_type in _FORMS:
            form = await request.post()  # type: ignore[assignment]  # file fields are not BigBlueButton's
        pairs = [(k, v) for k, v in (*query.items(), *form.items()) if isinstance(v, str)]
        first: dict[str, str] = {}
        for k, v in pairs:
            first.setdefault(k, v)
        signed = [checksum.without_checksum(request.rel_url.raw_query_string)]
        if form and not signed[0]:
            signed.append(checksum.form_query((k, v) for k, v in form.items() if isinstance(v, str)))
        if not checksum.verify(call, signed, first.get("checksum", ""), self.secret, self.algorithms):
            return x.failed("checksumError", "Checksums do not match")
        if call in _AT_THE_ROOM and may_forward(request):
            forwarded = await self._at_the_room(request, first)
            if forwarded is not None:
                return forwarded
        try:
            return await handler(self, Request(call=call, first=first, pairs=pairs))
        except BbbError as e:
            return x.failed(e.key, e.message)

    async def _at_the_room(self, request: web.Request, first: Mapping[str, str]) -> web.StreamResponse | None:
        """With several workers (signaling/cluster/): the call forwarded, as it came, to the worker
        serving the meeting's room: ``end`` ends it there at once and answers when it has (not
        through a cluster event and a wait on the database), and the reads give its live state, not
        the database's copy of up to flush_s ago.  None: answered here (one process, a room served
        here or by nobody, a multipart body already consumed by request.post())."""
        if request.content_type == "multipart/form-data":
            return None
        meeting_id = p.clean(first.get("meetingID", ""))
        meeting = await self.meetings.latest(meeting_id) if meeting_id else None
        return None if meeting is None else await forward_to_owner(request, meeting.room_id)

    # --- meetings and their rooms --------------------------------------------------------------
    async def _room(self, meeting: BbbMeeting) -> Room | None:
        """The meeting's room (None: gone, deleted by the retention); an ended one is marked."""
        try:
            room = await self.rooms.get(meeting.room_id)
        except RoomNotFound:
            room = None
        if (room is None or room.ended) and meeting.ended_at is None:
            ended = room.ended_at if room is not None and room.ended_at is not None else self.clock()
            await self.meetings.mark_ended(meeting.internal_id, ended)
        return room

    async def _meeting(self, meeting_id: str, *, missing: BbbError) -> tuple[BbbMeeting, Room]:
        meeting = await self.meetings.latest(meeting_id)
        room = await self._room(meeting) if meeting is not None else None
        if meeting is None or room is None:
            raise missing
        return meeting, room

    def _not_found(self) -> BbbError:
        return BbbError("notFound", "We could not find a meeting with that meeting ID - perhaps the meeting "
                                    "is not yet running?")

    # --- the calls -----------------------------------------------------------------------------
    async def create(self, req: Request) -> web.Response:
        mid = p.meeting_id(req.first)
        name = p.clean(req.first.get("name", ""))[: p.MAX_NAME] or mid[: p.MAX_NAME]
        policy = p.guest_policy(req.first)
        max_users = p.max_participants(req.first)
        minutes = p.duration(req.first)
        meta = p.metadata(req.pairs)
        latest = await self.meetings.latest(mid)
        if latest is not None:
            room = await self._room(latest)
            if room is not None and not room.ended:
                self._check_same_passwords(latest, req.first)
                return self._created(latest, room, duplicate=True)
        settings = RoomSettings(name=name, external_id=room_external_id(mid),
                                max_participants=max_users or MAX_PARTICIPANTS_CEILING,
                                guest_policy=p.GUEST_POLICIES[policy], duration_minutes=minutes)
        try:
            room, _ = await self.rooms.create(settings)
        except ServiceUnavailable as e:
            raise BbbError("maxConcurrent", e.message) from None
        created_ms = x.millis(room.created_at)
        meeting = BbbMeeting(
            meeting_id=mid, internal_id=p.internal_id(mid, created_ms), room_id=room.room_id, name=name,
            attendee_pw=p.password(req.first.get("attendeePW")), moderator_pw=p.password(req.first.get("moderatorPW")),
            create_time_ms=created_ms, duration_minutes=minutes, max_participants=max_users, guest_policy=policy,
            metadata=meta)
        stored, added = await self.meetings.add(meeting)
        if added:
            log.info("bbb meeting created", extra={"room_id": room.room_id})
        else:
            self._check_same_passwords(stored, req.first)
        return self._created(stored, room, duplicate=not added)

    @staticmethod
    def _check_same_passwords(meeting: BbbMeeting, params: Mapping[str, str]) -> None:
        """create again with other passwords is another meeting under a used id (BigBlueButton: idNotUnique)."""
        for key, stored in (("attendeePW", meeting.attendee_pw), ("moderatorPW", meeting.moderator_pw)):
            given = p.clean(params.get(key, ""))
            if given and given[:64] != stored:
                raise BbbError("idNotUnique", "A meeting already exists with that meeting ID.  Please use a "
                                              "different meeting ID.")

    def _created(self, m: BbbMeeting, room: Room, *, duplicate: bool) -> web.Response:
        fields: list[x.Field] = [
            ("meetingID", m.meeting_id), ("internalMeetingID", m.internal_id), ("parentMeetingID", "bbb-none"),
            ("attendeePW", m.attendee_pw), ("moderatorPW", m.moderator_pw), ("createTime", m.create_time_ms),
            ("voiceBridge", p.voice_bridge(m.internal_id)), ("dialNumber", ""),
            ("createDate", x.java_date(m.create_time_ms / 1000)), ("hasUserJoined", room.started_at is not None),
            ("duration", m.duration_minutes), ("hasBeenForciblyEnded", room.ended)]
        if duplicate:
            fields += [("messageKey", "duplicateWarning"), ("message", x.DUPLICATE)]
        return x.success(*fields)

    async def join(self, req: Request) -> web.Response:
        mid = p.meeting_id(req.first)
        name = p.full_name(req.first)
        meeting, room = await self._meeting(mid, missing=BbbError(
            "invalidMeetingIdentifier", "The meeting ID that you supplied did not match any existing meetings"))
        if room.ended:
            raise BbbError("meetingForciblyEnded", "You can not re-join a meeting that has already been "
                                                   "forcibly ended.")
        create_time = req.first.get("createTime", "").strip()
        if create_time and create_time != str(meeting.create_time_ms):
            raise BbbError("mismatchCreateTimeParam", "The createTime parameter submitted mismatches with the "
                                                      "current meeting.")
        role = p.join_role(req.first, attendee_pw=meeting.attendee_pw, moderator_pw=meeting.moderator_pw)
        guest = p.boolean(req.first, "guest")
        if guest and role is p.BbbRole.VIEWER and room.settings.guest_policy is GuestPolicy.ALWAYS_DENY:
            raise BbbError("guestDeniedAccess", "You have been denied access to this meeting based on the "
                                                "meeting's guest policy")
        identity = p.identity(req.first)
        token = self.tokens.mint_access(identity=identity, name=name, room_id=room.room_id, role=role.urok_role,
                                        registered=not guest, ttl_s=self.token_ttl_s, now=self.clock())
        url = f"{self.base_url}/join/{quote(room.room_id, safe='')}#token={token}"
        if p.boolean(req.first, "redirect", default=True):
            return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
        waits = guest and role is p.BbbRole.VIEWER and room.settings.guest_policy in (
            GuestPolicy.ASK_HOST, GuestPolicy.ALWAYS_ACCEPT_AUTH)
        return x.success(
            ("messageKey", "successfullyJoined"), ("message", x.JOINED), ("meeting_id", meeting.internal_id),
            ("user_id", identity), ("auth_token", ""), ("session_token", ""),
            ("guestStatus", "WAIT" if waits else "ALLOW"), ("url", url))

    async def end(self, req: Request) -> web.Response:
        mid = p.meeting_id(req.first)
        meeting, room = await self._meeting(mid, missing=self._not_found())
        if room.ended:
            raise self._not_found()
        given = req.first.get("password", "")
        if given and given != meeting.moderator_pw:  # BigBlueButton 3.0 no longer needs it; a wrong one is refused
            raise BbbError("invalidPassword", "You must supply the moderator password for this call.")
        ended = await self.rooms.end(room.room_id, reason=END_REASON)
        await self.meetings.mark_ended(meeting.internal_id, ended.ended_at or self.clock())
        return x.success(("messageKey", "sentEndMeetingRequest"), ("message", x.END_SENT))

    async def is_meeting_running(self, req: Request) -> web.Response:
        mid = p.meeting_id(req.first)
        meeting = await self.meetings.latest(mid)
        room = await self._room(meeting) if meeting is not None else None
        return x.success(("running", room is not None and not room.ended and room.num_joined > 0))

    async def get_meeting_info(self, req: Request) -> web.Response:
        mid = p.meeting_id(req.first)
        meeting, room = await self._meeting(mid, missing=self._not_found())
        return x.success(*meeting_fields(meeting, room))

    async def get_meetings(self, req: Request) -> web.Response:
        found: list[x.Field] = []
        for meeting in await self.meetings.open_meetings():
            room = await self._room(meeting)
            if room is not None and not room.ended:
                found.append(("meeting", meeting_fields(meeting, room)))
        if not found:
            return x.success(("meetings", []), ("messageKey", "noMeetings"), ("message", x.NO_MEETINGS))
        return x.success(("meetings", found))

    async def get_recordings(self, req: Request) -> web.Response:
        # urok keeps no BigBlueButton recordings yet: every query finds none, as BigBlueButton says it
        return x.success(("recordings", []), ("messageKey", "noRecordings"), ("message", x.NO_RECORDINGS))

    async def recording_change(self, req: Request) -> web.Response:
        """deleteRecordings, publishRecordings, updateRecordings: no recording has that id."""
        if not p.clean(req.first.get("recordID", "")):
            raise BbbError("missingParamRecordID", "You must specify a recordID.")
        raise BbbError("notFound", "We could not find recordings")


def attendee_fields(room: Room) -> tuple[list[x.Field], dict[str, int]]:
    """The joined participants as BigBlueButton's attendees (moderators first, then by name), and
    the counts getMeetingInfo gives.  Voice and video are what urok knows: a published, unmuted
    microphone or camera."""
    people: list[x.Field] = []
    counts = {"participantCount": 0, "moderatorCount": 0, "voiceParticipantCount": 0, "videoCount": 0}
    for who in sorted(room.joined(), key=lambda q: (not q.role.is_moderator, q.sort_key())):
        voice = who.muted.get("microphone") is False
        video = who.muted.get("camera") is False
        counts["participantCount"] += 1
        counts["moderatorCount"] += who.role.is_moderator
        counts["voiceParticipantCount"] += voice
        counts["videoCount"] += video
        people.append(("attendee", [
            ("userID", who.identity), ("fullName", who.name),
            ("role", "MODERATOR" if who.role.is_moderator else "VIEWER"), ("isPresenter", False),
            ("isListeningOnly", False), ("hasJoinedVoice", voice), ("hasVideo", video), ("clientType", "HTML5"),
            ("customdata", None)]))
    return people, counts


def meeting_fields(m: BbbMeeting, room: Room) -> list[x.Field]:
    """A meeting as getMeetingInfo (and each of getMeetings') gives it, in BigBlueButton's order."""
    attendees, counts = attendee_fields(room)
    return [
        ("meetingName", m.name), ("meetingID", m.meeting_id), ("internalMeetingID", m.internal_id),
        ("createTime", m.create_time_ms), ("createDate", x.java_date(m.create_time_ms / 1000)),
        ("voiceBridge", p.voice_bridge(m.internal_id)), ("dialNumber", ""), ("attendeePW", m.attendee_pw),
        ("moderatorPW", m.moderator_pw), ("running", not room.ended and room.num_joined > 0),
        ("duration", m.duration_minutes), ("hasUserJoined", room.started_at is not None), ("recording", False),
        ("hasBeenForciblyEnded", room.ended), ("startTime", x.millis(room.started_at)),
        ("endTime", x.millis(room.ended_at)), ("participantCount", counts["participantCount"]),
        ("listenerCount", 0), ("voiceParticipantCount", counts["voiceParticipantCount"]),
        ("videoCount", counts["videoCount"]), ("maxUsers", m.max_participants),
        ("moderatorCount", counts["moderatorCount"]), ("attendees", attendees),
        ("metadata", list(m.metadata.items())), ("isBreakout", False)]


CALLS: Mapping[str, Handler] = {
    "create": BbbApi.create,
    "join": BbbApi.join,
    "end": BbbApi.end,
    "isMeetingRunning": BbbApi.is_meeting_running,
    "getMeetingInfo": BbbApi.get_meeting_info,
    "getMeetings": BbbApi.get_meetings,
    "getRecordings": BbbApi.get_recordings,
    "deleteRecordings": BbbApi.recording_change,
    "publishRecordings": BbbApi.recording_change,
    "updateRecordings": BbbApi.recording_change,
}


async def version(request: web.Request) -> web.Response:
    """/bigbluebutton/api: the API's version, no checksum (what clients probe a server with)."""
    return x.success(("version", API_VERSION), ("apiVersion", API_VERSION), ("bbbVersion", ""))
