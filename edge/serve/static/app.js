// The serve page: no framework, no CDN. Every text that comes from the model or the server is
// set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const CHART_SECONDS = 300;
const CHART_STEP = 0.5;
const RECENT = 20;
let model = null;
let positive = "Unhealthy";
let isMap = false;  // a whole-frame model: frames carry lesions (boxes drawn on the stream), not a label
let chart = [];   // [unix seconds, p(positive), label]
let recent = [];  // newest first
let renderQueued = false;
let events = null;

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    showLogin();
    throw new Error("access token required");
  }
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showLogin(message) {
  $("login").hidden = false;
  $("main").hidden = true;
  $("login-error").textContent = message || "";
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/v1/session", {
    method: "POST", credentials: "same-origin", headers: { Authorization: "Bearer " + $("token").value },
  });
  $("token").value = "";
  if (response.ok) start(); else showLogin("that token was not accepted");
});

function fmt(p) { return Number(p).toFixed(3); }

function lesionCount(lesions) {
  return lesions.length === 0 ? "no lesion" : `${lesions.length} lesion${lesions.length > 1 ? "s" : ""}`;
}

// One frame's answer as the page shows it: the label and p(positive), or the lesion count and
// the map's peak for a whole-frame model (its chart and threshold line read the same way).
function headline(record) {
  if (isMap) return { text: lesionCount(record.lesions), p: record.peak, flagged: record.lesions.length > 0 };
  return { text: record.label, p: record.probabilities[positive], flagged: record.label === positive };
}

function pText(p) { return isMap ? `peak ${fmt(p)}` : `p(${positive}) ${fmt(p)}`; }

