// Scripted drawing by two real Yjs documents (the npm package web/board.js uses, web/vendor), the
// way web/board.js lays out its Y.Doc. Prints JSON: every update each document emitted (base64, in
// order), and both documents' final elements (they must have converged). With an argument (a base64
// update from pycrdt) it instead applies it and prints the elements it reads.
const Y = require("yjs");

const b64 = (u) => Buffer.from(u).toString("base64");
const elementsOf = (doc) => doc.getMap("elements").toJSON();

if (process.argv[2]) {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, Buffer.from(process.argv[2], "base64"));
  process.stdout.write(JSON.stringify({ elements: elementsOf(doc) }));
  process.exit(0);
}

const a = new Y.Doc();
const b = new Y.Doc();
const updates = [];
for (const [name, doc, other] of [["a", a, () => b], ["b", b, () => a]]) {
  doc.on("update", (u, origin) => {
    if (origin === "remote") return;
    updates.push({ by: name, update: b64(u) });
    Y.applyUpdate(other(), u, "remote");
  });
}

function stroke(doc, id, page, pts, type = "pen") {
  doc.transact(() => {
    const m = new Y.Map();
    m.set("type", type); m.set("page", page); m.set("color", "#1565c0"); m.set("width", 4);
    m.set("z", Date.now()); m.set("by", id.split("-")[0]);
    const arr = new Y.Array(); arr.push(pts); m.set("pts", arr);
    doc.getMap("elements").set(id, m);
  });
}

stroke(a, "a-1", "p1", [10, 10, 20, 20]);
stroke(b, "b-1", "p1", [100, 100]);
for (let i = 0; i < 20; i++) {
  a.transact(() => a.getMap("elements").get("a-1").get("pts").push([20 + i, 20 + i]));
  b.transact(() => b.getMap("elements").get("b-1").get("pts").push([100 + i, 100 - i]));
}
a.transact(() => {
  const m = new Y.Map();
  m.set("type", "text"); m.set("page", "p2"); m.set("text", "x² + y² = r²"); m.set("size", 32);
  const arr = new Y.Array(); arr.push([300, 300]); m.set("pts", arr);
  a.getMap("elements").set("a-2", m);
});
b.transact(() => b.getMap("elements").get("a-2").set("t", [1, 1, 50, -20]));  // b moves a's text
stroke(b, "b-2", "p1", [5, 5, 6, 6], "rect");
a.transact(() => a.getMap("elements").delete("b-2"));  // a erases b's rectangle
process.stdout.write(JSON.stringify({ updates, a: elementsOf(a), b: elementsOf(b) }));
