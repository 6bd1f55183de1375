"""The live view's page (``follower/view.py`` serves it): one HTML file, script and style inline.

It listens to ``/events`` (server-sent events; the browser reconnects by itself),
fetches ``/piece?id=`` once per locked piece and draws, on a canvas, a window of
that piece's piano roll around a cursor at the reported position, moving the
cursor between events at the reported tempo (for at most 0.25 s, so it never runs
ahead of the follower by more than that). Text comes from the follower and a MIDI
file, so it is only ever set as text, never as HTML.

For scripts and tests the page exposes ``window.viewState`` and writes the
cursor's position on the canvas's ``data-cursor-s`` / ``data-cursor-x`` and the
number of notes drawn on ``data-notes``.
"""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scorefollow live view</title>
<style>
  :root { --bg:#14161b; --panel:#1d2027; --text:#e6e6e6; --dim:#8a8f98; --accent:#ff5a4f;
          --following:#3fb950; --searching:#d29922; --lost:#f85149; --note:#5b8def; --played:#2e4a80; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text); font:15px/1.35 system-ui, sans-serif; }
  header { display:flex; gap:24px; align-items:center; padding:12px 18px; background:var(--panel);
           flex-wrap:wrap; }
  #piece { font-size:22px; font-weight:600; min-width:10ch; }
  #title { color:var(--dim); font-size:13px; }
  #state { padding:3px 12px; border-radius:12px; font-weight:600; text-transform:uppercase; font-size:13px;
           background:#333; }
  #state.following { background:var(--following); color:#06140a; }
  #state.searching, #state.starting { background:var(--searching); color:#1d1402; }
  #state.lost { background:var(--lost); color:#1e0404; }
  .metric { color:var(--dim); font-size:13px; }
  .metric b { color:var(--text); font-size:18px; font-variant-numeric:tabular-nums; }
  #confbar { display:inline-block; width:90px; height:8px; background:#333; border-radius:4px;
             vertical-align:middle; overflow:hidden; }
  #conffill { display:block; height:100%; width:0; background:var(--following); }
  #conn { margin-left:auto; color:var(--dim); font-size:12px; }
  main { display:grid; grid-template-columns: 1fr 260px; gap:12px; padding:12px 18px; }
  #rollbox { position:relative; }
  canvas#roll { width:100%; height:max(300px, calc(100vh - 125px)); display:block; background:#0e0f13; border-radius:6px; }
  #overview { height:6px; background:#2a2d35; border-radius:3px; margin-top:8px; position:relative; }
  #ovfill { position:absolute; left:0; top:0; bottom:0; width:0; background:var(--accent); border-radius:3px; }
  #note { color:var(--dim); font-size:12px; margin-top:6px; min-height:1.3em; }
  aside { background:var(--panel); border-radius:6px; padding:10px 14px; }
  aside h2 { font-size:13px; color:var(--dim); font-weight:600; margin:4px 0 8px; text-transform:uppercase; }
  ol { margin:0; padding-left:20px; }
  li { margin:4px 0; font-variant-numeric:tabular-nums; }
  li .bar { display:block; height:4px; background:var(--note); border-radius:2px; margin-top:2px; }
  li.top { font-weight:600; }
</style>
</head>
<body>
<header>
  <div><div id="piece">&mdash;</div><div id="title">waiting for the follower</div></div>
  <div id="state" class="starting">starting</div>
  <div class="metric">beat <b id="beat">&ndash;</b> &middot; <b id="pos">&ndash;</b> s</div>
  <div class="metric">tempo <b id="tempo">&ndash;</b></div>
  <div class="metric" id="alsobox" hidden title="music written out twice: the player may be at these places too">also at beat <b id="also"></b></div>
  <div class="metric">confidence <b id="conf">&ndash;</b> <span id="confbar"><span id="conffill"></span></span></div>
  <div class="metric">heard <b id="heard">0.0</b> s</div>
  <div id="conn">connecting&hellip;</div>
</header>
<main>
  <div id="rollbox">
    <canvas id="roll" data-cursor-s="" data-cursor-x="" data-notes="0"></canvas>
    <div id="overview"><div id="ovfill"></div></div>
    <div id="note"></div>
  </div>
  <aside>
    <h2 id="candhead">candidates</h2>
    <ol id="cands"></ol>
  </aside>
</main>
<script>
"use strict";
// the roll is shown a page at a time, like a score: the cursor walks across it and the page turns
// when the cursor reaches TURN of its width (a jump turns to the page that holds the new position)
const WINDOW_S = 16, TURN = 0.85, BACK = 0.1, MAX_EXTRAPOLATE_S = 0.25;
const S = { snap: null, recvAt: 0, roll: null, rollFor: null, events: 0, ended: false, cursorS: null };
window.viewState = S;
const $ = (id) => document.getElementById(id);
const canvas = $("roll"), ctx = canvas.getContext("2d");

