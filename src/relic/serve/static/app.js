// relic play: start panel, WebSocket stream of JPEG frames, key map + mouse look, HUD, minimap, record.
// Protocol: see relic/serve/protocol.py. No build step; plain browser JavaScript.
"use strict";

const $ = (id) => document.getElementById(id);
const CODE_TO_KEY = {
  KeyW: "w", KeyS: "s", KeyA: "a", KeyD: "d", KeyE: "e", KeyQ: "q", KeyZ: "z", KeyX: "x",
  ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right",
};
const KEY_LABEL = { up: "↑", down: "↓", left: "←", right: "→" };
const INPUT_INTERVAL_MS = 50;   // while keys are held or the mouse moves, send input this often

// Everything the page knows; exposed as window.relicPlay for debugging and tests.
const S = {
  info: null, scenes: [], scene: null, uploadId: null, ws: null, playing: false,
  held: new Set(), dx: 0, dy: 0, gamma: 1.0, lastSent: 0, inputDirty: false,
  frames: 0, frameTimes: [], fps: 0, latency: null, lastEcho: null, mem: 0, lastN: 0,
  path: [], recording: false, pendingBitmap: null, decoding: false,
};
window.relicPlay = S;

function setStatus(el, text, error = false) {
  el.textContent = text;
  el.classList.toggle("error", error);
}

// ---- start panel -----------------------------------------------------------------------------------
async function init() {
  try {
    const [info, scenes] = await Promise.all([
      fetch("/api/info").then((r) => r.json()), fetch("/api/scenes").then((r) => r.json())]);
    S.info = info;
    S.scenes = scenes;
  } catch (e) {
    setStatus($("status"), "cannot reach the server", true);
    return;
  }
  $("prompt").maxLength = S.info.limits.max_prompt_chars;
  $("upload-hint").textContent =
    `PNG, JPEG or WebP, at most ${Math.round(S.info.limits.max_upload_bytes / 1048576)} MB`;
  const box = $("scenes");
  for (const sc of S.scenes) {
    const b = document.createElement("button");
    b.className = "scene";
    b.dataset.scene = sc.name;
    b.innerHTML = `<img alt=""><span></span>`;
    b.querySelector("img").src = sc.thumbnail;
    b.querySelector("span").textContent = sc.title;
    b.addEventListener("click", () => selectScene(sc, b));
    box.appendChild(b);
  }
  if (!S.scenes.length) box.innerHTML = `<p class="hint">No bundled scenes; upload an image.</p>`;
  drawKeymap();
  $("view").width = S.info.width;
  $("view").height = S.info.height;
  $("view").style.aspectRatio = `${S.info.width} / ${S.info.height}`;
}

function selectScene(sc, button) {
  S.scene = sc.name;
  S.uploadId = null;
  document.querySelectorAll(".scene").forEach((b) => b.classList.toggle("selected", b === button));
  $("upload-preview").hidden = true;
  $("prompt").value = sc.prompt;
  $("start-button").disabled = false;
  setStatus($("status"), "");
}

$("upload").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  ev.target.value = "";
  if (!file) return;
  const max = S.info ? S.info.limits.max_upload_bytes : 10485760;
  if (file.size > max) {
    setStatus($("status"), `${file.name} is larger than ${Math.round(max / 1048576)} MB`, true);
    return;
  }
  setStatus($("status"), `uploading ${file.name}…`);
  try {
    const r = await fetch("/api/upload", { method: "POST", body: file,
      headers: { "Content-Type": file.type || "application/octet-stream" } });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    S.uploadId = body.id;
    S.scene = null;
    document.querySelectorAll(".scene").forEach((b) => b.classList.remove("selected"));
    const img = $("upload-preview");
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    $("start-button").disabled = false;
    setStatus($("status"), `${file.name} ready`);
  } catch (e) {
    setStatus($("status"), `upload refused: ${e.message}`, true);
  }
});

$("start-button").addEventListener("click", () => connect());

// ---- the stream ------------------------------------------------------------------------------------
function connect() {
  if (S.ws) S.ws.close();
  $("start-button").disabled = true;
  setStatus($("status"), "connecting…");
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  S.ws = ws;
  ws.onmessage = (ev) => (typeof ev.data === "string" ? onText(JSON.parse(ev.data)) : onFrame(ev.data));
  ws.onclose = (ev) => {
    if (S.ws !== ws) return;
    S.ws = null;
    $("start-button").disabled = !(S.scene || S.uploadId);
    if (S.playing) {
      setStatus($("play-status"), `disconnected (${ev.code}${ev.reason ? ": " + ev.reason : ""})`, true);
    } else if (!$("status").classList.contains("error")) {
      setStatus($("status"), `connection closed (${ev.code})`, true);
    }
    S.playing = false;
  };
}

function send(obj) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(obj));
}

