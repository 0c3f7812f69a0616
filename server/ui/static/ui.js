// The /ui page: asks the chat API for a search with `reasoning.stream_trace` and draws the
// tree from the stream's `reasoning_trace` chunks as it grows (plain SVG). Every text that comes
// from a prompt or the model is set with textContent, never parsed as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const DX = 150, DY = 26, R = 7, LABEL = 16;
const $ = (id) => document.getElementById(id);
const key = document.querySelector('meta[name="deliberate-key"]').content;

let nodes = new Map();      // id -> trace entry (the latest sent)
let run = null;             // {request, reasoning, answer, usage, strategy, done}
let controller = null;      // aborts the request in flight

function headers() {
  const h = {"Content-Type": "application/json"};
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function el(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function option(select, value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label || value;
  select.appendChild(o);
}

async function getJSON(url) {
  const r = await fetch(url, {headers: headers()});
  if (!r.ok) throw new Error(url + ": " + r.status);
  return r.json();
}

async function setUp() {
  const [config, models] = await Promise.all([getJSON("/ui/config"), getJSON("/v1/models")]);
  for (const m of models.data) option($("model"), m.id);
  for (const s of config.strategies) option($("strategy"), s);
  $("strategy").value = "beam";
  $("budget").value = Math.min(config.budget_tokens, 4000);
  for (const name of config.verifiers) {
    const label = document.createElement("label");
    label.textContent = name + " ";
    const input = document.createElement("input");
    input.type = "number"; input.min = "0"; input.step = "any"; input.dataset.verifier = name;
    if (name in config.search_verifiers) input.value = config.search_verifiers[name];
    label.appendChild(input);
    $("verifiers").appendChild(label);
  }
}

function requestBody() {
  const reasoning = {strategy: $("strategy").value, return_trace: true, stream_trace: true};
  const weights = {};
  for (const input of $("verifiers").querySelectorAll("input")) {
    if (input.value !== "") weights[input.dataset.verifier] = Number(input.value);
  }
  if (Object.keys(weights).length) reasoning.verifiers = weights;
  if ($("budget").value) reasoning.budget_tokens = Number($("budget").value);
  if ($("seed").value !== "") reasoning.seed = Number($("seed").value);
  if ($("extra").value.trim()) Object.assign(reasoning, JSON.parse($("extra").value));
  const body = {model: $("model").value, stream: true, stream_options: {include_usage: true},
                messages: [{role: "user", content: $("prompt").value}],
                max_tokens: Number($("max-tokens").value) || 128, reasoning};
  if ($("effort").value) body.reasoning_effort = $("effort").value;
  return body;
}

function status(text) { $("status").textContent = text; }

async function go(event) {
  event.preventDefault();
  if (controller) controller.abort();
  controller = new AbortController();
  let request;
  try {
    request = requestBody();
  } catch (error) {
    status("error: " + error.message);
    return;
  }
  run = {request, reasoning: null, answer: "", usage: null, strategy: null, done: false};
  nodes = new Map();
  render();
  status("running");
  $("go").disabled = true; $("stop").disabled = false; $("download").disabled = true;
  try {
    const r = await fetch("/v1/chat/completions", {method: "POST", headers: headers(),
      body: JSON.stringify(request), signal: controller.signal});
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
    }
    run.strategy = r.headers.get("x-reasoning-strategy");
    await readEvents(r.body, onChunk);
    run.done = true;
    status("done");
  } catch (error) {
    status(error.name === "AbortError" ? "stopped" : "error: " + error.message);
  } finally {
    controller = null;
    $("go").disabled = false; $("stop").disabled = true;
    $("download").disabled = !run || !run.done;
    render();
  }
}

async function readEvents(stream, handle) {
  const reader = stream.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        handle(JSON.parse(data));
      }
    }
  }
}

function onChunk(chunk) {
  if (chunk.error) throw new Error(chunk.error.message);
  if (chunk.reasoning_trace) {
    merge(chunk.reasoning_trace);
  }
  for (const choice of chunk.choices || []) {
    if (choice.index === 0 && choice.delta && choice.delta.content) run.answer += choice.delta.content;
  }
  if (chunk.usage) run.usage = chunk.usage;
  if (chunk.reasoning) {
    run.reasoning = chunk.reasoning;
    if (chunk.reasoning.trace) {  // the final tree (MCTS's last visits included)
      nodes = new Map();
      merge(chunk.reasoning.trace);
    }
  }
  render();
}

function merge(entries) {
  for (const entry of entries) {
    if (entry.parent === null && nodes.size) nodes = new Map();  // a new search (a next stage)
    nodes.set(entry.id, entry);
  }
}

// --- drawing ----------------------------------------------------------------------------------

function colour(score) {
  if (score === null || score === undefined) return "#8aa4c8";
  const s = Math.max(0, Math.min(1, score));
  return "hsl(" + Math.round(120 * s) + ", 70%, 45%)";
}

function layout() {
  const children = new Map();
  let root = null;
  for (const n of nodes.values()) {
    if (n.parent === null) root = n;
    else {
      if (!children.has(n.parent)) children.set(n.parent, []);
      children.get(n.parent).push(n);
    }
  }
  const at = new Map();
  let slot = 0, depth = 0;
  function place(n, d) {
    depth = Math.max(depth, d);
    const kids = (children.get(n.id) || []).sort((a, b) => a.id - b.id);
    for (const k of kids) place(k, d + 1);
    const y = kids.length ? (at.get(kids[0].id).y + at.get(kids[kids.length - 1].id).y) / 2
                          : (slot++) * DY + DY;
    at.set(n.id, {x: d * DX + 20, y});
  }
  if (root) place(root, 0);
  return {at, children, slots: slot, depth};
}

