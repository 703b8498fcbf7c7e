"""The fuzzing run in small: the parsers, then a real server with an aiortc publisher and subscriber
under generated datagrams and requests. It proves that `python -m benchmarks.fuzz` keeps working
end to end (counts add up, nothing crashes, the report is whole); the real figures come from the
full run (docs/benchmarks.md)."""

from __future__ import annotations

from benchmarks.fuzz import FuzzConfig, report, run


async def test_a_small_fuzz_run_counts_everything_and_finds_no_crash() -> None:
    cfg = FuzzConfig(packets=3000, messages=400, sdp=40, udp_rate=5000.0, sockets=4, seed=3)
    r = await run(cfg)
    text = report(cfg, r)
    print(text)
    assert r.packets == 3000 and sum(r.parser_counts["sdp"].values()) == 40
    assert set(r.parser_counts) == {"rtp", "rtcp", "stun", "dtls", "random", "sdp"}
    assert r.parser_crashes == [] and r.server_crashes == [], text
    udp = sum(v for k, v in r.udp_sent.items() if not k.endswith(("_left_out", "not_sendable", "signed_check")))
    assert udp + r.udp_sent["empty_left_out"] + r.udp_sent["long_left_out"] + r.udp_sent["not_sendable"] == 3000
    assert sum(r.ws_sent.values()) == 400 + 2  # and one barrier ping per fuzzing participant
    assert r.ws_mismatch == {}, r.ws_mismatch  # what was sent was handled, type by type
    assert [s.at for s in r.samples] == ["start", "middle", "end"]
    assert r.samples[-1].video_frames > r.samples[0].video_frames  # forwarding went on
    assert r.media_connections_kept  # the publisher's and the subscriber's peer connections are up
    assert r.growth == []
    assert text.splitlines()[-1].startswith("SUMMARY packets=3000 ") and "crashes=0" in text
