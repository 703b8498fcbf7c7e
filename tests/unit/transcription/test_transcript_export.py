"""Transcript exports: WebVTT, SRT, plain text, JSON (timing, speaker, escaping)."""

from __future__ import annotations

import json

from transcription.transcript import CaptionLine, ExportFormat, export

ORIGIN = 1_000.0
LINES = [CaptionLine("R", "P1", "Анна <учитель>", 1_001.25, 1_003.5, "안녕하세요 --> 여러분"),
         CaptionLine("R", "P2", "", 4_662.0, 4_664.004, "a & b\n\nc")]


def test_webvtt_has_the_header_cues_and_speaker_voices_escaped() -> None:
    vtt = export(LINES, ORIGIN, ExportFormat.VTT)
    assert vtt.startswith("WEBVTT\n\n1\n00:00:01.250 --> 00:00:03.500\n")
    assert "<v Анна &lt;учитель&gt;>안녕하세요 -&gt; 여러분" in vtt
    assert "01:01:02.000 --> 01:01:04.004" in vtt
    assert "<v P2>a &amp; b c" in vtt  # no name: the id; a blank line would end the cue
    assert vtt.count("-->") == 2


def test_srt_numbers_cues_with_commas_and_names_the_speaker() -> None:
    srt = export(LINES, ORIGIN, ExportFormat.SRT)
    assert srt.splitlines()[:3] == ["1", "00:00:01,250 --> 00:00:03,500", "Анна <учитель>: 안녕하세요 -> 여러분"]


def test_text_is_one_line_per_caption_with_minutes_and_seconds() -> None:
    assert export(LINES, ORIGIN, ExportFormat.TEXT) == ("[00:01] Анна <учитель>: 안녕하세요 -> 여러분\n"
                                                       "[61:02] P2: a & b c\n")
    assert export([], ORIGIN, ExportFormat.TEXT) == ""


def test_json_keeps_speaker_times_and_the_exact_text() -> None:
    data = json.loads(export(LINES, ORIGIN, ExportFormat.JSON))
    assert data["origin"] == ORIGIN
    first = data["lines"][0]
    assert first == {"participant_id": "P1", "name": "Анна <учитель>", "start": 1.25, "end": 3.5,
                     "start_at": 1_001.25, "end_at": 1_003.5, "text": "안녕하세요 --> 여러분"}
    assert data["lines"][1]["text"] == "a & b\n\nc"


def test_a_line_before_the_origin_starts_at_zero_and_still_ends_after_it_starts() -> None:
    vtt = export([CaptionLine("R", "P", "N", 990.0, 990.5, "x")], ORIGIN, ExportFormat.VTT)
    assert "00:00:00.000 --> 00:00:00.001" in vtt
