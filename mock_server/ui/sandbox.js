/* Shared by the sandbox's pages: calls to the control API (/_mock), with the admin token when
   the sandbox has one (asked for on the first 401, kept in this tab's sessionStorage only). */
"use strict";
const Sandbox = (() => {
  const KEY = "sandboxAdminToken";
  let asking = null;

  function askAdminToken(refused) {
    if (asking) return asking;
    asking = new Promise((resolve) => {
      const form = document.createElement("form");
      form.id = "admin-login";
      form.className = "helper";
      const text = document.createElement("p");
      text.textContent = "This sandbox was started with an admin token (serve --admin-token, or " +
        "$SANDBOX_ADMIN_TOKEN): enter it to use the control API (kept in this browser tab only).";
      if (refused) {
        const wrong = document.createElement("p");
        wrong.id = "admin-refused";
        wrong.className = "refused";
        wrong.textContent = "The sandbox refused that admin token (401): it is not the value the " +
          "sandbox was started with. Check serve --admin-token / $SANDBOX_ADMIN_TOKEN and try again.";
        form.append(wrong);
      }
      const input = document.createElement("input");
      input.type = "password";
      input.name = "admin";
      input.autocomplete = "off";
      input.size = 32;
      const button = document.createElement("button");
      button.type = "submit";
      button.textContent = "Use";
      form.append(text, input, " ", button);
      document.querySelector("header").after(form);
      input.focus();
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value);
        form.remove();
        asking = null;
        resolve();
      });
    });
    return asking;
  }

  async function ctl(path, options) {
    const opts = options || {};
    for (;;) {
      const headers = {};
      const admin = sessionStorage.getItem(KEY);
      if (admin) headers.Authorization = "Bearer " + admin;
      const init = { method: opts.method || "GET", headers };
      if (opts.body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(opts.body);
      }
      const response = await fetch("/_mock/" + path, init);
      if (response.status === 401) {
        sessionStorage.removeItem(KEY);
        await askAdminToken(Boolean(admin));  // a token was sent and refused: say so
        continue;
      }
      const data = response.status === 204 ? null : await response.json();
      if (!response.ok) {
        throw new Error((data && data.error && data.error.message) || response.statusText);
      }
      return data;
    }
  }

  /* Elements from data: text only (a request path is whatever a client sent). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
    }
    return node;
  }

  function config() {
    return JSON.parse(document.getElementById("config").textContent);
  }

  return { ctl, el, config };
})();