function showModel(info) {
  const meta = info.metadata || {};
  const parent = meta.parent || {};
  const rows = [
    ["file", info.model.split("/").pop()],
    ["labels", info.labels.join(", ")],
    ["positive class", info.positive_label],
    ["precision", info.precision],
    ["threshold", info.threshold === null ? "arg-max (none stored)"
      : `${fmt(info.threshold)} on ${isMap ? "the stenosis map" : `p(${info.positive_label})`}`],
    ["input", meta.input_size ? `${meta.input_size} px ${meta.color_order}` : info.inputs[0].shape.join("x")],
    ["SHA-256", info.sha256],
    ["backend", info.backend],
    ["artery-edge", meta.artery_edge_version || "?"],
    ["created", meta.created || "?"],
  ];
  if (Object.keys(parent).length) {
    rows.push(["adapted from", `${parent.name || "?"} (trained on ${parent.data || "?"})`]);
  }
  const list = $("model");
  list.replaceChildren();
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function showStatus(status) {
  const line = $("camera-status");
  line.className = "status " + status.state;
  const text = {
    none: status.message,
    starting: "starting the camera…",
    live: `live: ${status.message}`,
    lost: `camera lost: ${status.message}`,
    stopped: "the server is stopping",
  };
  line.textContent = text[status.state] || `${status.state}: ${status.message}`;
  $("live-view").hidden = status.state === "none";
}

function addDecision(record) {
  recent.unshift(record);
  recent.length = Math.min(recent.length, RECENT);
  const now = Date.parse(record.time) / 1000;
  if (!chart.length || now - chart[chart.length - 1][0] >= CHART_STEP) {
    const shown = headline(record);
    chart.push([now, shown.p, shown.text]);
  }
  while (chart.length && now - chart[0][0] > CHART_SECONDS) chart.shift();
  if (!renderQueued) {
    renderQueued = true;
    setTimeout(render, 200);  // at most five repaints a second, however fast frames come
  }
}

function render() {
  renderQueued = false;
  const last = recent[0];
  if (last) {
    const shown = headline(last);
    $("ov-label").textContent = shown.text;
    $("ov-label").className = shown.flagged ? "positive" : "negative";
    $("ov-p").textContent = pText(shown.p);
    $("ov-fps").textContent = `${Number(last.fps).toFixed(1)} FPS`;
  }
  const body = $("decisions").tBodies[0];
  body.replaceChildren(...recent.map((record) => {
    const shown = headline(record);
    const row = document.createElement("tr");
    const cells = [record.time.slice(11, 23), record.frame, shown.text, fmt(shown.p), Number(record.fps).toFixed(1)];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    row.cells[2].className = shown.flagged ? "positive" : "";
    return row;
  }));
  drawChart();
}

function drawChart() {
  const canvas = $("chart");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  const y = (p) => h - pad / 2 - p * (h - pad);
  g.clearRect(0, 0, w, h);
  g.fillStyle = "#57606a";
  g.font = "11px sans-serif";
  g.fillText("1", 4, y(1) + 4);
  g.fillText("0", 4, y(0));
  g.fillText("-5 min", pad, h - 1);
  g.fillText("now", w - 26, h - 1);
  if (model && model.threshold !== null) {
    g.strokeStyle = "#e0342a";
    g.setLineDash([4, 4]);
    g.beginPath();
    g.moveTo(pad, y(model.threshold));
    g.lineTo(w, y(model.threshold));
    g.stroke();
    g.setLineDash([]);
  }
  if (!chart.length) return;
  const end = chart[chart.length - 1][0];
  const x = (t) => pad + (w - pad) * (1 - (end - t) / CHART_SECONDS);
  g.strokeStyle = "#1f6feb";
  g.beginPath();
  chart.forEach(([t, p], i) => (i ? g.lineTo(x(t), y(p)) : g.moveTo(x(t), y(p))));
  g.stroke();
}

function follow() {
  if (events) events.close();
  events = new EventSource("/v1/decisions");
  events.addEventListener("status", (event) => showStatus(JSON.parse(event.data)));
  events.addEventListener("decision", (event) => addDecision(JSON.parse(event.data)));
  events.addEventListener("open", () => { $("frame").src = "/v1/stream?t=" + Date.now(); });
  events.addEventListener("error", () => {
    const line = $("camera-status");
    line.className = "status lost";
    line.textContent = "connection to the server lost; reconnecting…";
  });
}

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const label = $("upload-label");
  const detail = $("upload-detail");
  label.textContent = "";
  label.className = "";
  detail.textContent = isMap ? "scanning…" : "classifying…";
  try {
    const answer = await api("/v1/predict", { method: "POST", body: new FormData($("upload-form")) });
    const result = answer.results[0];
    const frames = answer.results.length > 1 ? ` · frame ${result.frame} of ${answer.results.length} (all in the API's answer)` : "";
    if (isMap) {
      label.textContent = lesionCount(result.lesions);
      label.className = result.lesions.length ? "positive" : "";
      const boxes = result.lesions.map((l) => `[${l.box.map(Math.round).join(", ")}] ${fmt(l.score)}`).join("; ");
      detail.textContent = `${boxes ? boxes + " · " : ""}peak ${fmt(result.peak)} · ${result.inference_ms} ms · ${result.file}${frames}`;
    } else {
      label.textContent = result.label;
      label.className = result.label === positive ? "positive" : "";
      detail.textContent = `p(${positive}) ${fmt(result["p_" + positive])} · ${result.inference_ms} ms · ${result.file}${frames}`;
    }
  } catch (error) {
    detail.textContent = "error: " + error.message;
    detail.className = "error";
    return;
  }
  detail.className = "";
});

async function start() {
  try {
    model = await api("/v1/model");
  } catch (error) {
    if (!$("login").hidden) return;
    $("main").hidden = false;
    $("camera-status").textContent = "error: " + error.message;
    return;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  positive = model.positive_label;
  isMap = model.task === "map";
  $("chart-title").textContent = `${isMap ? `peak p(${positive}) on the frame` : `p(${positive})`} over the last 5 minutes`;
  $("p-head").textContent = isMap ? "peak" : `p(${positive})`;
  $("label-head").textContent = isMap ? "lesions" : "label";
  $("upload-title").textContent = isMap ? "Scan a frame" : "Classify an image";
  $("upload-button").textContent = isMap ? "Scan" : "Classify";
  $("ov-threshold").textContent = model.threshold === null ? "arg-max" : `threshold ${fmt(model.threshold)}`;
  showModel(model);
  const status = await api("/v1/status");
  showStatus(status);
  chart = status.chart;
  status.recent.forEach(addDecision);
  render();
  if (status.state !== "none") follow();
}

start();
