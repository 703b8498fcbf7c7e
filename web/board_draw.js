// The whiteboard's drawing and geometry (web/board.js's), the same as the server's renderer
// (whiteboard/board_render.py): an element's points with its transform, its box, hit tests, and
// drawing it on a canvas; base64 for the socket.

export const STICKY_W = 220;
export const STICKY_H = 160;
const HIGHLIGHT_ALPHA = 0.35;

export function b64(u8) {
  let s = "";
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

export function unb64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// --- geometry (the same as whiteboard/board_render.py) ------------------------------------------
export function num(v, d) { return typeof v === "number" && Number.isFinite(v) ? v : d; }

export function transformOf(el) {
  const tr = el.t;
  return Array.isArray(tr) && tr.length === 4 ? tr.map((v, i) => num(v, i < 2 ? 1 : 0)) : [1, 1, 0, 0];
}

function pointsOf(el) {
  const raw = el.pts || [];
  const [sx, sy, tx, ty] = transformOf(el);
  const out = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([num(raw[i], 0) * sx + tx, num(raw[i + 1], 0) * sy + ty]);
  return out;
}

function scaleOf(el) { const [sx, sy] = transformOf(el); return (Math.abs(sx) + Math.abs(sy)) / 2; }
function textSize(el) { return Math.min(300, Math.max(6, num(el.size, 28))) * scaleOf(el); }

export function bbox(el) {
  const pts = pointsOf(el);
  if (!pts.length) return null;
  if (el.type === "text" || el.type === "sticky") {
    const [x, y] = pts[0];
    const s = scaleOf(el);
    if (el.type === "sticky") return [x, y, x + STICKY_W * s, y + STICKY_H * s];
    const lines = String(el.text || "").split("\n");
    const size = textSize(el);
    return [x, y, x + Math.max(1, ...lines.map((l) => l.length)) * size * 0.6, y + lines.length * size * 1.2];
  }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function segDist(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len = dx * dx + dy * dy;
  const k = len ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len)) : 0;
  return Math.hypot(p[0] - a[0] - k * dx, p[1] - a[1] - k * dy);
}

/** Whether the point is on the element (tol in page units): strokes by their segments, the rest by box. */
export function hits(el, p, tol) {
  const pts = pointsOf(el);
  if (!pts.length) return false;
  const w = num(el.width, 3) * scaleOf(el) / 2 + tol;
  if (el.type === "pen" || el.type === "highlighter" || el.type === "line" || el.type === "arrow") {
    if (pts.length === 1) return Math.hypot(p[0] - pts[0][0], p[1] - pts[0][1]) <= w;
    for (let i = 1; i < pts.length; i++) if (segDist(p, pts[i - 1], pts[i]) <= w) return true;
    return false;
  }
  const b = bbox(el);
  return b && p[0] >= b[0] - tol && p[0] <= b[2] + tol && p[1] >= b[1] - tol && p[1] <= b[3] + tol;
}

export function drawElement(g, el) {
  const pts = pointsOf(el);
  if (!pts.length) return;
  const color = /^#[0-9a-fA-F]{6}$/.test(el.color || "") ? el.color : "#000000";
  const w = Math.min(200, Math.max(0.5, num(el.width, 3))) * scaleOf(el);
  g.save();
  g.strokeStyle = color;
  g.fillStyle = color;
  g.lineWidth = w;
  g.lineCap = "round";
  g.lineJoin = "round";
  const type = el.type;
  if (type === "pen" || type === "highlighter") {
    if (type === "highlighter") g.globalAlpha = HIGHLIGHT_ALPHA;
    g.beginPath();
    g.moveTo(pts[0][0], pts[0][1]);
    if (pts.length === 1) g.lineTo(pts[0][0] + 0.1, pts[0][1]);
    // quadratic curves through the midpoints: the smoothed line the server renders too
    for (let i = 1; i < pts.length - 1; i++) {
      g.quadraticCurveTo(pts[i][0], pts[i][1], (pts[i][0] + pts[i + 1][0]) / 2, (pts[i][1] + pts[i + 1][1]) / 2);
    }
    if (pts.length > 1) g.lineTo(pts[pts.length - 1][0], pts[pts.length - 1][1]);
    g.stroke();
  } else if ((type === "line" || type === "arrow") && pts.length >= 2) {
    const [a, b] = pts;
    g.beginPath(); g.moveTo(a[0], a[1]); g.lineTo(b[0], b[1]); g.stroke();
    if (type === "arrow") {
      const ang = Math.atan2(b[1] - a[1], b[0] - a[0]);
      const size = Math.max(12, w * 4);
      g.beginPath();
      g.moveTo(b[0], b[1]);
      g.lineTo(b[0] - size * Math.cos(ang - 0.45), b[1] - size * Math.sin(ang - 0.45));
      g.lineTo(b[0] - size * Math.cos(ang + 0.45), b[1] - size * Math.sin(ang + 0.45));
      g.closePath(); g.fill();
    }
  } else if ((type === "rect" || type === "ellipse") && pts.length >= 2) {
    const x0 = Math.min(pts[0][0], pts[1][0]); const x1 = Math.max(pts[0][0], pts[1][0]);
    const y0 = Math.min(pts[0][1], pts[1][1]); const y1 = Math.max(pts[0][1], pts[1][1]);
    g.beginPath();
    if (type === "rect") g.rect(x0, y0, x1 - x0, y1 - y0);
    else g.ellipse((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2, 0, 0, Math.PI * 2);
    g.stroke();
  } else if (type === "text" || type === "sticky") {
    let [x, y] = pts[0];
    const s = scaleOf(el);
    if (type === "sticky") {
      g.fillStyle = "#fff1a8"; g.strokeStyle = "#d8c25a"; g.lineWidth = 1;
      g.fillRect(x, y, STICKY_W * s, STICKY_H * s); g.strokeRect(x, y, STICKY_W * s, STICKY_H * s);
      g.fillStyle = color;
      x += 10 * s; y += 8 * s;
    }
    const size = textSize(el);
    g.font = `${size}px sans-serif`;
    g.textBaseline = "top";
    String(el.text || "").slice(0, 5000).split("\n").forEach((line, i) => g.fillText(line, x, y + i * size * 1.2));
  }
  g.restore();
}

/** A Y.Map element as a plain object (pts read from its Y.Array). */
export function plain(Y, m, id) {
  const o = { id };
  for (const [k, v] of m.entries()) o[k] = v instanceof Y.Array ? v.toArray() : v;
  return o;
}
