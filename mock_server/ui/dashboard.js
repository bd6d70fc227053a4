/* The dashboard (`/_mock/ui`): the control API is its only backend. */
"use strict";
(() => {
  const { ctl, el } = Sandbox;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  const cfg = Sandbox.config();

  function fail(err) {
    console.warn("control API:", err.message);
  }

  /* Replace a table's rows only when its data changed: rows stay put (and clickable) between polls. */
  const shown = new Map();
  function render(table, data, rows) {
    const key = JSON.stringify(data);
    if (shown.get(table) === key) return;
    shown.set(table, key);
    $(table).tBodies[0].replaceChildren(...rows());
  }

  // -- requests: a page of the bounded log, newest first; a row opens its bodies ------------
  const PAGE = 50;
  const filters = $("filters");
  let offset = 0;  // how many of the newest matches to skip
  async function loadRequests() {
    if (filters.paused.checked) return;
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    for (const name of ["api", "status", "token"]) {
      const value = filters[name].value.trim();
      if (value) q.set(name, value);
    }
    const data = await ctl("requests?" + q);
    const first = data.total ? offset + 1 : 0;
    $("page-info").textContent = `${first}–${offset + data.requests.length} of ${data.total} (newest first)`;
    $("newer").disabled = offset === 0;
    $("older").disabled = offset + PAGE >= data.total;
    render("requests", data.requests, () => data.requests.slice().reverse().map((r) => {
      const why = r.reason || (r.problems || []).map((p) => `${p.field}: ${p.reason}`).join("; ");
      const row = el("tr", { className: "req" },
        el("td", {}, r.at), el("td", {}, r.api), el("td", {}, r.method), el("td", {}, r.path),
        el("td", { className: "status s" + String(r.status)[0] }, r.status), el("td", {}, r.ms),
        el("td", {}, r.request_id), el("td", { className: "token" }, r.token || ""),
        el("td", { className: "why" }, why || ""));
      row.dataset.requestId = r.request_id;
      return row;
    }));
  }
  function page(to) {
    offset = Math.max(0, to);
    loadRequests().catch(fail);
  }
  filters.addEventListener("input", () => page(0));
  $("newer").addEventListener("click", () => page(offset - PAGE));
  $("older").addEventListener("click", () => page(offset + PAGE));
  function bodyText(body) {
    if (!body) return "(no body)";
    let text = body.text;
    try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (err) { /* not JSON: as sent */ }
    return body.truncated ? `${text}\n… (first 4 KiB of ${body.bytes} bytes)` : text;
  }
  $("requests").addEventListener("click", async (event) => {
    const row = event.target.closest("tr");
    if (!row || !row.dataset.requestId) return;
    const q = new URLSearchParams({ request_id: row.dataset.requestId, bodies: "1", limit: "1" });
    const found = (await ctl("requests?" + q).catch(fail) || { requests: [] }).requests[0];
    if (!found) return;
    $("exchange-title").textContent = `${found.method} ${found.path} → ${found.status} (${found.request_id})`;
    $("request-body").textContent = bodyText(found.request_body);
    $("response-body").textContent = bodyText(found.response_body);
    $("exchange").hidden = false;
  });

  // -- tokens -----------------------------------------------------------------------------
  async function loadTokens() {
    const data = await ctl("tokens");
    render("tokens", data, () => data.tokens.map((t) => {
      const revoke = el("button", { type: "button", className: "revoke", textContent: "Revoke" });
      revoke.dataset.id = t.id;
      return el("tr", { id: "token-" + t.id },
        el("td", {}, t.id), el("td", {}, t.api), el("td", {}, t.masked), el("td", {}, t.scopes.join(" ")),
        el("td", {}, t.mode), el("td", {}, t.account), el("td", {}, t.name || ""), el("td", {}, t.created_at),
        el("td", {}, revoke));
    }));
  }
  $("tokens").addEventListener("click", async (event) => {
    const button = event.target;
    const id = button.dataset && button.dataset.id;
    if (!id) return;
    if (!button.dataset.armed) {  // the first click asks; the second, within 5 s, revokes
      button.dataset.armed = "1";
      button.textContent = "Confirm revoke";
      button.classList.add("armed");
      setTimeout(() => {
        delete button.dataset.armed;
        button.textContent = "Revoke";
        button.classList.remove("armed");
      }, 5000);
      return;
    }
    await ctl("tokens/" + encodeURIComponent(id), { method: "DELETE" }).catch(fail);
    await loadTokens().catch(fail);
  });
  const mint = $("mint-form");
  mint.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { api: mint.api.value, mode: mint.mode.value, account: mint.account.value, name: "dashboard" };
    const scopes = mint.scopes.value.split(/[\s,]+/).filter(Boolean);
    if (scopes.length) body.scopes = scopes;
    const shown = $("minted");
    try {
      const minted = await ctl("tokens", { method: "POST", body });
      shown.replaceChildren("New token (shown once): ", el("code", { id: "minted-token" }, minted.token),
        ` — ${minted.id}, scopes: ${minted.scopes.join(" ")}`);
      await loadTokens();
    } catch (err) {
      shown.replaceChildren("Could not mint: " + err.message);
    }
    shown.hidden = false;
  });

  // -- resources --------------------------------------------------------------------------
  const browse = $("browse");
  let collection = null;
  async function loadCollections() {
    const api = browse.api.value;
    const data = (await ctl("resources?api=" + encodeURIComponent(api))).apis[api];
    const chosen = browse.owner.value;
    const owners = data.owners.length ? data.owners : [{ account: "default", mode: "test", records: 0 }];
    browse.owner.replaceChildren(...owners.map((o) =>
      el("option", { value: o.account + "\n" + o.mode, selected: o.account + "\n" + o.mode === chosen },
        `${o.account} (${o.mode}): ${o.records}`)));
    $("collections").replaceChildren(...Object.entries(data.collections).map(([name, n]) => {
      const item = el("li", { className: name === collection ? "chosen" : "" }, `${name} (${n})`);
      item.dataset.collection = name;
      return item;
    }));
    if (collection) await loadRecords();
  }
  function owner() {
    const [account, mode] = (browse.owner.value || "default\ntest").split("\n");
    return new URLSearchParams({ account, mode });
  }
  async function loadRecords() {
    const api = encodeURIComponent(browse.api.value);
    const data = await ctl(`resources/${api}/${encodeURIComponent(collection)}?${owner()}`);
    render("records", data, () => data.items.map((r) => {
      const row = el("tr", {}, el("td", {}, r.id), el("td", {}, r.name || ""), el("td", {}, r.status || ""));
      row.dataset.id = r.id;
      return row;
    }));
  }
  browse.addEventListener("change", () => { collection = null; loadCollections().catch(fail); });
  $("collections").addEventListener("click", (event) => {
    collection = event.target.dataset.collection || collection;
    loadRecords().catch(fail);
  });
  $("records").addEventListener("click", async (event) => {
    const row = event.target.closest("tr");
    if (!row) return;
    const api = encodeURIComponent(browse.api.value);
    const record = await ctl(`resources/${api}/${encodeURIComponent(collection)}/${encodeURIComponent(row.dataset.id)}?${owner()}`);
    $("record").textContent = JSON.stringify(record, null, 2);
  });

  // -- clock ------------------------------------------------------------------------------
  async function loadClock() {
    const data = await ctl("settling");
    $("now").textContent = data.now;
    render("settling", data.settling, () => data.settling.map((s) =>
      el("tr", {}, el("td", {}, s.api), el("td", {}, s.collection), el("td", {}, s.id),
        el("td", {}, `${s.account} (${s.mode})`), el("td", {}, s.status), el("td", {}, s.next),
        el("td", {}, s.in_seconds))));
  }
  const advance = $("advance-form");
  advance.addEventListener("submit", async (event) => {
    event.preventDefault();
    await ctl("clock/advance", { method: "POST", body: { seconds: Number(advance.seconds.value) } }).catch(fail);
    await Promise.all([loadClock(), loadCollections()]).catch(fail);
  });

  // -- reset ------------------------------------------------------------------------------
  const reset = $("reset-form");
  const confirmReset = $("reset-confirm");
  reset.addEventListener("submit", (event) => {  // asks first: what will be lost, then Yes or Cancel
    event.preventDefault();
    const what = [reset.api.value ? `every record of ${reset.api.value}` : "every record of every API"];
    if (reset.tokens.checked) what.push("its tokens and users");
    if (reset.requests.checked) what.push("the request log");
    confirmReset.firstElementChild.textContent = `Reset ${what.join(", ")}? This cannot be undone. `;
    confirmReset.hidden = false;
    $("reset-yes").focus();
  });
  $("reset-no").addEventListener("click", () => { confirmReset.hidden = true; });
  $("reset-yes").addEventListener("click", async () => {
    confirmReset.hidden = true;
    const body = { tokens: reset.tokens.checked, requests: reset.requests.checked };
    if (reset.api.value) body.api = reset.api.value;
    const done = await ctl("reset", { method: "POST", body }).catch(fail);
    const shown = $("reset-result");
    shown.textContent = done ? `Reset ${done.reset}${done.tokens ? ", tokens too" : ""}.` : "Reset failed.";
    shown.hidden = false;
    await refresh();
  });

  async function refresh() {
    await Promise.all([loadRequests(), loadTokens(), loadClock(), loadCollections()]).catch(fail);
  }
  let busy = false;
  let ticks = 0;
  async function tick() {
    if (busy) return;
    busy = true;
    ticks += 1;
    try {
      // the request log every second; tokens, the clock and what is settling every third
      await Promise.all(ticks % 3 ? [loadRequests()] : [loadRequests(), loadTokens(), loadClock()]);
    } catch (err) {
      fail(err);
    }
    busy = false;
  }
  refresh().then(() => setInterval(tick, POLL_MS));
  window.sandboxDashboard = { refresh, apis: cfg.apis };
})();
