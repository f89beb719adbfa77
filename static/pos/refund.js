// Refund or exchange a past POS sale by its receipt (order) number: the whole sale, some items (found in the
// catalog or scanned), or an amount; back as it was paid or in cash. An exchange is a refund of what comes back
// and a new sale of what goes out. Refunds need the network.

import { api, NetworkError } from "./api.js";
import { parseAmount } from "./money.js";
import { money, state, uuid } from "./state.js";
import { $, $$, dialog, fold, h, openDialog, showError } from "./ui.js";

let items = []; // [{variant_id, name, quantity}]
let key = uuid();

function renderItems() {
  $("[data-testid=refund-items]").replaceChildren(
    ...items.map((item) =>
      h(
        "li",
        { class: "refund-item" },
        h("span", {}, `${item.quantity}× ${item.name}`),
        h("button", { type: "button", class: "button small", onclick: () => step(item, 1), "aria-label": `One more ${item.name}` }, "+"),
        h("button", { type: "button", class: "button small", onclick: () => step(item, -1), "aria-label": `One less ${item.name}` }, "−"),
      ),
    ),
  );
}

function step(item, by) {
  item.quantity += by;
  items = items.filter((i) => i.quantity > 0);
  renderItems();
}

function matches(text) {
  const words = fold(text).split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  const found = [];
  for (const p of state.catalog?.products ?? []) {
    for (const v of p.variants) {
      const hay = fold([p.name, v.title, v.sku, v.barcode].join(" "));
      if (words.every((w) => hay.includes(w))) found.push({ p, v });
    }
  }
  return found.slice(0, 8);
}

function mode() {
  return $("[data-form=refund]").elements.what.value;
}

function renderMode() {
  for (const el of $$("[data-refund]")) el.hidden = el.dataset.refund !== mode();
}

export function wireRefund() {
  const form = $("[data-form=refund]");
  const search = form.elements.item_search;
  const list = $(".refund-matches", form);
  $("[data-action=refund]").addEventListener("click", () => {
    form.reset();
    items = [];
    renderItems();
    list.replaceChildren();
    renderMode();
    showError("refund", state.online ? "" : "Refunds need the network. It is down.");
    $("[data-testid=refund-done]").hidden = true;
    $("[data-refund-pin]").hidden = true;
    openDialog("refund");
  });
  for (const radio of form.querySelectorAll("input[name=what]")) radio.addEventListener("change", renderMode);
  search.addEventListener("input", () => {
    list.replaceChildren(
      ...matches(search.value).map(({ p, v }) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "chip",
              onclick: () => {
                const name = v.title ? `${p.name} · ${v.title}` : p.name;
                const have = items.find((i) => i.variant_id === v.id);
                if (have) have.quantity += 1;
                else items.push({ variant_id: v.id, name, quantity: 1 });
                search.value = "";
                list.replaceChildren();
                renderItems();
              },
            },
            v.title ? `${p.name} · ${v.title}` : p.name,
          ),
        ),
      ),
    );
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      list.querySelector("button")?.click();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = Number.parseInt(String(form.elements.order_number.value).replace(/^#/, ""), 10);
    const reason = form.elements.reason.value.trim();
    if (!Number.isInteger(number) || number <= 0) return showError("refund", "Enter the receipt's order number, like 1042.");
    const body = {
      order_number: number,
      register_id: state.register.id,
      shift_id: state.shift.id,
      lines: null,
      amount_minor: null,
      to: form.elements.to.value,
      reason,
    };
    if (mode() === "items") {
      if (!items.length) return showError("refund", "Add the items that come back.");
      body.lines = items.map((i) => ({ variant_id: i.variant_id, quantity: i.quantity }));
    } else if (mode() === "amount") {
      const amount = parseAmount(form.elements.amount.value, state.currency);
      if (amount === null || amount <= 0) return showError("refund", "Enter the amount to give back.");
      body.amount_minor = amount;
    }
    if (!reason) return showError("refund", "Say why it comes back.");
    const pin = form.elements.manager_pin.value.trim();
    if (pin) body.manager_pin = pin;
    showError("refund", "");
    try {
      const reply = await api("POST", "/pos/api/refunds", body, { idempotencyKey: key });
      key = uuid();
      const how = (reply.tenders ?? []).map((t) => `${t.kind} ${money(Math.abs(t.amount_minor))}`).join(", ");
      const done = $("[data-testid=refund-done]");
      done.textContent = `Refunded ${money(Math.abs(reply.amount_minor))} on order #${number}${how ? ` (${how})` : ""}. For an exchange, sell the new item now.`;
      done.hidden = false;
    } catch (error) {
      key = uuid();
      if (error.fields?.manager_pin) $("[data-refund-pin]").hidden = false; // the server asks for a manager
      const fields = Object.values(error.fields ?? {}).filter((f) => f !== error.message);
      showError("refund", error instanceof NetworkError ? "Refunds need the network. It is down." : [error.message, ...fields].join(" "));
    }
  });
  dialog("refund").addEventListener("close", () => {
    items = [];
  });
}
