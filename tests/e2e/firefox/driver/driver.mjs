// One headless Firefox (Debian's firefox-esr, never a downloaded one) driven over WebDriver BiDi by
// puppeteer-core, for tests/e2e/firefox/firefox.py. Protocol: one JSON object per line.
//   stdin : {"id": n, "op": "newPage" | "goto" | "evaluate" | "click" | "waitForSelector" |
//            "waitForFunction" | "preload" | "close", "page": k, ...}
//   stdout: {"id": n, "ok": true, "value": ...} or {"id": n, "ok": false, "error": "..."}
//           {"event": "console", "page": k, "text": "..."} for the page's console and errors
// Environment: UROK_FIREFOX (the binary), UROK_FIREFOX_PROFILE (a fresh profile folder).
import readline from "node:readline";
import puppeteer from "puppeteer-core";

const PREFS = {
  "media.navigator.streams.fake": true, // a fake camera (moving frames) and microphone (a tone)
  "media.navigator.permission.disabled": true, // no permission prompts
  // host candidates stay Firefox's default, mDNS "<uuid>.local" names (what students' browsers
  // send): the shared port (ICE-lite) needs no remote candidate, it learns the address from the
  // browser's own checks (peer-reflexive, RFC 8445 section 7.3.1.3) and verifies it (sfu/udp_mux.py)
  "media.autoplay.default": 0, // remote audio/video play without a click
  "media.autoplay.blocking_policy": 0,
  "network.proxy.type": 0,
  "browser.shell.checkDefaultBrowser": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.enabled": false,
  "app.update.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "extensions.getAddons.cache.enabled": false,
};

const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const FUNCTION = /^\s*(async\s+)?(function\b|\([^)]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)/;

// Playwright's rule, which the Python side follows: a string that is a function is called with
// the argument, any other string is evaluated as an expression
function script(expr, arg) {
  return FUNCTION.test(expr) ? `(${expr})(${JSON.stringify(arg ?? null)})` : `(${expr})`;
}

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.UROK_FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
  userDataDir: process.env.UROK_FIREFOX_PROFILE || undefined,
  extraPrefsFirefox: PREFS,
  protocolTimeout: 60_000,
});
const pages = [];

async function handle(msg) {
  const page = pages[msg.page];
  switch (msg.op) {
    case "newPage": {
      const p = await browser.newPage();
      const k = pages.push(p) - 1;
      if (msg.width) await p.setViewport({ width: msg.width, height: msg.height });
      p.on("console", (m) => send({ event: "console", page: k, text: `${m.type()}: ${m.text()}` }));
      p.on("pageerror", (e) => send({ event: "pageerror", page: k, text: String(e) }));
      return k;
    }
    case "preload":
      await page.evaluateOnNewDocument(msg.script);
      return null;
    case "goto":
      await page.goto(msg.url, { timeout: msg.timeout ?? 30_000 });
      return null;
    case "evaluate":
      return await page.evaluate(script(msg.expr, msg.arg));
    case "click":
      await page.click(msg.selector);
      return null;
    case "waitForSelector": {
      const opts = { timeout: msg.timeout ?? 15_000 };
      if (msg.state === "hidden" || msg.state === "detached") opts.hidden = true;
      if (msg.state === "visible") opts.visible = true;
      await page.waitForSelector(msg.selector, opts);
      return null;
    }
    case "waitForFunction":
      await page.waitForFunction(script(msg.expr, msg.arg), { timeout: msg.timeout ?? 15_000, polling: 100 });
      return null;
    case "close":
      await quit();
      process.exit(0);
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

// A clean Firefox shutdown takes ~5 s (it writes the session and the profile, which the test
// throws away): a second of it, then the process is killed (its content processes follow their
// parent). Measured: 3.5-5.3 s per test in teardown before.
async function quit() {
  const child = browser.process();
  await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

send({ event: "ready", version: await browser.version() });
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const msg = JSON.parse(line);
  handle(msg).then(
    (value) => send({ id: msg.id, ok: true, value: value ?? null }),
    (e) => send({ id: msg.id, ok: false, error: String(e && e.stack ? e.stack : e) }),
  );
});
rl.on("close", () => quit().finally(() => process.exit(0)));
