/* The API index (`/`) and the Swagger UI page of one API (`/_mock/docs/<api>`). */
"use strict";
(() => {
  const origin = document.getElementById("origin");
  if (origin) origin.textContent = location.origin;
  if (!document.getElementById("swagger-ui")) return;
  const cfg = Sandbox.config();
  let ui = null;

  Sandbox.ctl("specs/" + encodeURIComponent(cfg.api)).then((spec) => {
    ui = SwaggerUIBundle({
      spec, dom_id: "#swagger-ui", deepLinking: true, displayRequestDuration: true,
      requestInterceptor: freshRequestId,
    });
    window.ui = ui;
  });

  /* "Try it out" fills X-Request-ID with the spec's example: every request gets its own id instead
     (one typed by hand is kept the first time it is sent). */
  const sent = new Set();
  function freshRequestId(req) {
    const name = Object.keys(req.headers || {}).find((h) => h.toLowerCase() === "x-request-id");
    if (name && (sent.has(req.headers[name]) || isExample(req.headers[name]))) {
      const bytes = crypto.getRandomValues(new Uint8Array(8));
      req.headers[name] = "req_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    }
    if (name) sent.add(req.headers[name]);
    return req;
  }
  let examples = null;
  function isExample(value) {
    if (examples === null) {
      examples = new Set();
      const walk = (node) => {
        if (!node || typeof node !== "object") return;
        if (typeof node.name === "string" && node.name.toLowerCase() === "x-request-id" && node.example) {
          examples.add(String(node.example));
        }
        Object.values(node).forEach(walk);
      };
      walk(ui && ui.specSelectors ? ui.specSelectors.specJson().toJS() : null);
    }
    return examples.has(value);
  }

  const form = document.getElementById("mint-form");
  const shown = document.getElementById("minted");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const scopes = [...form.querySelectorAll("input[name=scope]:checked")].map((i) => i.value);
    try {
      const minted = await Sandbox.ctl("tokens", {
        method: "POST",
        body: { api: cfg.api, scopes, mode: form.mode.value, account: form.account.value, name: "docs page" },
      });
      for (const scheme of cfg.schemes) ui.preauthorizeApiKey(scheme, minted.token);
      shown.replaceChildren(
        "Authorized with ", Sandbox.el("code", { id: "minted-token" }, minted.token),
        ` (${minted.id}, ${minted.mode}, account ${minted.account}, scopes: ${minted.scopes.join(" ") || "none"}).`,
      );
    } catch (err) {
      shown.replaceChildren("Could not mint a token: " + err.message);
    }
    shown.hidden = false;
  });
})();