function onText(m) {
  if (m.type === "hello") {
    setStatus($("status"), "starting…");
    const start = { type: "start", prompt: $("prompt").value };
    if (S.uploadId) start.upload = S.uploadId; else start.scene = S.scene;
    send(start);
  } else if (m.type === "busy") {
    setStatus($("status"), m.message, true);
  } else if (m.type === "started" || m.type === "reset") {
    S.playing = true;
    S.frames = 0; S.frameTimes = []; S.path = []; S.lastEcho = null; S.latency = null;
    $("start").hidden = true;
    $("play").hidden = false;
    setStatus($("play-status"), m.type === "reset" ? "reset to the start image" : "");
    sendInput(true);
  } else if (m.type === "recording") {
    onRecording(m);
  } else if (m.type === "error") {
    setStatus(S.playing ? $("play-status") : $("status"), m.message, true);
    if (!S.playing) $("start-button").disabled = !(S.scene || S.uploadId);
  }
}

// Binary frame: uint32 LE header length | JSON header | JPEG. Newest frame wins: if one is still being
// decoded, a newer arrival replaces the waiting one.
function onFrame(buf) {
  const n = new DataView(buf).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const blob = new Blob([new Uint8Array(buf, 4 + n)], { type: "image/jpeg" });
  S.pendingBitmap = { header, blob };
  if (!S.decoding) decodeNext();
}

async function decodeNext() {
  S.decoding = true;
  while (S.pendingBitmap) {
    const { header, blob } = S.pendingBitmap;
    S.pendingBitmap = null;
    try {
      const bmp = await createImageBitmap(blob);
      $("view").getContext("2d").drawImage(bmp, 0, 0, $("view").width, $("view").height);
      bmp.close();
      onDrawn(header);
    } catch (e) {
      console.warn("bad frame", e);
    }
    send({ type: "ack", n: header.seq });
  }
  S.decoding = false;
}

function onDrawn(h) {
  const now = performance.now();
  S.frames += 1;
  S.lastN = h.n;
  S.frameTimes.push(now);
  while (S.frameTimes.length && now - S.frameTimes[0] > 2000) S.frameTimes.shift();
  if (S.frameTimes.length > 1) {
    S.fps = (S.frameTimes.length - 1) / ((now - S.frameTimes[0]) / 1000);
  }
  if (h.t !== null && h.t !== undefined && h.t !== S.lastEcho) {
    S.lastEcho = h.t;            // the first frame that used this input: action-to-frame latency
    const lat = now - h.t;
    S.latency = S.latency === null ? lat : 0.7 * S.latency + 0.3 * lat;
  }
  S.mem = h.mem;
  if (h.pose) S.path.push(h.pose);
  $("hud-fps").textContent = S.fps.toFixed(1);
  $("hud-latency").textContent = S.latency === null ? "–" : Math.round(S.latency);
  $("hud-mem").textContent = S.mem;
  $("hud-frames").textContent = h.n;
  drawMinimap();
}

// ---- input -----------------------------------------------------------------------------------------
function sendInput(force = false) {
  const now = performance.now();
  if (!force && !S.inputDirty && S.held.size === 0) return;
  S.lastSent = now;
  S.inputDirty = false;
  send({ type: "input", keys: [...S.held], dx: Math.round(S.dx * 10) / 10, dy: Math.round(S.dy * 10) / 10,
         gamma: S.gamma, t: now });
  S.dx = 0; S.dy = 0;
}
setInterval(() => { if (S.playing) sendInput(); }, INPUT_INTERVAL_MS);

// Keep the FPS honest when frames stop coming.
setInterval(() => {
  const now = performance.now();
  while (S.frameTimes.length && now - S.frameTimes[0] > 2000) S.frameTimes.shift();
  if (S.frameTimes.length < 2) S.fps = 0;
  $("hud-fps").textContent = S.fps.toFixed(1);
}, 500);

function keyOf(ev) { return CODE_TO_KEY[ev.code]; }
window.addEventListener("keydown", (ev) => {
  if (!S.playing || ev.target.tagName === "TEXTAREA" || ev.target.tagName === "INPUT") return;
  const k = keyOf(ev);
  if (!k) return;
  ev.preventDefault();
  if (!S.held.has(k)) { S.held.add(k); drawKeymap(); sendInput(true); }
});
window.addEventListener("keyup", (ev) => {
  const k = keyOf(ev);
  if (!k || !S.held.has(k)) return;
  S.held.delete(k);
  drawKeymap();
  sendInput(true);
});
window.addEventListener("blur", () => { S.held.clear(); drawKeymap(); sendInput(true); });

// Mouse look: with pointer lock (click the view), or by dragging when pointer lock is unavailable.
// A click (no drag) captures the pointer.
let dragging = false, dragged = 0;
$("view").addEventListener("mousedown", () => { dragging = true; dragged = 0; });
window.addEventListener("mouseup", () => { dragging = false; });
$("view").addEventListener("click", () => {
  if (dragged > 4 || document.pointerLockElement === $("view")) return;
  const p = $("view").requestPointerLock && $("view").requestPointerLock();
  if (p && p.catch) p.catch(() => {});
});
document.addEventListener("mousemove", (ev) => {
  if (document.pointerLockElement !== $("view") && !dragging) return;
  dragged += Math.abs(ev.movementX) + Math.abs(ev.movementY);
  S.dx += ev.movementX;
  S.dy += ev.movementY;
  S.inputDirty = true;
});

