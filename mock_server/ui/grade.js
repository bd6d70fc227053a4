/* The dashboard's client grade panel: `GET /_mock/grade` for an API and a token (a token row's
   "Grade" button fills the form). Failed rules first, then passed, then those never exercised. */
"use strict";
(() => {
  const { ctl, el } = Sandbox;
  const form = document.getElementById("grade-form");
  const ORDER = { fail: 0, pass: 1, "not exercised": 2 };

  async function grade() {
    const q = new URLSearchParams({ api: form.api.value });
    const token = form.token.value.trim();
    if (token) q.set("token", token);
    const summary = document.getElementById("grade-summary");
    let data;
    try {
      data = await ctl("grade?" + q);
    } catch (err) {
      summary.textContent = "Could not grade: " + err.message;
      summary.hidden = false;
      return;
    }
    const who = data.token ? ` of ${data.token}` : "";
    summary.textContent = `${data.api}: ${data.requests} request(s)${who} — ` +
      (data.passed ? "no rule broken" : `${data.failed.length} rule(s) broken: ${data.failed.join(", ")}`);
    summary.hidden = false;
    const rules = data.rules.slice().sort((a, b) => ORDER[a.verdict] - ORDER[b.verdict]);
    document.getElementById("grades").tBodies[0].replaceChildren(...rules.map((r) => {
      const row = el("tr", { className: "rule " + r.verdict.replace(" ", "-") },
        el("td", { title: r.title }, r.id),
        el("td", { className: "verdict" }, r.verdict),
        el("td", {}, r.message),
        el("td", { className: "evidence" }, r.evidence.join(" ")),
        el("td", {}, r.basis + (r.inferred ? ` (inferred: ${r.inferred})` : "")));
      row.dataset.rule = r.id;
      return row;
    }));
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); grade(); });

  /* Each token row gets a "Grade" button beside "Revoke". */
  const tokens = document.getElementById("tokens");
  new MutationObserver(() => {
    for (const row of tokens.tBodies[0].rows) {
      if (row.querySelector("button.grade")) continue;
      const id = row.id.replace(/^token-/, "");
      const button = el("button", { type: "button", className: "grade", textContent: "Grade" });
      button.addEventListener("click", () => {
        form.api.value = row.cells[1].textContent;
        form.token.value = id;
        grade();
        form.scrollIntoView();
      });
      row.lastElementChild.append(" ", button);
    }
  }).observe(tokens.tBodies[0], { childList: true });
})();
