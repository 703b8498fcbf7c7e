// Tiny DOM helpers. Text is always set with textContent / text nodes, never as HTML, so names and
// every string that comes from the server are shown as text.

const SVG_NS = "http://www.w3.org/2000/svg";

/** h("div", {class: "x", onclick: fn, dataset: {a: 1}}, "text", childNode, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Icons: simple paths on a 24x24 grid (drawn for this project).
const ICONS = {
  mic: ["M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z", "M6 11a6 6 0 0 0 12 0M12 17v4M8 21h8"],
  cam: ["M3 7h12v10H3z", "M15 10l6-3v10l-6-3z"],
  screen: ["M3 4h18v12H3z", "M8 20h8M12 16v4"],
  leave: ["M10 4H5v16h5", "M14 8l4 4-4 4M18 12H9"],
  speaker: ["M4 9h4l5-4v14l-5-4H4z", "M16 9a4 4 0 0 1 0 6"],
  slash: ["M4 4l16 16"],
  hand: ["M8 12V6a1.5 1.5 0 0 1 3 0v5", "M11 10V4.5a1.5 1.5 0 0 1 3 0V10", "M14 10.5V5.5a1.5 1.5 0 0 1 3 0V13",
    "M8 12V9.5a1.5 1.5 0 0 0-3 0V14a7 7 0 0 0 7 7h.5a4.5 4.5 0 0 0 4.5-4.5V13"],
  smile: ["M3 12a9 9 0 1 0 18 0a9 9 0 1 0-18 0", "M8 14a4.5 4.5 0 0 0 8 0", "M9 9.5h.01M15 9.5h.01"],
  panel: ["M4 5h16v11H9l-5 4z", "M8 9h8M8 12h5"],
  sliders: ["M4 6h9M17 6h3M4 12h3M11 12h9M4 18h11M19 18h1", "M15 4v4M9 10v4M17 16v4"],
  trash: ["M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13"],
  grid: ["M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z"],
  speakerView: ["M3 4h18v11H3z", "M4 18h4v2H4zM10 18h4v2h-4zM16 18h4v2h-4z"],
  self: ["M12 12a4 4 0 1 0 0-8a4 4 0 0 0 0 8z", "M4 21a8 8 0 0 1 16 0"],
  gear: ["M12 15a3 3 0 1 0 0-6a3 3 0 0 0 0 6z", "M19 12h2M3 12h2M12 3v2M12 19v2M17 7l1.5-1.5M5.5 18.5L7 17M17 17l1.5 1.5M5.5 5.5L7 7"],
};

export function icon(name, { slashed = false } = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  for (const d of [...(ICONS[name] || []), ...(slashed ? ICONS.slash : [])]) {
    const p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", d);
    svg.appendChild(p);
  }
  return svg;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function show(el, visible) {
  el.hidden = !visible;
}

/** A persistent-ish media element: sets srcObject only when the track really changed. */
export function attachTrack(el, track) {
  const cur = el.srcObject instanceof MediaStream ? el.srcObject.getTracks()[0] : null;
  if (cur === track) return;
  el.srcObject = track ? new MediaStream([track]) : null;
  if (track) el.play?.().catch(() => {});
}