function fmt(x, nd) { return (x === null || x === undefined) ? "\u2013" : x.toFixed(nd); }

function fetchRoll(piece) {
  S.rollFor = piece; S.roll = null;
  fetch("/piece?id=" + encodeURIComponent(piece)).then(r => r.json()).then(j => {
    if (S.rollFor === piece) {
      j.max_note_s = j.notes.reduce((m, n) => Math.max(m, n[1] - n[0]), 0);
      S.roll = j; if (S.snap) showState();
    }
  }).catch(() => { if (S.rollFor === piece) S.rollFor = null; });  // retried on the next event
}

function onState(snap) {
  S.snap = snap; S.recvAt = performance.now(); S.events += 1; S.ended = snap.ended; S.stopped = false;
  showState();
}

function showState() {
  const snap = S.snap;
  $("piece").textContent = snap.piece || "\u2014";
  $("title").textContent = snap.piece ? (snap.title && snap.title !== snap.piece ? snap.title : "")
                                      : (snap.state === "starting" ? "waiting for the follower" : "no piece locked");
  const st = $("state"); st.textContent = snap.state; st.className = snap.state;
  $("beat").textContent = fmt(snap.position_beats, 1);
  $("pos").textContent = fmt(snap.position_s, 1);
  $("tempo").textContent = snap.tempo === null ? "\u2013" : "x" + snap.tempo.toFixed(2) + " = " + snap.bpm.toFixed(0) + " bpm";
  const also = snap.also_at_beats || [];
  $("alsobox").hidden = also.length === 0;
  $("also").textContent = also.map(b => fmt(b, 1)).join(", ");
  $("conf").textContent = fmt(snap.confidence, 2);
  $("conffill").style.width = Math.round(100 * Math.min(1, snap.confidence || 0)) + "%";
  $("heard").textContent = fmt(snap.t, 1);
  if (snap.piece && snap.piece !== S.rollFor) fetchRoll(snap.piece);
  const list = $("cands"); list.textContent = "";
  const cands = snap.candidates || [];
  $("candhead").textContent = snap.piece ? "candidates" : "candidates (searching)";
  const top = Math.max(1e-6, ...cands.map(c => Math.max(0, c[1] || 0)));
  cands.forEach((c, i) => {
    const li = document.createElement("li");
    li.textContent = c[0] + "  " + fmt(c[1], 2);
    if (i === 0) li.className = "top";
    const bar = document.createElement("span"); bar.className = "bar";
    bar.style.width = Math.round(100 * Math.max(0, c[1] || 0) / top) + "%";
    li.appendChild(bar); list.appendChild(li);
  });
  $("conn").textContent = snap.ended ? "input ended" : "live";
  const roll = S.roll && S.roll.piece === snap.piece ? S.roll : null;
  $("ovfill").style.width = roll && snap.position_s !== null
    ? (100 * Math.min(1, snap.position_s / Math.max(roll.duration_s, 1e-6))).toFixed(2) + "%" : "0";
  $("note").textContent = !roll ? "" : roll.missing ? roll.missing
    : roll.piece + ": " + roll.notes.length + " notes, " + roll.duration_s.toFixed(1) + " s as written";
  draw();
}

function cursorSeconds(now) {
  const s = S.snap;
  if (!s || s.position_s === null) return null;
  let pos = s.position_s;
  if (s.state === "following" && s.tempo && !s.ended)  // between events, move on at the reported tempo
    pos += s.tempo * Math.min(MAX_EXTRAPOLATE_S, (now - S.recvAt) / 1000);
  const dur = S.roll ? S.roll.duration_s : Infinity;
  return Math.max(0, Math.min(dur, pos));
}

// The page (grid, beat lines, notes) is drawn once into an off-screen canvas when it turns; each frame
// only copies it, dims what has been played, lights the sounding notes and draws the cursor, at most
// FPS times a second: the browser often shares the follower's machine and must stay light.
const FPS = 30, page = document.createElement("canvas"), pctx = page.getContext("2d");
let pageKey = null, pageNotes = 0, lastDraw = 0;

function layout(roll, pos, w, h) {
  const lo = roll.pitch_lo - 2, hi = roll.pitch_hi + 2, rowH = (h - 20) / (hi - lo + 1);
  const step = (TURN - BACK) * WINDOW_S, t0 = Math.floor(pos / step) * step - BACK * WINDOW_S, px = w / WINDOW_S;
  return { lo, hi, rowH, t0, px, X: (t) => (t - t0) * px, Y: (p) => 4 + (hi - p) * rowH };
}

