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

  // -- requests ---------------------------------------------------------------------------
  const filters = $("filters");
  async function loadRequests() {
    if (filters.paused.checked) return;
    const q = new URLSearchParams({ limit: "200" });
    for (const name of ["api", "status", "token"]) {
      const value = filters[name].value.trim();
      if (value) q.set(name, value);
    }
    const data = await ctl("requests?" + q);
    render("requests", data, () => data.requests.slice().reverse().map((r) => {
      const why = r.reason || (r.problems || []).map((p) => `${p.field}: ${p.reason}`).join("; ");
      return el("tr", { className: "req" },
        el("td", {}, r.at), el("td", {}, r.api), el("td", {}, r.method), el("td", {}, r.path),
        el("td", { className: "status s" + String(r.status)[0] }, r.status), el("td", {}, r.ms),
        el("td", {}, r.request_id), el("td", { className: "token" }, r.token || ""),
        el("td", { className: "why" }, why || ""));
    }));
  }
  filters.addEventListener("input", () => loadRequests().catch(fail));

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
    const id = event.target.dataset && event.target.dataset.id;
    if (!id) return;
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
  reset.addEventListener("submit", async (event) => {
    event.preventDefault();
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
