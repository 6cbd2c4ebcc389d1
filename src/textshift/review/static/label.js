// textshift labelling page. Dataset text is put in the page with textContent only, never as HTML.
"use strict";

const state = { items: [], index: 0, classes: [], selected: 0, summary: null, busy: false };
const token = new URLSearchParams(window.location.search).get("token");
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = { "Accept": "application/json" };
  if (token) headers["X-Textshift-Token"] = token;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method: options.method || "GET", headers,
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined });
  let payload = null;
  try { payload = await response.json(); } catch (error) { payload = null; }
  if (!response.ok) {
    const error = new Error((payload && payload.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return payload;
}

function say(text, kind) {
  const node = $("message");
  node.textContent = text || "";
  node.className = kind || "";
}

function item() { return state.items[state.index]; }

function showSummary(summary) {
  state.summary = summary;
  state.classes = summary.classes;
  const by = summary.by_status || {};
  $("done").textContent = String(by.relabeled || 0);
  $("skipped").textContent = String(by.ambiguous || 0);
  $("total").textContent = String(summary.items);
  $("dataset").textContent = summary.data || "";
  $("undo").disabled = !summary.can_undo;
}

function render() {
  const current = item();
  const classes = $("classes");
  classes.replaceChildren();
  if (!current) {
    $("text").textContent = "Nothing to label.";
    return;
  }
  $("position").textContent = `${state.index + 1} / ${state.items.length}`;
  $("status").textContent = current.status === "relabeled" ? `labelled ${current.current_label}`
    : current.status === "ambiguous" ? "skipped" : "not labelled yet";
  $("text").textContent = current.text;
  $("guess").textContent = current.predicted || "(none)";
  $("probability").textContent = current.predicted_probability == null ? ""
    : `(${(100 * current.predicted_probability).toFixed(1)}%)`;
  $("reason").textContent = current.reason ? `why it was picked: ${current.reason}` : "";
  state.classes.forEach((name, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "option");
    button.dataset.label = name;
    if (i < 9) {
      const key = document.createElement("kbd");
      key.textContent = String(i + 1);
      button.append(key);
    }
    button.append(document.createTextNode(name));
    if (i === state.selected) { button.classList.add("selected"); button.setAttribute("aria-selected", "true"); }
    if (current.status === "relabeled" && current.current_label === name) button.classList.add("current");
    button.addEventListener("click", () => decide("relabel", name));
    classes.append(button);
  });
}

function preselect() {
  const current = item();
  if (!current) return;
  const wanted = current.status === "relabeled" ? current.current_label : current.predicted;
  const at = state.classes.indexOf(wanted);
  state.selected = at >= 0 ? at : 0;
}

function go(index) {
  state.index = Math.max(0, Math.min(index, state.items.length - 1));
  preselect();
  render();
}

function nextOpen(from) {
  for (let i = from; i < state.items.length; i++) if (state.items[i].status === "unreviewed") return i;
  for (let i = 0; i < from; i++) if (state.items[i].status === "unreviewed") return i;
  return -1;
}

function merge(results) {
  for (const result of results) {
    const found = state.items.find((it) => it.row === result.row);
    if (found) { found.status = result.status; found.current_label = result.current_label; }
  }
}

async function decide(action, label) {
  const current = item();
  if (!current || state.busy) return;
  state.busy = true;
  try {
    const payload = await api("/api/edits", { method: "POST", body: { row: current.row, action, label } });
    merge([payload.item]);
    showSummary(payload.summary);
    say(action === "relabel" ? `saved: ${label}` : "skipped", "ok");
    const next = nextOpen(state.index + 1);
    if (next >= 0) go(next); else { say("every text has a decision; export when ready", "ok"); go(state.index); }
  } catch (error) {
    say(error.message, "error");
  } finally {
    state.busy = false;
  }
}

async function undo() {
  if (state.busy) return;
  state.busy = true;
  try {
    const payload = await api("/api/undo", { method: "POST", body: {} });
    merge(payload.items);
    showSummary(payload.summary);
    if (payload.items.length) {
      const at = state.items.findIndex((it) => it.row === payload.items[0].row);
      if (at >= 0) go(at);
      say("undone", "ok");
    } else {
      say("nothing to undo", "");
    }
  } catch (error) {
    say(error.message, "error");
  } finally {
    state.busy = false;
  }
}

async function exportLabels(overwrite = false) {
  const name = $("export-name").value;
  try {
    const result = await api("/api/export", { method: "POST", body: { name, overwrite } });
    say(`wrote ${result.rows} labelled texts to ${result.output}`, "ok");
  } catch (error) {
    if (error.status === 409 && !overwrite && window.confirm(`${error.message}\n\nOverwrite it?`)) {
      return exportLabels(true);
    }
    say(error.message, "error");
  }
}

function onKey(event) {
  const typing = event.target && (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA");
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (/^[1-9]$/.test(key)) {
    const name = state.classes[Number(key) - 1];
    if (name !== undefined) { state.selected = Number(key) - 1; decide("relabel", name); }
  } else if (key === "Enter") {
    if (state.classes.length) decide("relabel", state.classes[state.selected]);
  } else if (key === "s") {
    decide("ambiguous", null);
  } else if (key === "u") {
    undo();
  } else if (key === "n") {
    $("new-label").focus();
  } else if (key === "ArrowDown") {
    state.selected = (state.selected + 1) % Math.max(1, state.classes.length); render();
  } else if (key === "ArrowUp") {
    state.selected = (state.selected - 1 + state.classes.length) % Math.max(1, state.classes.length); render();
  } else if (key === "ArrowRight") {
    go(state.index + 1);
  } else if (key === "ArrowLeft") {
    go(state.index - 1);
  } else {
    return;
  }
  event.preventDefault();
}

async function load() {
  try {
    showSummary(await api("/api/summary"));
    const items = [];
    for (let offset = 0; ; offset += 500) {
      const page = await api(`/api/items?offset=${offset}&limit=500`);
      items.push(...page.items);
      if (items.length >= page.total || page.items.length === 0) break;
    }
    state.items = items;
    const first = nextOpen(0);
    go(first >= 0 ? first : 0);
    document.body.dataset.ready = "1";
  } catch (error) {
    say(error.message, "error");
  }
}

document.addEventListener("keydown", onKey);
$("undo").addEventListener("click", undo);
$("export").addEventListener("click", () => exportLabels(false));
$("save").addEventListener("click", () => state.classes.length && decide("relabel", state.classes[state.selected]));
$("skip").addEventListener("click", () => decide("ambiguous", null));
$("prev").addEventListener("click", () => go(state.index - 1));
$("next").addEventListener("click", () => go(state.index + 1));
$("new-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const label = $("new-label").value.trim();
  if (!label) { say("type a label first", "error"); return; }
  $("new-label").value = "";
  $("new-label").blur();
  decide("relabel", label);
});
load();
