"""Capture Firefox's offers and answer into tests/data/firefox_*.sdp (for tests/sfu/test_firefox_sdp.py).

Run: .venv/bin/python -m tests.e2e.firefox.capture_sdp
Debian's firefox-esr (through tests/e2e/firefox/driver) opens the server's page on 127.0.0.1 (a
local origin: getUserMedia works) and adds tracks the way web/session.js does (addTransceiver,
sendonly, one stream; the camera with sendEncodings q/h/f for simulcast). Nothing connects: the
offers are only created, the answer answers an offer the core made offline (tests/sfu/offline.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import start_server, test_settings
from tests.e2e.firefox.firefox import Firefox
from tests.sfu.offline import DATA, offline_worker

OFFERS_JS = """async () => {
  const media = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  const canvas = document.createElement('canvas');
  canvas.width = 1280; canvas.height = 720;
  canvas.getContext('2d').fillRect(0, 0, 10, 10);
  const screen = canvas.captureStream(15).getVideoTracks()[0];  // headless Firefox has no screen
  const offer = async (simulcast, share) => {
    const pc = new RTCPeerConnection({bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require'});
    const stream = new MediaStream();
    pc.addTransceiver(media.getAudioTracks()[0], {direction: 'sendonly', streams: [stream]});
    const camera = {direction: 'sendonly', streams: [stream]};
    if (simulcast) camera.sendEncodings = [{rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000},
      {rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000}, {rid: 'f', maxBitrate: 1500000}];
    pc.addTransceiver(media.getVideoTracks()[0], camera);
    if (share) pc.addTransceiver(screen, {direction: 'sendonly', streams: [stream]});
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => setTimeout(r, 1500));  // the candidates gathered
    const sdp = pc.localDescription.sdp;
    pc.close();
    return sdp;
  };
  return {offer: await offer(false, false), simulcast: await offer(true, false), screen: await offer(false, true)};
}"""

ANSWER_JS = """async (offer) => {
  const pc = new RTCPeerConnection({bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require'});
  await pc.setRemoteDescription({type: 'offer', sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((r) => setTimeout(r, 1500));
  const sdp = pc.localDescription.sdp;
  pc.close();
  return sdp;
}"""


async def server_offer(simulcast_offer: str) -> str:
    """The core's subscriber offer of a microphone and a simulcast camera published by Firefox."""
    worker = offline_worker()
    try:
        router = worker.create_router("capture")
        pub = router.create_transport("pub")
        await pub.accept_offer(simulcast_offer)
        sub = router.create_transport("sub")
        for section in pub.offered_media():
            sub.consume(pub.produce(section.mid, "camera" if section.kind == "video" else "microphone"))
        return await sub.create_offer()
    finally:
        await worker.close()


async def main() -> None:
    runner, base = await start_server(test_settings())
    ff = await Firefox.launch()
    try:
        page: Any = await ff.page()
        await page.goto(base + "/")
        offers = await page.evaluate(OFFERS_JS)
        answer = await page.evaluate(ANSWER_JS, await server_offer(offers["simulcast"]))
        files = {"firefox_offer.sdp": offers["offer"], "firefox_simulcast_offer.sdp": offers["simulcast"],
                 "firefox_screen_offer.sdp": offers["screen"], "firefox_answer.sdp": answer}
        for name, sdp in files.items():
            (DATA / name).write_text(sdp, newline="")
            print(f"{name}: {sdp.count(chr(10))} lines ({ff.version})")
    finally:
        await ff.close()
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
