"use strict";
// The conversation browser: filters over the embedded sample, 25 conversations a page.
// Text goes in with textContent only: model output never becomes markup.
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const all = data.conversations;
  const PAGE = 25;
  let page = 0;
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function fill(select, values) {
    [...new Set(values)].sort().forEach((value) => {
      const option = el("option", null, value);
      option.value = value;
      select.appendChild(option);
    });
  }

  fill($("f-persona"), all.map((c) => c.persona));
  fill($("f-split"), all.map((c) => c.split));
  fill($("f-model"), all.map((c) => c.model));
  fill($("f-layer"), all.flatMap((c) => c.layers));
  fill($("f-axis"), all.flatMap((c) => Object.keys(c.scores)));
  data.flags.forEach((flag) => {
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.value = flag;
    box.id = "flag-" + flag;
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + flag));
    $("f-flags").appendChild(label);
  });

  function matching() {
    const persona = $("f-persona").value, split = $("f-split").value;
    const model = $("f-model").value, layer = $("f-layer").value;
    const flags = [...document.querySelectorAll("#f-flags input:checked")].map((box) => box.value);
    const axis = $("f-axis").value, least = Number($("f-min").value) || 1;
    return all.filter((c) =>
      (!persona || c.persona === persona) && (!split || c.split === split) && (!model || c.model === model) &&
      (!layer || (layer === "(none)" ? c.layers.length === 0 : c.layers.includes(layer))) &&
      flags.every((flag) => c.flags.includes(flag)) &&
      (!axis || (axis in c.scores && c.scores[axis] >= least)));
  }

  function bubble(label, text) {
    const node = el("div", "bubble");
    node.appendChild(el("span", "label", label));
    if (text !== null) node.appendChild(document.createTextNode(text));
    return node;
  }

  function diffBubble(label, runs, keep) {
    // keep "-" runs for the clean side, "+" runs for the noisy side
    const node = bubble(label, null);
    runs.forEach(([op, text]) => {
      if (op === "=") node.appendChild(document.createTextNode(text));
      else if (op === keep) node.appendChild(el(op === "-" ? "del" : "ins", null, text));
    });
    return node;
  }

  function userTurn(message) {
    const row = el("div", "turn user");
    if (message.diff) {
      const noise = "noised: " + message.layer + (message.strategies.length ? " (" + message.strategies.join(", ") + ")" : "");
      row.appendChild(diffBubble("user, clean", message.diff, "-"));
      row.appendChild(diffBubble("user, " + noise, message.diff, "+"));
    } else {
      row.appendChild(bubble("user" + (message.fallback ? ", noise fell back: " + message.fallback : ""), message.text));
      row.appendChild(bubble("user, sent as is", message.text));
    }
    return row;
  }

  function conversation(c) {
    const box = el("article", "conversation");
    box.dataset.id = c.id;
    box.appendChild(el("h3", null, c.persona + " · " + c.id));
    const tags = el("div");
    [c.split, c.model, c.turns + " turns", c.termination, ...c.layers].forEach((t) => tags.appendChild(el("span", "tag", t)));
    c.flags.forEach((t) => tags.appendChild(el("span", "tag flag", t)));
    Object.entries(c.scores).forEach(([axis, score]) => tags.appendChild(el("span", "tag score", axis + " " + score)));
    box.appendChild(tags);
    box.appendChild(el("p", "muted", "persona: " + Object.entries(c.features).map(([k, v]) => k + "=" + v).join(", ")));
    box.appendChild(el("p", "muted", "original query: " + c.original_query +
      (c.rewritten ? "  →  rewritten: " + c.rewritten : c.style_fallback ? "  (rewrite fell back: " + c.style_fallback + ")" : "")));
    c.messages.forEach((m) => {
      if (m.role === "user") box.appendChild(userTurn(m));
      else {
        const row = el("div", "turn assistant");
        row.appendChild(bubble("assistant, " + m.model + (m.truncated ? ", truncated" : ""), m.text));
        box.appendChild(row);
      }
    });
    if (c.violations.length) {
      const list = el("ul", "violations");
      c.violations.forEach((v) => list.appendChild(el("li", null,
        v.role + ": " + v.reason + (v.repaired ? " (repaired)" : " (kept, flagged)") + (v.detail ? ": " + v.detail : ""))));
      box.appendChild(list);
    }
    return box;
  }

  function render() {
    const found = matching();
    const pages = Math.max(1, Math.ceil(found.length / PAGE));
    page = Math.min(page, pages - 1);
    $("count").textContent = found.length + " matching of " + all.length;
    $("page").textContent = "page " + (page + 1) + " of " + pages;
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
    const list = $("list");
    list.replaceChildren(...found.slice(page * PAGE, (page + 1) * PAGE).map(conversation));
  }

  $("filters").addEventListener("change", () => { page = 0; render(); });
  $("prev").addEventListener("click", () => { page -= 1; render(); });
  $("next").addEventListener("click", () => { page += 1; render(); });
  render();
})();
