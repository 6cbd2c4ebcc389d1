// textshift review page. Every piece of dataset text is put in the page with textContent, never as HTML.
"use strict";

const PAGE_SIZE = 50;
const state = { items: [], selected: 0, offset: 0, total: 0, summary: null, classes: [], busy: false, pageRequest: 0 };
const token = new URLSearchParams(window.location.search).get("token");
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const headers = { "Accept": "application/json" };
  if (token) headers["X-Textshift-Token"] = token;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET", headers,
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  let payload = null;
  try { payload = await response.json(); } catch (error) { payload = null; }
  if (!response.ok) {
    const detail = payload && (payload.error || (payload.detail && JSON.stringify(payload.detail)));
    const error = new Error(detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return payload;
}

function say(text, kind) {
  const message = $("message");
  message.textContent = text || "";
  message.className = kind || "";
}

function filters() {
  const params = new URLSearchParams();
  params.set("view", $("f-view").value);
  const pairs = [["label", "f-label"], ["predicted", "f-predicted"], ["issue", "f-issue"], ["status", "f-status"],
                 ["min_score", "f-min"], ["max_score", "f-max"], ["q", "f-search"]];
  for (const [name, id] of pairs) {
    const value = $(id).value.trim();
    if (value !== "") params.set(name, value);
  }
  return params;
}

function renderSummary(summary) {
  state.summary = summary;
  $("reviewed").textContent = summary.reviewed.toLocaleString("en");
  $("suspicious").textContent = summary.suspicious.toLocaleString("en");
  $("undo").disabled = !summary.can_undo;
}

async function loadSummary() {
  const summary = await api("/api/summary");
  renderSummary(summary);
  $("dataset").textContent = summary.data ? `— ${summary.data}` : "";
  state.classes = summary.classes;
  for (const id of ["f-label", "f-predicted"]) {
    const select = $(id);
    for (const name of summary.classes) select.append(el("option", { value: name }, name));
  }
  const list = $("class-list");
  for (const name of summary.classes) list.append(el("option", { value: name }));
  $("export-name").value = summary.export.suggested_name;
  $("export").disabled = !summary.export.enabled;
  $("export-name").disabled = !summary.export.enabled;
}

async function loadPage(keepSelection) {
  const params = filters();
  params.set("offset", String(state.offset));
  params.set("limit", String(PAGE_SIZE));
  const request = ++state.pageRequest;
  const page = await api(`/api/items?${params}`);
  if (request !== state.pageRequest) return;  // a newer filter or page was asked for meanwhile
  state.items = page.items;
  state.total = page.total;
  if (!keepSelection) state.selected = 0;
  state.selected = Math.min(state.selected, Math.max(0, state.items.length - 1));
  renderList();
  renderDetail();
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

function classSelect(item) {
  const select = el("select", { class: "relabel", "aria-label": `new label for item ${item.row}` });
  for (const name of state.classes) {
    const option = el("option", { value: name }, name);
    if (name === (item.suggested_label || item.current_label)) option.selected = true;
    select.append(option);
  }
  return select;
}

function renderItem(item, index) {
  const card = el("article", { class: `item status-${item.status}`, dataset: { row: String(item.row) },
                               tabindex: "-1" });
  if (index === state.selected) card.classList.add("selected");
  card.addEventListener("click", (event) => {
    if (event.target.closest("button, select, input")) return;
    select(index);
  });
  const text = el("div", { class: "text" }, item.text);
  const labels = el("div", { class: "labels" });
  if (item.label !== null) {
    const given = el("span", { class: "given" }, "given ", el("b", {}, item.label));
    labels.append(given);
    if (item.current_label !== null && item.current_label !== item.label && item.status !== "deleted") {
      labels.append(el("span", { class: "now" }, " → now ", el("b", {}, item.current_label)));
    }
  }
  if (item.predicted) {
    labels.append(el("span", { class: "predicted" }, "predicted ", el("b", {}, item.predicted),
                     ` (${percent(item.predicted_probability)})`));
  }
  if (item.suggested_label) {
    labels.append(el("span", { class: "suggested" }, "suggested ", el("b", {}, item.suggested_label)));
  }
  const badges = el("div", { class: "badges" });
  for (const issue of item.issues) badges.append(el("span", { class: `badge issue-${issue}` }, issue.replace("_", " ")));
  badges.append(el("span", { class: "score" }, `score ${item.score.toFixed(3)}`));
  badges.append(el("span", { class: `badge state state-${item.status}` }, item.status));
  badges.append(el("span", { class: "muted rownum" }, `row ${item.row}`));
  const actions = el("div", { class: "item-actions" });
  actions.append(el("button", { type: "button", class: "keep", onclick: () => act(item, "keep") }, "Keep"));
  if (state.classes.length) {
    const chooser = classSelect(item);
    actions.append(chooser, el("button", { type: "button", class: "do-relabel",
                                           onclick: () => act(item, "relabel", chooser.value) }, "Relabel"));
  }
  actions.append(el("button", { type: "button", class: "delete", onclick: () => act(item, "delete") }, "Delete"));
  actions.append(el("button", { type: "button", class: "ambiguous", onclick: () => act(item, "ambiguous") },
                    "Ambiguous"));
  card.append(text, labels, badges, actions);
  return card;
}

function renderList() {
  const list = $("list");
  list.replaceChildren(...state.items.map(renderItem));
  if (!state.items.length) list.append(el("p", { class: "empty" }, "No items match these filters."));
  const first = state.total ? state.offset + 1 : 0;
  const last = state.offset + state.items.length;
  $("range").textContent = `${first.toLocaleString("en")}–${last.toLocaleString("en")} of ${state.total.toLocaleString("en")}`;
  $("prev").disabled = state.offset === 0;
  $("next").disabled = last >= state.total;
}

async function renderDetail() {
  const aside = $("detail");
  const item = state.items[state.selected];
  if (!item) { aside.replaceChildren(); return; }
  const row = item.row;
  let detail;
  try { detail = await api(`/api/items/${row}`); } catch (error) { say(error.message, "error"); return; }
  if (!state.items[state.selected] || state.items[state.selected].row !== row) return;  // selection moved on
  const parts = [el("h2", {}, `Row ${row}`)];
  if (detail.duplicates.length) {
    parts.push(el("h3", {}, `Duplicate set (${detail.duplicates.length})`));
    const list = el("ul", { class: "duplicates" });
    for (const other of detail.duplicates) {
      const keep = el("button", { type: "button", class: "keep-one",
                                  onclick: () => keepOne(detail.duplicate_group, other.row) },
                      "Keep this one, delete the rest");
      list.append(el("li", { class: `status-${other.status}` }, el("span", { class: "text" }, other.text),
                     el("span", { class: "muted" }, ` — ${other.current_label ?? ""} · row ${other.row} · ${other.status}`),
                     " ", keep));
    }
    parts.push(list);
  }
  parts.push(el("h3", {}, "Most similar items"));
  const similar = el("ul", { class: "similar" });
  for (const other of detail.similar) {
    similar.append(el("li", {}, el("span", { class: "text" }, other.text),
                      el("span", { class: "muted" }, ` — ${other.current_label ?? ""} · row ${other.row}`)));
  }
  parts.push(similar);
  aside.replaceChildren(...parts);
}

function select(index) {
  if (!state.items.length) return;
  state.selected = Math.max(0, Math.min(index, state.items.length - 1));
  for (const [i, card] of [...document.querySelectorAll("#list .item")].entries()) {
    card.classList.toggle("selected", i === state.selected);
    if (i === state.selected) card.scrollIntoView({ block: "nearest" });
  }
  renderDetail();
}

function applyResults(results) {
  for (const result of results) {
    const item = state.items.find((candidate) => candidate.row === result.row);
    if (item) { item.status = result.status; item.current_label = result.current_label; }
  }
}

async function act(item, action, label) {
  if (state.busy) return;
  state.busy = true;
  try {
    const body = { row: item.row, action };
    if (label !== undefined) body.label = label;
    const answer = await api("/api/edits", { method: "POST", body });
    applyResults([answer.item]);
    renderSummary(answer.summary);
    const index = state.items.indexOf(item);
    renderList();
    select(index + 1 < state.items.length ? index + 1 : index);
    say(`row ${item.row}: ${answer.item.status}${action === "relabel" ? ` as ${label}` : ""} — saved`, "ok");
  } catch (error) {
    say(`not saved: ${error.message}`, "error");
  } finally {
    state.busy = false;
  }
}

async function keepOne(group, row) {
  try {
    const answer = await api(`/api/duplicates/${group}/keep`, { method: "POST", body: { row } });
    applyResults(answer.items);
    renderSummary(answer.summary);
    renderList();
    renderDetail();
    say(`kept row ${row}, deleted ${answer.items.length - 1} duplicate(s) — saved`, "ok");
  } catch (error) {
    say(`not saved: ${error.message}`, "error");
  }
}

async function undo() {
  try {
    const answer = await api("/api/undo", { method: "POST", body: {} });
    applyResults(answer.items);
    renderSummary(answer.summary);
    renderList();
    renderDetail();
    say(answer.items.length ? `undone: row ${answer.items.map((i) => i.row).join(", ")}` : "nothing to undo", "ok");
  } catch (error) {
    say(`undo failed: ${error.message}`, "error");
  }
}

async function exportData() {
  const name = $("export-name").value.trim();
  try {
    let answer;
    try {
      answer = await api("/api/export", { method: "POST", body: { name, overwrite: false } });
    } catch (error) {
      if (error.status !== 409) throw error;  // 409: the file (or its changes file) exists and may be replaced
      const existing = error.message.split(";")[0];
      if (!window.confirm(`${existing}. Replace it?`)) { say(`not exported: ${existing}`, "error"); return; }
      answer = await api("/api/export", { method: "POST", body: { name, overwrite: true } });
    }
    say(`exported ${answer.rows.toLocaleString("en")} rows to ${answer.output} (${answer.relabeled} relabeled, ` +
        `${answer.deleted} deleted, ${answer.ambiguous} ambiguous); changes in ${answer.changes}`, "ok");
  } catch (error) {
    say(`export failed: ${error.message}`, "error");
  }
}

function openRelabel() {
  const item = state.items[state.selected];
  if (!item || !state.classes.length) return;
  const box = $("relabel-box");
  box.hidden = false;
  const input = $("relabel-input");
  input.value = "";
  input.placeholder = item.suggested_label || item.current_label || "";
  input.focus();
}

function closeRelabel() {
  $("relabel-box").hidden = true;
  document.activeElement.blur();
}

function resolveClass(typed) {
  const wanted = typed.trim().toLowerCase();
  if (!wanted) return null;
  const exact = state.classes.find((name) => name.toLowerCase() === wanted);
  if (exact) return exact;
  const matches = state.classes.filter((name) => name.toLowerCase().startsWith(wanted));
  return matches.length === 1 ? matches[0] : null;
}

function onRelabelKey(event) {
  if (event.key === "Escape") { event.preventDefault(); closeRelabel(); return; }
  if (event.key !== "Enter") return;
  event.preventDefault();
  const input = $("relabel-input");
  const name = resolveClass(input.value || input.placeholder);
  if (!name) { say(`no single class matches "${input.value}"`, "error"); return; }
  const item = state.items[state.selected];
  closeRelabel();
  if (item) act(item, "relabel", name);
}

function onKey(event) {
  const target = event.target;
  if (target.closest && target.closest("input, select, textarea")) {
    if (event.key === "Escape") target.blur();
    return;
  }
  if (event.ctrlKey && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); return; }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const item = state.items[state.selected];
  const keys = {
    j: () => select(state.selected + 1), ArrowDown: () => select(state.selected + 1),
    k: () => select(state.selected - 1), ArrowUp: () => select(state.selected - 1),
    y: () => item && act(item, "keep"),
    s: () => item && (item.suggested_label || item.predicted) &&
      act(item, "relabel", item.suggested_label || item.predicted),
    r: openRelabel, d: () => item && act(item, "delete"), Delete: () => item && act(item, "delete"),
    a: () => item && act(item, "ambiguous"), u: undo,
    "/": () => $("f-search").focus(),
    n: () => { if (!$("next").disabled) $("next").click(); },
    p: () => { if (!$("prev").disabled) $("prev").click(); },
  };
  const handler = keys[event.key];
  if (handler) { event.preventDefault(); handler(); }
}

let searchTimer = null;
function refilter() {
  state.offset = 0;
  loadPage(false).catch((error) => say(error.message, "error"));
}

function init() {
  $("undo").addEventListener("click", undo);
  $("export").addEventListener("click", exportData);
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadPage(false); });
  $("next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadPage(false); });
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); refilter(); });
  for (const id of ["f-view", "f-label", "f-predicted", "f-issue", "f-status", "f-min", "f-max"]) {
    $(id).addEventListener("change", refilter);
  }
  $("f-search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(refilter, 250); });
  $("relabel-input").addEventListener("keydown", onRelabelKey);
  $("relabel-input").addEventListener("blur", () => { $("relabel-box").hidden = true; });
  document.addEventListener("keydown", onKey);
  // The first page is requested together with the summary, so it shows after one round trip.
  Promise.all([loadSummary(), loadPage(false)])
    .then(() => { document.body.dataset.ready = "1"; renderList(); })
    .catch((error) => say(error.message, "error"));
}

document.addEventListener("DOMContentLoaded", init);
