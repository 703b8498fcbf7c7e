"""RoomCaptions: a room's live captions (a RoomFeature, and a TrackObserver of its media plane).

While captions are on, each published microphone gets an AudioTap (16 kHz PCM, decoded on the
audio threads) feeding a SpeakerStream (voice activity, phrases) that hands voiced phrases to the
server's RecognizerPool.  Results go out as ``caption`` events
``{participant_id, name, text, final, start_s, end_s}`` (times in seconds on the lesson's timeline,
from the room's start) to everyone who has captions on (``captions_set``; on by default), and the
finals are kept in the transcript store.

Hosts and co-hosts start and stop them (``transcription_start`` / ``transcription_stop``); the room
setting ``transcription.enabled`` starts them when the room starts.  Everyone is told
(``transcription_started`` / ``transcription_stopped``); a late joiner gets ``transcription_started``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from media.audio_tap import AudioTap
from media.audio_workers import AudioWorkers
from signaling.media.media_feature import MediaFeature, Track, media_feature_of
from signaling.rooms import Participant
from transcription.errors import TranscriptionUnavailable
from transcription.recognizer_pool import Recognised
from transcription.service import TranscriptionService
from transcription.speaker_stream import SAMPLE_RATE, SpeakerStream
from transcription.transcript import CaptionLine

if TYPE_CHECKING:
    from signaling.ws.live_room import LiveRoom
    from signaling.ws.session import Session

log = logging.getLogger("urok.transcription")

CAPTIONS_KEY = "captions"  # live.extensions[CAPTIONS_KEY]: this room's RoomCaptions


class _Speaker:
    """One microphone being captioned: its tap, its phrases, its clock (tap time -> epoch)."""

    def __init__(self, owner: RoomCaptions, track: Track) -> None:
        self.owner = owner
        self.track = track
        self.participant_id = track.participant_id
        self.epoch0: float | None = None  # the wall-clock time of the tap's t = 0
        self.stream = SpeakerStream(track.producer.id, owner.pool_sink(), self._result, clock=owner.clock)
        self.tap = AudioTap(owner.media.router, track.producer, self._pcm, sample_rate=SAMPLE_RATE,
                            workers=owner.workers)
        self.tap.on_close = self.close

    def _pcm(self, samples: npt.NDArray[np.int16], t: float) -> None:
        if self.epoch0 is None:
            # the first audio: it was captured about now (minus its own length)
            self.epoch0 = self.owner.clock() - t - samples.size / SAMPLE_RATE
        self.stream.push(samples, t)

    def _result(self, rec: Recognised) -> None:
        self.owner.recognised(self, rec)

    def close(self) -> None:
        self.stream.close()  # a phrase in progress still gets its final
        if not self.tap.closed:
            self.tap.on_close = None
            self.tap.close()


class RoomCaptions:
    def __init__(self, live: LiveRoom, service: TranscriptionService, workers: AudioWorkers | None) -> None:
        self.live = live
        self.service = service
        self.workers = workers
        self.clock = live.clock
        self.active = False
        self.language = live.room.settings.transcription.language
        self.started_at: float | None = None
        self.started_by: str | None = None
        self.opted_out: set[str] = set()  # participants who switched captions off (captions_set)
        self.speakers: dict[str, _Speaker] = {}  # track id -> speaker
        self.lines = 0
        self._media: MediaFeature | None = None
        self._auto_tried = False
        self._writes: set[asyncio.Task[None]] = set()
        self._switch = asyncio.Lock()
        live.extensions[CAPTIONS_KEY] = self

    @property
    def media(self) -> MediaFeature:
        assert self._media is not None
        return self._media

    def pool_sink(self) -> Any:
        pool = self.service.pool
        assert pool is not None
        return pool

    # --- control --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"enabled": self.active, "language": self.language, "started_at": self.started_at,
                "started_by": self.started_by}

    async def start(self, by: Participant | None, language: str | None = None) -> dict[str, Any]:
        """Captions on (idempotent).  TranscriptionUnavailable without a model or a media plane."""
        async with self._switch:
            if self.active:
                return self.state()
            media = media_feature_of(self.live)
            if media is None:
                raise TranscriptionUnavailable("this room has no media plane")
            await self.service.ready_pool()
            if self.live.closed:
                raise TranscriptionUnavailable("the room has ended")
            self._media = media
            self.active = True
            self.language = language or self.live.room.settings.transcription.language
            self.started_at = self.clock()
            self.started_by = by.participant_id if by is not None else None
            media.observe(self)  # the microphones published now, and those to come
            self.live.broadcast({"event": "transcription_started", **self.state()})
            return self.state()

    async def stop(self, by: Participant | None) -> dict[str, Any]:
        async with self._switch:
            if not self.active:
                return self.state()
            self._halt()
            self.live.broadcast({"event": "transcription_stopped",
                                 "stopped_by": by.participant_id if by is not None else None})
            return self.state()

    def _halt(self) -> None:
        self.active = False
        if self._media is not None:
            self._media.unobserve(self)
        for speaker in list(self.speakers.values()):
            speaker.close()
        self.speakers.clear()
        self.started_at = self.started_by = None

    def set_receiving(self, participant_id: str, enabled: bool) -> dict[str, Any]:
        if enabled:
            self.opted_out.discard(participant_id)
        else:
            self.opted_out.add(participant_id)
        return {"captions": enabled, **self.state()}

    # --- TrackObserver ----------------------------------------------------------------------------
    def on_track_added(self, track: Track) -> None:
        p = track.producer
        if not self.active or p.kind != "audio" or p.source != "microphone" or p.id in self.speakers:
            return
        try:
            self.speakers[p.id] = _Speaker(self, track)
        except Exception:  # a closed producer, a codec a tap cannot decode: that one goes uncaptioned
            log.exception("captions: no tap for track %s", p.id)

    def on_track_removed(self, track: Track) -> None:
        speaker = self.speakers.pop(track.producer.id, None)
        if speaker is not None:
            speaker.close()

    # --- results ----------------------------------------------------------------------------------
    def origin(self) -> float:
        room = self.live.room
        return room.started_at if room.started_at is not None else room.created_at

    def recognised(self, speaker: _Speaker, rec: Recognised) -> None:
        if not rec.text or (self.live.closed and not rec.final):
            return  # a final that comes after the room ended (its last phrase) is still kept
        epoch0 = speaker.epoch0 if speaker.epoch0 is not None else self.clock()
        start, end = epoch0 + rec.start, epoch0 + max(rec.start, rec.end)
        p = self.live.room.participants.get(speaker.participant_id)
        name = p.name if p is not None else ""
        origin = self.origin()
        event = {"event": "caption", "participant_id": speaker.participant_id, "name": name, "text": rec.text,
                 "final": rec.final, "start_s": round(start - origin, 3), "end_s": round(end - origin, 3)}
        if not self.live.closed:
            self.live.broadcast(event, to=[pid for pid in self.live.sessions if pid not in self.opted_out])
        if rec.final:
            self.lines += 1
            line = CaptionLine(self.live.room_id, speaker.participant_id, name, start, end, rec.text)
            task = asyncio.get_running_loop().create_task(self._keep(line))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _keep(self, line: CaptionLine) -> None:
        try:
            await self.service.store.add(line)
        except Exception:  # the store is down: the caption was shown, the transcript misses it
            log.exception("captions: a transcript line of room %s was not stored", line.room_id)

    # --- RoomFeature ------------------------------------------------------------------------------
    async def on_joined(self, session: Session) -> None:
        if self.active:
            session.send_event("transcription_started", **self.state())
            return
        if self.live.room.settings.transcription.enabled and not self._auto_tried:
            self._auto_tried = True  # once per served room: a host who stops them keeps them stopped
            task = asyncio.get_running_loop().create_task(self._auto_start())  # the model may take seconds
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _auto_start(self) -> None:
        try:
            await self.start(None)
        except TranscriptionUnavailable as e:
            self.live.to_moderators({"event": "transcription_failed", "reason": e.code, "message": e.message})

    async def on_left(self, session: Session) -> None:
        return None  # the microphone's track goes (on_track_removed); the opt-out is kept for a rejoin

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        return None  # a paused producer sends nothing: the phrase ends on the gap

    async def close(self) -> None:
        if self.active:
            self._halt()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


def room_captions_of(live: LiveRoom) -> RoomCaptions | None:
    feature = live.extensions.get(CAPTIONS_KEY)
    return feature if isinstance(feature, RoomCaptions) else None