function drawPage(roll, L, w, h, dpr) {
  page.width = Math.round(w * dpr); page.height = Math.round(h * dpr);
  pctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  pctx.fillStyle = "#0e0f13"; pctx.fillRect(0, 0, w, h);
  // beat lines, every fourth one numbered (quarter-note beats, as the follower reports them)
  pctx.lineWidth = 1; pctx.font = "11px system-ui, sans-serif";
  roll.beats_s.forEach((b, i) => {
    if (b < L.t0 - 1 || b > L.t0 + WINDOW_S + 1) return;
    pctx.strokeStyle = i % 4 === 0 ? "#3a3e48" : "#23262e";
    pctx.beginPath(); pctx.moveTo(L.X(b) + 0.5, 0); pctx.lineTo(L.X(b) + 0.5, h - 16); pctx.stroke();
    if (i % 4 === 0) { pctx.fillStyle = "#6b707a"; pctx.fillText(String(i), L.X(b) + 3, h - 4); }
  });
  // a faint line and a name at every C, so the register reads at a glance
  pctx.font = "10px system-ui, sans-serif";
  for (let p = Math.ceil(L.lo / 12) * 12; p <= L.hi; p += 12) {
    pctx.fillStyle = "#1b1e25"; pctx.fillRect(0, L.Y(p) + L.rowH - 1, w, 1);
    pctx.fillStyle = "#555a63"; pctx.fillText("C" + (p / 12 - 1), 3, L.Y(p) + L.rowH - 2);
  }
  pctx.fillStyle = "#5b8def";
  pageNotes = 0;
  for (const [a, b, p] of roll.notes) {
    if (b < L.t0 || a > L.t0 + WINDOW_S) continue;
    pctx.fillRect(L.X(a), L.Y(p), Math.max(2, (b - a) * L.px - 1), Math.max(2, L.rowH - 1));
    pageNotes += 1;
  }
}

function firstFrom(notes, t) {  // index of the first note starting at or after t (notes are sorted by start)
  let lo = 0, hi = notes.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (notes[m][0] < t) lo = m + 1; else hi = m; }
  return lo;
}

function draw() {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); pageKey = null;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const roll = (S.snap && S.snap.piece && S.roll && S.roll.piece === S.snap.piece) ? S.roll : null;
  const pos = cursorSeconds(performance.now());
  S.cursorS = pos; lastDraw = performance.now();
  if (!roll || pos === null) {
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#8a8f98"; ctx.font = "14px system-ui, sans-serif";
    canvas.dataset.cursorS = ""; canvas.dataset.cursorX = ""; canvas.dataset.notes = "0";
    const msg = !S.snap ? "connecting to the follower\u2026"
      : S.snap.piece ? "loading the score of " + S.snap.piece + "\u2026" : "listening \u2014 no piece locked yet";
    ctx.fillText(msg, 16, h / 2);
    return;
  }
  const L = layout(roll, pos, w, h), key = [roll.piece, L.t0, w, h, dpr].join("|");
  if (key !== pageKey) { drawPage(roll, L, w, h, dpr); pageKey = key; }
  ctx.drawImage(page, 0, 0, w, h);
  const cx = L.X(pos);
  ctx.fillStyle = "rgba(14, 15, 19, 0.55)"; ctx.fillRect(0, 0, cx, h - 16);  // played: dimmed
  ctx.fillStyle = "#ffb547";                                                  // sounding: lit
  for (let i = firstFrom(roll.notes, pos - roll.max_note_s); i < roll.notes.length && roll.notes[i][0] <= pos; i++) {
    const [a, b, p] = roll.notes[i];
    if (b > pos) ctx.fillRect(L.X(a), L.Y(p), Math.max(2, (b - a) * L.px - 1), Math.max(2, L.rowH - 1));
  }
  ctx.fillStyle = "#ff5a4f"; ctx.fillRect(cx - 1, 0, 2, h - 16);
  canvas.dataset.cursorS = pos.toFixed(3); canvas.dataset.cursorX = cx.toFixed(1);
  canvas.dataset.notes = String(pageNotes);
}

function frame(now) {
  if (S.snap && S.snap.state === "following" && !S.ended && now - lastDraw >= 1000 / FPS - 2) draw();
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
window.addEventListener("resize", draw);

const es = new EventSource("/events");
es.addEventListener("state", (e) => onState(JSON.parse(e.data)));
// the follower stopped; the browser keeps retrying, so the next replay on this port is picked up
es.addEventListener("end", () => { S.ended = true; S.stopped = true; $("conn").textContent = "follower stopped"; draw(); });
es.onerror = () => { if (!S.stopped) $("conn").textContent = "reconnecting\u2026"; };
draw();
</script>
</body>
</html>
"""
