"""NoiseFeature: a room's noise suppression (a RoomFeature and a TrackObserver of its media).

For each participant's microphone track whose noise suppression is on (media/noise_policy.py: the
room's setting, the host's choice, the participant's own switch), a
:class:`~media.noise_suppressor.NoiseSuppressor` makes a cleaned copy, and the track's subscribers
are switched to it (``MediaFeature.set_substitute``) once it has sent its first packet: no
renegotiation, no gap.  Off: subscribers go back to the raw track first, then the suppressor stops.
Only microphones whose suppression is on are decoded.

Events: ``noise_suppression`` (one participant's state: participant_id, enabled, forced) and
``noise_suppression_state`` (everything: room, participants[]) to a joining session and after the
room's setting changed.  Voice activity after suppression: :meth:`NoiseFeature.voice_active` and
listeners (:meth:`NoiseFeature.add_voice_listener`) for captions and speaker detection.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from signaling.media.media_feature import MediaFeature, Track, media_feature_of
from signaling.rooms import Action

from .audio_processes import AudioProcesses
from .audio_workers import AudioWorkers
from .noise_policy import NoisePolicy
from .noise_suppressor import NoiseSuppressor

if TYPE_CHECKING:
    from signaling.rooms import Participant
    from signaling.ws.live_room import LiveRoom
    from signaling.ws.session import Session

__all__ = ["NoiseFeature", "VoiceListener", "noise_feature_of"]

log = logging.getLogger("urok.media")

VoiceListener = Callable[[str, bool], None]  # (participant_id, active)


def noise_feature_of(live: LiveRoom) -> NoiseFeature | None:
    for feature in live.features:
        if isinstance(feature, NoiseFeature):
            return feature
    return None


class NoiseFeature:
    def __init__(self, live: LiveRoom, workers: AudioWorkers | AudioProcesses) -> None:
        self.live = live
        self.workers = workers
        self.policy = NoisePolicy(live.room.settings.noise_suppression)
        self._media: MediaFeature | None = None
        self._mics: dict[str, Track] = {}  # participant id -> its microphone track
        self.running: dict[str, NoiseSuppressor] = {}  # track id -> its suppressor
        self._voice_listeners: list[VoiceListener] = []
        self._closed = False

    # ---- lookups --------------------------------------------------------------------------------
    def media(self) -> MediaFeature | None:
        """The room's media plane, observed from the first use on (live.features is complete then)."""
        if self._media is None and not self._closed:
            media = media_feature_of(self.live)
            if media is not None:
                self._media = media
                media.observe(self)
        return self._media

    def voice_active(self, participant_id: str) -> bool | None:
        """Whether the participant speaks now (after suppression); None if not suppressed."""
        track = self._mics.get(participant_id)
        sup = self.running.get(track.producer.id) if track is not None else None
        return sup.voice_active if sup is not None else None

    def add_voice_listener(self, listener: VoiceListener) -> None:
        self._voice_listeners.append(listener)

    def remove_voice_listener(self, listener: VoiceListener) -> None:
        with contextlib.suppress(ValueError):
            self._voice_listeners.remove(listener)

    def state_json(self) -> dict[str, Any]:
        pids = sorted(set(self._mics) | set(self.policy.decided()))
        return {"room": self.policy.room_on, "participants": [self.policy.to_json(pid) for pid in pids]}

    # ---- the switches (called by media/audio_handlers.py) ---------------------------------------
    def set_own(self, participant: Participant, enabled: bool) -> dict[str, object]:
        pid = participant.participant_id
        before = self.policy.enabled(pid)
        self.policy.set_own(pid, enabled)
        self._changed(pid, before)
        return self.policy.to_json(pid)

    def set_for(self, actor: Participant, participant_id: str, enabled: bool) -> dict[str, object]:
        self.live.room.require(actor, Action.MUTE_OTHERS)
        target = self.live.room.get_joined(participant_id)
        before = self.policy.enabled(target.participant_id)
        self.policy.set_by_host(target.participant_id, enabled)
        self._changed(target.participant_id, before, forced_now=True)
        return self.policy.to_json(target.participant_id)

    async def set_room(self, actor: Participant, enabled: bool) -> dict[str, Any]:
        room = self.live.room
        room.require(actor, Action.MUTE_OTHERS)
        room.settings = msgspec.structs.replace(room.settings, noise_suppression=enabled)
        self.policy.set_room(enabled)
        for pid in list(self._mics):
            self._apply(pid)
        state = self.state_json()
        self.live.broadcast({"event": "noise_suppression_state", **state, "by": actor.participant_id})
        await self.live.store.save_room(room)  # the room's settings outlive a restart
        return state

    def _changed(self, pid: str, before: bool, *, forced_now: bool = False) -> None:
        self._apply(pid)
        if forced_now or self.policy.enabled(pid) != before:
            self.live.broadcast({"event": "noise_suppression", **self.policy.to_json(pid)})

    # ---- RoomFeature ----------------------------------------------------------------------------
    async def on_joined(self, session: Session) -> None:
        self.media()
        session.send_event("noise_suppression_state", **self.state_json())

    async def on_left(self, session: Session) -> None:
        """Nothing: the microphone track's end stops its suppressor; the choices stay for a reconnect."""

    async def on_mute_changed(self, participant: Participant, source: str, muted: bool) -> None:
        """Nothing: a muted track sends nothing, so its suppressor has nothing to do."""

    async def close(self) -> None:
        self._closed = True
        for sup in list(self.running.values()):
            sup.on_close = None
            sup.close()
        self.running.clear()
        if self._media is not None:
            self._media.unobserve(self)

    # ---- TrackObserver --------------------------------------------------------------------------
    def on_track_added(self, track: Track) -> None:
        if track.producer.source != "microphone" or track.producer.kind != "audio":
            return
        self._mics[track.participant_id] = track
        self._apply(track.participant_id)

    def on_track_removed(self, track: Track) -> None:
        if self._mics.get(track.participant_id) is track:
            del self._mics[track.participant_id]
        sup = self.running.pop(track.producer.id, None)
        if sup is not None:
            sup.on_close = None
            sup.close()  # the media plane dropped the substitute and its consumers already

    # ---- internals ------------------------------------------------------------------------------
    def _apply(self, pid: str) -> None:
        track = self._mics.get(pid)
        media = self.media()
        if track is None or media is None or self._closed or track.producer.closed:
            return
        tid = track.producer.id
        want = self.policy.enabled(pid)
        sup = self.running.get(tid)
        if want and sup is None:
            self._start(media, track)
        elif not want and sup is not None:
            self._stop(media, tid, sup)

    def _start(self, media: MediaFeature, track: Track) -> None:
        tid, pid = track.producer.id, track.participant_id
        sup = NoiseSuppressor(media.router, track.producer, self.workers,
                              on_voice=lambda active: self._voice(pid, active))
        self.running[tid] = sup

        def first_packet() -> None:
            # the cleaned copy flows: switch the subscribers now (nothing missing at the switch)
            if self.running.get(tid) is sup and tid in media.tracks and not sup.output.closed:
                media.set_substitute(tid, sup.output)

        def closed() -> None:  # the suppressor stopped by itself (its router or producer closed)
            if self.running.get(tid) is sup:
                del self.running[tid]
                self._unsubstitute(media, tid, sup)

        sup.on_first_packet = first_packet
        sup.on_close = closed
        log.info("noise suppression on for %s", tid, extra={"participant_id": pid})

    def _stop(self, media: MediaFeature, tid: str, sup: NoiseSuppressor) -> None:
        del self.running[tid]
        self._unsubstitute(media, tid, sup)  # subscribers back on the raw track first: no gap
        sup.on_close = None
        sup.close()
        log.info("noise suppression off for %s", tid)

    @staticmethod
    def _unsubstitute(media: MediaFeature, tid: str, sup: NoiseSuppressor) -> None:
        track = media.tracks.get(tid)
        if media.substitutes.get(tid) is sup.output and track is not None and not track.producer.closed:
            media.set_substitute(tid, None)

    def _voice(self, pid: str, active: bool) -> None:
        for listener in list(self._voice_listeners):
            try:
                listener(pid, active)
            except Exception:
                log.exception("voice listener failed")