function chosenPath() {
  const chosen = new Set();
  const ends = run && run.reasoning && run.reasoning.answer_nodes;
  if (!ends || !ends.length) return chosen;
  let id = ends[0];
  while (id !== null && id !== undefined && nodes.has(id)) {
    chosen.add(id);
    id = nodes.get(id).parent;
  }
  return chosen;
}

function describe(n) {
  const lines = ["node " + n.id + (n.final ? " (finished path)" : ""), "step: " + n.text];
  lines.push("score (verifier product): " + (n.score === null ? "-" : n.score.toFixed(4)));
  for (const [name, value] of Object.entries(n.scores || {})) {
    lines.push("  " + name + ": " + value.toFixed(4));
  }
  if (n.visits) lines.push("visits " + n.visits + ", value " + n.value);
  return lines.join("\n");
}

function render() {
  const svg = $("tree");
  svg.replaceChildren();
  const {at, children, slots, depth} = layout();
  svg.setAttribute("width", (depth + 1) * DX + 160);
  svg.setAttribute("height", Math.max(slots, 1) * DY + DY);
  const chosen = chosenPath();
  const done = Boolean(run && run.done);
  const edges = el("g", {class: "edges"}), drawn = el("g", {class: "nodes"});
  for (const n of nodes.values()) {
    const p = at.get(n.id);
    if (n.parent !== null && at.has(n.parent)) {
      const q = at.get(n.parent);
      edges.appendChild(el("line", {x1: q.x, y1: q.y, x2: p.x, y2: p.y,
        class: chosen.has(n.id) ? "edge chosen" : "edge"}));
    }
    const leaf = !(children.get(n.id) || []).length;
    const pruned = n.parent !== null && !chosen.has(n.id) &&
      (n.score === 0 || (done && leaf && !n.final));
    const g = el("g", {class: "node" + (pruned ? " pruned" : "") + (chosen.has(n.id) ? " chosen" : ""),
      "data-id": n.id, "data-chosen": chosen.has(n.id), "data-pruned": pruned,
      transform: "translate(" + p.x + "," + p.y + ")"});
    g.appendChild(el("title", {}, describe(n)));
    g.appendChild(el("circle", {r: R, fill: pruned ? "#c8c8c8" : colour(n.score)}));
    const label = n.parent === null ? "prompt" : n.text;
    g.appendChild(el("text", {x: R + 4, y: 4},
      label.length > LABEL ? label.slice(0, LABEL - 1) + "\u2026" : label));
    g.addEventListener("mouseenter", () => { $("node-detail").textContent = describe(n); });
    drawn.appendChild(g);
  }
  svg.appendChild(edges);
  svg.appendChild(drawn);
  $("answer").textContent = run ? run.answer : "";
  facts();
}

function facts() {
  const list = $("facts-list");
  list.replaceChildren();
  if (!run) return;
  const r = run.reasoning || {};
  const confidence = r.confidence ? r.confidence.value.toFixed(3) +
    (r.confidence.calibrated ? " (calibrated)" : " (uncalibrated)") : null;
  const stages = r.stages ? r.stages.map((s) => s.strategy + ": " + s.why).join("; ") : null;
  const rows = [
    ["strategy", r.strategy || run.strategy],
    ["difficulty", r.difficulty === null || r.difficulty === undefined ? null
      : r.difficulty.toFixed(3) + (r.difficulty_estimator ? " (" + r.difficulty_estimator + ")" : "")],
    ["decision", stages], ["confidence", confidence],
    ["score", r.score === undefined ? null : r.score.toFixed(4)],
    ["tokens", run.usage ? String(run.usage.completion_tokens) : null],
    ["engine calls", r.engine_calls === undefined ? null : String(r.engine_calls)],
    ["nodes", String(nodes.size)], ["time", r.time_s === undefined ? null : r.time_s + " s"],
    ["stopped by", r.stopped_by || null],
  ];
  for (const [name, value] of rows) {
    if (value === null || value === undefined) continue;
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = name; dd.textContent = value; dd.dataset.fact = name;
    list.append(dt, dd);
  }
}

// --- saving and reopening -----------------------------------------------------------------------

function download() {
  const saved = {deliberate_ui: 1, request: run.request, answer: run.answer, usage: run.usage,
                 strategy: run.strategy, reasoning: run.reasoning, trace: [...nodes.values()]};
  const url = URL.createObjectURL(new Blob([JSON.stringify(saved, null, 1)],
                                           {type: "application/json"}));
  const a = document.createElement("a");
  a.href = url; a.download = "deliberate-search.json";
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function reopen() {
  const file = $("open").files[0];
  if (!file) return;
  try {
    const saved = JSON.parse(await file.text());
    if (!Array.isArray(saved.trace)) throw new Error("not a tree saved by this page");
    run = {request: saved.request, reasoning: saved.reasoning, answer: saved.answer || "",
           usage: saved.usage, strategy: saved.strategy, done: true};
    nodes = new Map();
    merge(saved.trace);
    if (saved.request && saved.request.messages) $("prompt").value = saved.request.messages[0].content;
    status("opened " + file.name);
    $("download").disabled = false;
    render();
  } catch (error) {
    status("error: " + error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", go);
  $("stop").addEventListener("click", () => controller && controller.abort());
  $("download").addEventListener("click", download);
  $("open").addEventListener("change", reopen);
  // leaving the page closes the stream: the server cancels the search and its engine requests
  window.addEventListener("pagehide", () => controller && controller.abort());
  setUp().catch((error) => status("error: " + error.message));
});
