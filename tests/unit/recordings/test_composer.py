"""The composer on a recording directory made from the test clip (beeps and flashes at the same
instants, tests/clips.py): one 1280x720 H.264 + AAC MP4 as long as the lesson, the screen share's
layout while someone shares, the chat as a subtitle stream, and sound and picture in sync."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from recordings.composer import ComposeError, compose
from tests.clips import av_offsets, lesson, write_recording

pytestmark = pytest.mark.timeout(240)  # the first run encodes the clips (cached afterwards)
CHAT = "WEBVTT\n\nm1\n00:00:01.000 --> 00:00:03.000\n<v Ваня>у меня вопрос\n"


def test_a_lesson_with_a_screen_share_composes_into_one_synced_mp4(tmp_path: Path) -> None:
    directory = write_recording(tmp_path / "r1", lesson(8.0, screen=(3.0, 6.0), width=320, height=240,
                                                        screen_size=(640, 360)), duration=8.0, chat=CHAT)
    seen: list[float] = []
    result = compose(directory, directory / "lesson.mp4", progress=seen.append)
    assert (result.width, result.height, result.fps) == (1280, 720, 30)
    assert result.video_tracks == 3 and result.audio_tracks == 2
    assert result.layout_changes >= 2  # the share starts and ends
    assert result.subtitles == ["chat"]
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    with av.open(str(directory / "lesson.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        assert abs(float(c.duration or 0) / 1e6 - 8.0) < 0.2
    offsets = av_offsets(directory / "lesson.mp4")
    assert len(offsets) >= 3 and max(abs(o) for o in offsets) < 0.04, offsets


def test_a_recording_without_tracks_says_so_with_a_stable_code(tmp_path: Path) -> None:
    directory = write_recording(tmp_path / "r2", [], duration=5.0)
    with pytest.raises(ComposeError) as e:
        compose(directory, directory / "lesson.mp4")
    assert e.value.code == "nothing_to_compose"
    assert not (directory / "lesson.mp4").exists()


def test_without_a_speakers_file_the_speaker_follows_the_recorded_audio_levels(tmp_path: Path) -> None:
    # the teacher talks 0-4 s and 8-12 s, the student 4-8 s (tests/clips.py lesson); no speakers.jsonl
    directory = write_recording(tmp_path / "r3", lesson(12.0, width=320, height=240), duration=12.0)
    (directory / "speakers.jsonl").unlink(missing_ok=True)
    result = compose(directory, directory / "lesson.mp4", layout="speaker")
    assert 2 <= result.layout_changes <= 4, result  # teacher -> student -> teacher, no flicker on the beeps
