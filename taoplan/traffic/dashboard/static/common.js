"use strict";
// Shared by every page: the key (sessionStorage only), JSON calls, small formatting helpers.
const TP = (() => {
  const body = document.body;
  const KEY = "taoplan.key";
  const needsKey = body.dataset.auth === "keys";
  const started = [];
  let running = false;

  function key() { return needsKey ? sessionStorage.getItem(KEY) : null; }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const k = key();
    if (k) h.Authorization = "Bearer " + k;
    return h;
  }

  function askKey(message) {
    const form = document.getElementById("key-form");
    if (!form) return;
    running = false;
    document.getElementById("main").hidden = true;
    form.hidden = false;
    const err = document.getElementById("key-error");
    err.hidden = !message;
    err.textContent = message || "";
    document.getElementById("forget-key").hidden = true;
    document.getElementById("key-input").focus();
  }

  function start() {
    if (needsKey && !key()) { askKey(); return; }
    if (running) return;
    running = true;
    document.getElementById("main").hidden = false;
    const forget = document.getElementById("forget-key");
    if (forget) forget.hidden = false;
    started.forEach((fn) => fn());
  }

  class Refused extends Error {
    constructor(status, error) {
      super((error && error.message) || ("HTTP " + status));
      this.status = status;
      this.code = error && error.code;
    }
  }

  async function api(path) {
    if (needsKey && !key()) { askKey(); throw new Refused(401, null); }
    const reply = await fetch(path, { headers: headers(), cache: "no-store" });
    let data = null;
    try { data = await reply.json(); } catch (e) { data = null; }
    if (reply.status === 401) {
      sessionStorage.removeItem(KEY);
      askKey((data && data.error && data.error.message) || "The key was refused.");
    }
    if (!reply.ok) throw new Refused(reply.status, data && data.error);
    return data;
  }

  // Call fn now and every ms while the page runs; errors go to the banner.
  function poll(fn, ms) {
    const tick = async () => {
      if (running) {
        try { await fn(); banner(""); } catch (e) { if (e.status !== 401) banner(e.message); }
      }
      setTimeout(tick, ms);
    };
    tick();
  }

  function banner(text) {
    const el = document.getElementById("banner");
    el.hidden = !text;
    el.textContent = text || "";
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  // Rows of a table with data-label on each cell (narrow screens show cells as "label: value").
  function fill(table, rows, empty) {
    const labels = [...table.tHead.rows[0].cells].map((c) => c.textContent);
    const tbody = table.tBodies[0];
    if (!rows.length) {
      tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: labels.length, text: empty })));
      return;
    }
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = el("tr");
      cells.forEach((cell, i) => {
        const td = el("td", { "data-label": labels[i] });
        if (cell instanceof Node) td.append(cell); else td.textContent = cell === null || cell === undefined ? "–" : String(cell);
        tr.append(td);
      });
      return tr;
    }));
  }

  function duration(s) {
    if (s === null || s === undefined) return null;
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (h) return h + "h" + String(m).padStart(2, "0") + "m";
    return m ? m + "m" + String(s % 60).padStart(2, "0") + "s" : s + "s";
  }
  function ms(v) { return v === null || v === undefined ? null : (v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms"); }
  function money(v) { return v === null || v === undefined ? "not priced" : v.toFixed(4); }
  function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : null; }
  function badge(state, reason) {
    return el("span", { class: "state " + state, title: reason || null, "data-state": state }, state,
      reason ? el("small", { class: "reason", text: reason }) : null);
  }

  const form = document.getElementById("key-form");
  if (form) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = document.getElementById("key-input");
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = "";
      form.hidden = true;
      start();
    });
    document.getElementById("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      askKey();
    });
  }
  document.addEventListener("DOMContentLoaded", start);

  return { api, poll, el, fill, duration, ms, money, time, badge, banner, headers,
           onStart: (fn) => started.push(fn), service: body.dataset.service };
})();
