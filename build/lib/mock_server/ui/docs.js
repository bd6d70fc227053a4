/* The API index (`/`) and the Swagger UI page of one API (`/_mock/docs/<api>`). */
"use strict";
(() => {
  const origin = document.getElementById("origin");
  if (origin) origin.textContent = location.origin;
  if (!document.getElementById("swagger-ui")) return;
  const cfg = Sandbox.config();
  let ui = null;

  Sandbox.ctl("specs/" + encodeURIComponent(cfg.api)).then((spec) => {
    ui = SwaggerUIBundle({ spec, dom_id: "#swagger-ui", deepLinking: true, displayRequestDuration: true });
    window.ui = ui;
  });

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