$("gamma").addEventListener("input", () => {
  S.gamma = parseFloat($("gamma").value);
  $("gamma-value").textContent = S.gamma.toFixed(2);
  S.inputDirty = true;
});
$("reset-button").addEventListener("click", () => send({ type: "reset" }));
$("record-button").addEventListener("click", () => send({ type: "record", on: !S.recording }));
$("new-button").addEventListener("click", () => {
  if (document.pointerLockElement) document.exitPointerLock();
  const ws = S.ws;
  S.ws = null; S.playing = false;
  if (ws) ws.close();
  $("play").hidden = true;
  $("start").hidden = false;
  $("start-button").disabled = !(S.scene || S.uploadId);
  setStatus($("status"), "");
});

function onRecording(m) {
  S.recording = !!m.on;
  $("record-button").textContent = S.recording ? "Stop recording" : "Record";
  $("record-button").classList.toggle("recording", S.recording);
  $("rec-dot").hidden = !S.recording;
  if (m.on) { setStatus($("play-status"), "recording…"); return; }
  if (!m.url) { setStatus($("play-status"), m.message || "nothing recorded", true); return; }
  const a = document.createElement("a");
  a.href = m.url;
  a.download = `relic-${new Date().toISOString().replace(/[:.]/g, "-")}.mp4`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setStatus($("play-status"), `saved ${m.frames} frames (${m.seconds} s) as mp4`);
}

// ---- drawing: key map and minimap ------------------------------------------------------------------
// The key map drawn as two key clusters (DIAMOND-style): movement on the left hand, looking on the right.
const KEY_LAYOUT = [
  ["q", 0, 0], ["w", 1, 0], ["e", 2, 0], ["a", 0, 1], ["s", 1, 1], ["d", 2, 1], ["z", 0, 2], ["x", 1, 2],
  ["up", 5, 0], ["left", 4, 1], ["down", 5, 1], ["right", 6, 1],
];
function drawKeymap() {
  const box = $("keymap");
  if (!S.info) return;
  if (!box.childElementCount) {
    const action = Object.fromEntries(S.info.keymap);
    for (const [key, col, row] of KEY_LAYOUT) {
      if (!action[key]) continue;
      const d = document.createElement("div");
      d.className = "key";
      d.dataset.key = key;
      d.style.gridColumn = String(col + 1);
      d.style.gridRow = String(row + 1);
      d.innerHTML = `<kbd></kbd><span></span>`;
      d.querySelector("kbd").textContent = KEY_LABEL[key] || key.toUpperCase();
      d.querySelector("span").textContent = action[key].replace("_", " ");
      box.appendChild(d);
    }
    const m = document.createElement("div");
    m.className = "key mouse";
    m.style.gridColumn = "4 / 8";
    m.style.gridRow = "3";
    m.innerHTML = `<kbd>mouse</kbd><span>${action["mouse x"] || "pan"} / ${action["mouse y"] || "tilt"} (click the view)</span>`;
    box.appendChild(m);
  }
  for (const d of box.children) d.classList.toggle("down", S.held.has(d.dataset.key));
}

function drawMinimap() {
  const c = $("minimap"), g = c.getContext("2d"), W = c.width, H = c.height, pad = 18;
  g.clearRect(0, 0, W, H);
  if (!S.path.length) return;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of S.path) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  // never zoom in further than 12 average steps across, so that standing still is a dot, not noise
  let walked = 0;
  for (let i = 1; i < S.path.length; i++) walked += Math.hypot(S.path[i][0] - S.path[i - 1][0], S.path[i][1] - S.path[i - 1][1]);
  const span = Math.max(x1 - x0, y1 - y0, (12 * walked) / Math.max(1, S.path.length - 1), 1e-9);
  const sc = (Math.min(W, H) - 2 * pad) / span, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const px = (x) => W / 2 + (x - cx) * sc, py = (y) => H / 2 - (y - cy) * sc;   // x right, y up
  g.strokeStyle = "#f0a030"; g.lineWidth = 2; g.lineJoin = "round";
  g.beginPath();
  S.path.forEach(([x, y], i) => (i ? g.lineTo(px(x), py(y)) : g.moveTo(px(x), py(y))));
  g.stroke();
  const [sx, sy] = S.path[0];
  g.fillStyle = "#8c969f"; g.beginPath(); g.arc(px(sx), py(sy), 3, 0, 2 * Math.PI); g.fill();
  const [x, y, hd] = S.path[S.path.length - 1], a = (hd * Math.PI) / 180;
  g.fillStyle = "#3fb37f"; g.beginPath(); g.arc(px(x), py(y), 4, 0, 2 * Math.PI); g.fill();
  g.strokeStyle = "#3fb37f"; g.beginPath(); g.moveTo(px(x), py(y));
  g.lineTo(px(x) + 12 * Math.cos(a), py(y) - 12 * Math.sin(a)); g.stroke();
}

init();
