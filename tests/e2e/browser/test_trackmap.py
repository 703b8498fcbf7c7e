"""web/trackmap.js (which participant and source a received m-line is), run in Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.conftest import Browsers

pytestmark = [pytest.mark.browser, pytest.mark.timeout(30)]

RUN = """async (cases) => {
  const { TrackMap } = await import('/web/trackmap.js');
  const section = ([kind, mid, dir, msid]) =>
      [`m=${kind} 9 UDP/TLS/RTP/SAVPF 96`, `a=mid:${mid}`, `a=${dir}`, ...(msid ? [`a=msid:${msid}`] : [])];
  const sdp = (lines) => ['v=0', ...lines.flatMap(section)].join('\\r\\n');
  const people = new Set(['PA_a', 'PA_b']);
  const out = {};
  for (const [name, c] of Object.entries(cases)) {
    const m = new TrackMap();
    for (const p of c.published) m.publish(p);
    m.setOffer(sdp(c.mlines));
    const got = [...m.assign((id) => people.has(id))];
    out[name] = Object.fromEntries(got.map(([mid, p]) => [mid, `${p.participant_id}/${p.source}`]));
  }
  return out;
}"""

P = [
    {"participant_id": "PA_a", "track_id": "ta1", "kind": "audio", "source": "microphone"},
    {"participant_id": "PA_a", "track_id": "tv1", "kind": "video", "source": "camera"},
    {"participant_id": "PA_b", "track_id": "tv2", "kind": "video", "source": "camera"},
    {"participant_id": "PA_b", "track_id": "tv3", "kind": "video", "source": "screen"},
]


async def test_trackmap_rules(server: Any, browsers: Browsers) -> None:
    page = await browsers.page(server.base + "/")
    cases = {
        # 1. a=msid:<participant_id> <track_id> (what the server writes): exact, any order
        "exact": {"published": P, "mlines": [
            ["video", "0", "sendonly", "PA_b tv3"], ["audio", "1", "sendonly", "PA_a ta1"],
            ["video", "2", "sendonly", "PA_b tv2"], ["video", "3", "inactive", "PA_a tv1"]]},
        # 2. stream id = participant id, unknown track ids: by kind in publication order
        "by_participant": {"published": P, "mlines": [
            ["video", "0", "sendonly", "PA_b x"], ["video", "1", "sendonly", "PA_a y"]]},
        # 3. no labels: m-line order, kind by kind
        "by_order": {"published": P, "mlines": [
            ["audio", "0", "sendonly", None], ["video", "1", "sendonly", None], ["video", "2", "sendonly", None]]},
        # a labelled m-line whose track_published has not come yet is left alone
        "not_yet": {"published": P[:2], "mlines": [["video", "0", "sendonly", "PA_b tv2"]]},
        "not_yet_among_known": {"published": P[:2], "mlines": [
            ["video", "0", "sendonly", "PA_a tv1"], ["video", "1", "sendonly", "PA_b tv2"]]},
    }
    got = await page.evaluate(RUN, cases)
    assert got["exact"] == {"0": "PA_b/screen", "1": "PA_a/microphone", "2": "PA_b/camera"}
    assert got["by_participant"] == {"0": "PA_b/camera", "1": "PA_a/camera"}
    assert got["by_order"] == {"0": "PA_a/microphone", "1": "PA_a/camera", "2": "PA_b/camera"}
    assert got["not_yet"] == {}
    assert got["not_yet_among_known"] == {"0": "PA_a/camera"}
