// The sell screen: the product grid by category with search, the scanner input, the open tickets (park and
// resume), lines (quantity, note, discount, void), the ticket discount and the customer.

import { api, NetworkError } from "./api.js";
import { amountText, overLimit, parseAmount, priceTicket, roundHalfUp } from "./money.js";
import { openPay, voidCardsOf } from "./pay.js";
import { lostCodeWords, money, newTicket, saveTickets, state, ticket } from "./state.js";
import { $, $$, anyDialogOpen, closeDialog, dialog, fill, fold, h, openDialog, showError, toast } from "./ui.js";
import { recordVoid } from "./voids.js";

let category = "all";
let search = "";
const index = { variants: new Map(), codes: new Map() };

export function setCatalog(catalog) {
  state.catalog = catalog;
  index.variants.clear();
  index.codes.clear();
  for (const product of catalog.products ?? []) {
    for (const variant of product.variants ?? []) {
      index.variants.set(variant.id, { product, variant });
      for (const code of [variant.sku, variant.barcode]) if (code) index.codes.set(fold(code), { product, variant });
    }
  }
  renderCategories();
  renderProducts();
}

// --- products ------------------------------------------------------------------------------------------------
function renderCategories() {
  const box = $("[data-testid=categories]");
  const used = new Set((state.catalog.products ?? []).map((p) => p.category));
  const tabs = [{ slug: "all", name: "All" }, ...(state.catalog.categories ?? []).filter((c) => used.has(c.slug))];
  box.replaceChildren(
    ...tabs.map((c) =>
      h(
        "button",
        {
          type: "button",
          class: "chip",
          role: "tab",
          "aria-selected": String(c.slug === category),
          onclick: () => {
            category = c.slug;
            renderCategories();
            renderProducts();
          },
        },
        c.name,
      ),
    ),
  );
}

const soldOut = (variant) => variant.available === false || variant.available === 0;

function visibleProducts() {
  const words = fold(search).split(/\s+/).filter(Boolean);
  return (state.catalog?.products ?? []).filter((p) => {
    if (category !== "all" && p.category !== category && !words.length) return false;
    const text = fold([p.name, ...p.variants.flatMap((v) => [v.title, v.sku, v.barcode])].join(" "));
    return words.every((w) => text.includes(w));
  });
}

export function renderProducts() {
  const list = $("[data-testid=products]");
  const products = visibleProducts();
  list.replaceChildren(
    ...products.map((p) => {
      const prices = p.variants.map((v) => v.price_minor);
      const low = Math.min(...prices);
      const label = prices.every((x) => x === low) ? money(low) : `from ${money(low)}`;
      return h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "product", dataset: { product: p.id }, onclick: () => pickProduct(p) },
          p.image ? h("img", { src: p.image, alt: "" }) : h("span", { class: "noimg" }),
          h("span", { class: "name" }, p.name),
          h("span", { class: "price" }, label),
          p.variants.every(soldOut) ? h("span", { class: "badge warn" }, "sold out") : null,
        ),
      );
    }),
  );
  if (!products.length) list.append(h("li", { class: "empty" }, search ? `Nothing matches “${search}”.` : "No products."));
}

function pickProduct(product) {
  if (product.variants.length === 1) return addVariant(product, product.variants[0]);
  fill("product-name", product.name);
  const box = $("[data-testid=variants]");
  box.replaceChildren(
    ...product.variants.map((v) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "variant",
            onclick: () => {
              closeDialog("variants");
              addVariant(product, v);
            },
          },
          h("span", {}, v.title || v.sku),
          h("strong", {}, money(v.price_minor)),
          soldOut(v) ? h("small", { class: "warn" }, "sold out") : null,
        ),
      ),
    ),
  );
  openDialog("variants");
}

export function addVariant(product, variant) {
  const t = ticket();
  if (t.frozen || t.tenders.length) {
    // A ticket being paid keeps its lines: the next product starts a new ticket, the paid one stays parked.
    if (t.lines.length) {
      state.tickets.push(newTicket());
      state.current = state.tickets.length - 1;
      toast("The ticket being paid is parked; this is a new one.");
    }
  }
  hideLastSale();
  const current = ticket();
  const same = current.lines.find((l) => l.variant_id === variant.id && !l.note && !l.discount_minor);
  if (same) same.quantity += 1;
  else
    current.lines.push({
      key: crypto.randomUUID(),
      variant_id: variant.id,
      name: product.name,
      title: variant.title ?? "",
      sku: variant.sku ?? "",
      tax_class: variant.tax_class ?? product.tax_class ?? "standard",
      unit_price_minor: variant.price_minor,
      quantity: 1,
      discount_minor: 0,
      note: "",
    });
  changed();
}

// --- the scanner / search input ------------------------------------------------------------------------------
// A keyboard-wedge scanner types the code and Enter into whatever has focus, so the input keeps it: after a tap,
// and when a key is typed elsewhere. It shows no on-screen keyboard until the cashier taps into it to search.
export function focusScan() {
  const scan = $("#scan");
  if (document.body.dataset.view !== "sell" || anyDialogOpen()) return;
  const active = document.activeElement;
  if (active && active !== scan && active.matches("input, select, textarea")) return;
  scan.focus({ preventScroll: true });
}

function wireScan() {
  const scan = $("#scan");
  scan.addEventListener("pointerdown", () => scan.setAttribute("inputmode", "search"));
  scan.addEventListener("blur", () => scan.setAttribute("inputmode", "none"));
  scan.addEventListener("input", () => {
    search = scan.value;
    renderProducts();
  });
  scan.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const code = scan.value.trim();
    if (!code) return;
    const hit = index.codes.get(fold(code));
    const clear = () => {
      scan.value = "";
      search = "";
      scan.setAttribute("inputmode", "none");
      renderProducts();
    };
    if (hit) {
      clear();
      addVariant(hit.product, hit.variant);
      return;
    }
    const products = visibleProducts();
    if (products.length === 1) {
      clear();
      pickProduct(products[0]);
      return;
    }
    toast(products.length ? `Several products match “${code}”: tap one.` : `No product has the code “${code}”.`, "error");
  });
  document.addEventListener("keydown", (event) => {
    if (document.body.dataset.view !== "sell" || anyDialogOpen()) return;
    const target = event.target;
    if (target instanceof Element && target.matches("input, select, textarea")) return;
    if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) {
      scan.focus({ preventScroll: true });
    }
  });
  document.addEventListener("click", () => setTimeout(focusScan, 0));
}

// --- tickets -------------------------------------------------------------------------------------------------
export function changed() {
  const t = ticket();
  if (t.promotion && t.promotion.signature !== signature(t) && t.lines.length) priceCode(t, t.promotion.code, { quiet: true });
  else if (t.promotion && !t.lines.length) t.promotion = null;
  renderTicket();
  saveTickets();
}

// --- promotion codes (online only: the server's engine prices them and claims the use with the sale) -------------
// What the ticket was priced on: a code's parts stand only while the lines, discounts and customer are the same.
export const signature = (t) =>
  JSON.stringify([t.lines.map((l) => [l.variant_id, l.quantity, l.discount_minor]), t.ticket_discount_minor, t.customer?.id ?? null]);

// Each line's promotion part, or null when the ticket has no code (or changed since it was priced).
export const promotionParts = (t) => (t.promotion && t.promotion.signature === signature(t) ? t.promotion.parts : null);

export const NEEDS_NETWORK = "Promotion codes need the network. Remove the code, or wait until Till can be reached.";

// Price the ticket with ``code`` on the server; the reason when refused, null when it applies.
export async function priceCode(t, code, { quiet = false } = {}) {
  const wanted = signature(t);
  try {
    if (!state.online) throw new NetworkError(NEEDS_NETWORK);
    const reply = await api("POST", "/pos/api/price", {
      lines: t.lines.map((l) => ({ variant_id: l.variant_id, quantity: l.quantity, discount_minor: l.discount_minor })),
      ticket_discount_minor: t.ticket_discount_minor,
      promotion_code: code,
      customer_id: t.customer?.id ?? null,
    });
    if (signature(t) !== wanted) return null; // changed meanwhile: its own call prices it
    t.promotion = {
      code: reply.promotion_code,
      parts: reply.lines.map((l) => l.promotion_minor ?? 0),
      promotions: reply.promotions ?? [],
      signature: wanted,
    };
    renderTicket();
    saveTickets();
    return null;
  } catch (error) {
    const reason = error instanceof NetworkError ? NEEDS_NETWORK : (error.fields?.promotion_code ?? error.message);
    if (quiet && t.promotion) {
      t.promotion = null;
      toast(`Code ${code} removed: ${reason}`, "error");
      renderTicket();
      saveTickets();
    }
    return reason;
  }
}

function wireCodeDialog() {
  const form = $("[data-form=code]");
  const remove = $("[data-action=remove-code]");
  $("[data-action=promotion-code]").addEventListener("click", () => {
    const t = ticket();
    if (locked(t)) return;
    form.elements.code.value = t.promotion?.code ?? "";
    remove.hidden = !t.promotion;
    showError("code", state.online ? "" : NEEDS_NETWORK);
    openDialog("code");
  });
  remove.addEventListener("click", () => {
    ticket().promotion = null;
    closeDialog("code");
    changed();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const t = ticket();
    const code = form.elements.code.value.trim();
    if (!code) return showError("code", "Enter the code the customer has.");
    showError("code", "");
    const reason = await priceCode(t, code);
    if (reason) return showError("code", reason);
    closeDialog("code");
    toast(`Code ${t.promotion.code} applied.`);
  });
}

function describe(t) {
  if (!t.lines.length) return "Empty";
  const count = t.lines.reduce((a, l) => a + l.quantity, 0);
  return `${count} item${count === 1 ? "" : "s"} · ${money(priced(t).total_minor)}`;
}

export const priced = (t) => {
  const parts = promotionParts(t);
  const lines = parts ? t.lines.map((l, i) => ({ ...l, discount_minor: l.discount_minor + (parts[i] ?? 0) })) : t.lines;
  return priceTicket(lines, t.ticket_discount_minor, state.catalog?.tax);
};

function renderTabs() {
  const box = $("[data-testid=tickets]");
  const chips = state.tickets.map((t, i) =>
    h(
      "button",
      {
        type: "button",
        class: `chip ticket-chip${i === state.current ? " current" : ""}`,
        "aria-pressed": String(i === state.current),
        dataset: { ticket: t.id },
        onclick: () => resume(i),
      },
      h("strong", {}, t.customer?.name ?? `Ticket ${t.no ?? i + 1}`),
      h("small", {}, describe(t)),
    ),
  );
  chips.push(h("button", { type: "button", class: "chip add", onclick: park, "aria-label": "New ticket" }, "+ New"));
  box.replaceChildren(...chips);
}

export function renderTicket() {
  if (!state.catalog) return;
  const t = ticket();
  const price = priced(t);
  renderTabs();
  const list = $("[data-testid=ticket-lines]");
  list.replaceChildren(
    ...t.lines.map((line, i) =>
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "line", dataset: { line: line.key }, onclick: () => editLine(line.key) },
          h("span", { class: "qty" }, `${line.quantity}×`),
          h(
            "span",
            { class: "what" },
            h("span", { class: "name" }, line.name),
            line.title ? h("small", {}, line.title) : null,
            line.note ? h("small", { class: "note" }, `“${line.note}”`) : null,
            price.lines[i].discount_minor ? h("small", { class: "ok" }, `− ${money(price.lines[i].discount_minor)}`) : null,
            promotionParts(t)?.[i]
              ? h("small", { class: "ok", dataset: { testid: "line-promotion" } }, `${t.promotion.code}: − ${money(promotionParts(t)[i])}`)
              : null,
          ),
          h("span", { class: "amount" }, money(price.lines[i].total_minor)),
        ),
      ),
    ),
  );
  $("[data-testid=ticket-empty]").hidden = t.lines.length > 0;
  const totals = $("[data-testid=totals]");
  const set = (name, text) => ($(`[data-total="${name}"]`, totals).textContent = text);
  set("subtotal", money(price.subtotal_minor));
  set("discount", `− ${money(price.discount_minor)}`);
  $('[data-row="discount"]', totals).hidden = price.discount_minor === 0;
  set("tax-label", state.catalog.tax?.prices_include_tax ? "Tax included" : "Tax");
  set("tax", money(price.tax_minor));
  set("total", money(price.total_minor));
  const customer = $("[data-testid=customer]");
  customer.textContent = t.customer ? `Customer: ${t.customer.name}` : "Add customer";
  customer.classList.toggle("attached", Boolean(t.customer));
  const code = $("[data-action=promotion-code]");
  code.textContent = promotionParts(t) ? `Code ${t.promotion.code}` : "Code";
  code.classList.toggle("attached", Boolean(promotionParts(t)));
  for (const button of $$(".pay-buttons button, .ticket-tools button")) button.disabled = !t.lines.length;
  $("[data-action=park]").disabled = !t.lines.length;
  const paying = t.tenders.length > 0;
  $(".pay-buttons").classList.toggle("paying", paying);
  $("[data-testid=pay-split]").textContent = paying ? "Continue payment" : "Split";
}

export function park() {
  const t = ticket();
  if (t.lines.length) toast("Ticket parked. Tap it above to resume.");
  dropEmpty();
  state.tickets.push(newTicket());
  state.current = state.tickets.length - 1;
  hideLastSale();
  changed();
}

function resume(i) {
  if (i === state.current) return;
  const target = state.tickets[i];
  dropEmpty();
  state.current = state.tickets.indexOf(target);
  hideLastSale();
  changed();
}

function dropEmpty() {
  const current = state.tickets[state.current];
  if (current && !current.lines.length && !current.tenders.length) {
    state.tickets.splice(state.current, 1);
    state.current = Math.max(0, state.tickets.length - 1);
  }
}

// A paid ticket leaves the list; when it was the one on screen, a fresh one takes its place.
export function finishTicket(done, lastSale) {
  const i = state.tickets.indexOf(done);
  if (i === -1) return;
  const wasCurrent = i === state.current;
  state.tickets.splice(i, 1);
  if (wasCurrent) {
    state.tickets.push(newTicket());
    state.current = state.tickets.length - 1;
    showLastSale(lastSale);
  } else if (i < state.current) {
    state.current -= 1;
  }
  changed();
}

// A ticket with payments on it keeps its lines (remove the payments first); one already sent once (its answer
// lost) must be sent again exactly as it was.
export function locked(t) {
  if (t.frozen) {
    toast("This sale may already have reached Till. Finish it from its payment first.", "error");
    return true;
  }
  if (t.tenders.length || t.pending_card) {
    toast("This ticket has payments on it: remove them in its payment before changing it.", "error");
    return true;
  }
  return false;
}

function showLastSale({ change, message, orderId, giftCards = [] }) {
  const box = $("[data-testid=last-sale]");
  box.replaceChildren(
    h("strong", { class: "change", "data-testid": "change-due" }, change ? `Change ${money(change)}` : "No change"),
    h("span", { "data-testid": "last-sale-text" }, message),
    giftCards.length ? soldGiftCards(giftCards) : null,
    orderId ? receiptActions(orderId) : null,
  );
  box.hidden = false;
}

// Gift cards sold on this sale: each code is shown here once (Till keeps no copy of it, and no receipt prints it).
// A card answered without its code is one Till activated on an earlier try of this very sale whose answer never
// reached this tablet: nobody saw its code, and nobody can — a manager replaces the card (app/stored_value).
function soldGiftCards(cards) {
  return h(
    "div",
    { class: "sold-gift-cards", "data-testid": "sold-gift-cards", role: "status" },
    h("strong", {}, cards.some((c) => c.code) ? "Gift card code — give it to the customer now, it is shown only once:" : "Gift cards sold:"),
    ...cards.map((c) =>
      c.code
        ? h("p", { "data-testid": "sold-gift-card" }, h("code", { "data-testid": "gift-card-code" }, c.code), ` ${money(c.amount_minor)}`)
        : h("p", { "data-testid": "sold-gift-card", class: "warn" }, lostCodeWords(c)),
    ),
  );
}

// After an online sale: print its receipt, or e-mail it (app/receipts; the answer says what was queued).
function receiptActions(orderId) {
  const said = h("span", { class: "muted", "data-testid": "receipt-status", role: "status" });
  const email = h("input", { type: "email", name: "receipt_email", placeholder: "Customer's e-mail", "aria-label": "Customer's e-mail", "data-testid": "receipt-email" });
  async function send(channel) {
    said.textContent = "";
    try {
      const body = channel === "email" ? { channel, target: email.value.trim() } : { channel };
      const reply = await api("POST", `/staff/orders/${orderId}/receipts/send`, body);
      said.textContent = `Receipt ${reply.number}: ${channel === "email" ? "e-mail queued" : "printing"} (${reply.status}).`;
    } catch (error) {
      said.textContent = error instanceof NetworkError ? "Offline: send the receipt from the order page later." : error.message;
    }
  }
  return h("div", { class: "receipt-actions", "data-testid": "receipt-actions" },
    h("button", { type: "button", class: "button ghost", "data-testid": "receipt-print", onclick: () => send("thermal") }, "Print receipt"),
    email,
    h("button", { type: "button", class: "button ghost", "data-testid": "receipt-send", onclick: () => send("email") }, "E-mail receipt"),
    said,
  );
}

export function hideLastSale() {
  $("[data-testid=last-sale]").hidden = true;
}

// --- discounts (an amount, or a percentage "10%") -----------------------------------------------------------
function parseDiscount(text, base) {
  const value = String(text ?? "").trim();
  if (!value) return 0;
  const percent = /^(\d{1,3})(?:[.,](\d{1,2}))?\s*%$/.exec(value);
  if (percent) {
    const bps = Number(percent[1]) * 100 + Number((percent[2] ?? "").padEnd(2, "0"));
    if (bps > 10_000) return null;
    return roundHalfUp(base * bps, 10_000);
  }
  const minor = parseAmount(value, state.currency);
  return minor === null || minor < 0 ? null : minor;
}

// Over the cashier's own limit: a manager's PIN goes with the sale (the server checks it).
function approve(discount, base, apply) {
  const limit = state.catalog?.discount_limit_bps;
  const t = ticket();
  if (!overLimit(discount, base, limit) || t.manager_pin) return apply();
  const percent = (limit / 100).toFixed(limit % 100 ? 2 : 0);
  fill("pin-reason", `That is more than your discount limit of ${percent} %. A manager approves it with their PIN.`);
  const form = $("[data-form=pin]");
  form.reset();
  form.onsubmit = (event) => {
    event.preventDefault();
    const pin = form.elements.pin.value.trim();
    if (!pin) return;
    t.manager_pin = pin;
    closeDialog("pin");
    apply();
  };
  openDialog("pin");
  form.elements.pin.focus();
}

let editing = null;
function editLine(key) {
  const t = ticket();
  if (locked(t)) return;
  const line = t.lines.find((l) => l.key === key);
  if (!line) return;
  editing = key;
  const form = $("[data-form=line]");
  fill("line-name", line.title ? `${line.name} · ${line.title}` : line.name);
  form.elements.quantity.value = String(line.quantity);
  form.elements.note.value = line.note;
  form.elements.discount.value = line.discount_minor ? amountText(line.discount_minor, state.currency) : "";
  showError("line", "");
  openDialog("line");
}

function wireLineDialog() {
  const form = $("[data-form=line]");
  for (const button of $$("[data-step]", form)) {
    button.addEventListener("click", () => {
      const qty = Number.parseInt(form.elements.quantity.value, 10) || 0;
      form.elements.quantity.value = String(Math.max(1, qty + Number(button.dataset.step)));
    });
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const t = ticket();
    const line = t.lines.find((l) => l.key === editing);
    if (!line) return closeDialog("line");
    const quantity = Number.parseInt(form.elements.quantity.value, 10);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > 9999) return showError("line", "Enter a quantity of 1 or more.");
    const gross = line.unit_price_minor * quantity;
    const discount = parseDiscount(form.elements.discount.value, gross);
    if (discount === null || discount > gross) return showError("line", "Enter a discount up to the line's price, like 1.50 or 10%.");
    approve(discount, gross, () => {
      Object.assign(line, { quantity, discount_minor: discount, note: form.elements.note.value.trim() });
      closeDialog("line");
      changed();
    });
  });
  $("[data-action=void-line]").addEventListener("click", () => {
    const t = ticket();
    const voided = t.lines.filter((l) => l.key === editing);
    t.lines = t.lines.filter((l) => l.key !== editing);
    recordVoid("line", "Taken off the ticket", voided);
    closeDialog("line");
    toast("Line voided.");
    changed();
  });
}

function wireDiscountDialog() {
  const form = $("[data-form=discount]");
  $("[data-action=ticket-discount]").addEventListener("click", () => {
    const t = ticket();
    if (locked(t)) return;
    form.elements.discount.value = t.ticket_discount_minor ? amountText(t.ticket_discount_minor, state.currency) : "";
    showError("discount", "");
    openDialog("discount");
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const t = ticket();
    const base = t.lines.reduce((a, l) => a + l.unit_price_minor * l.quantity - l.discount_minor, 0);
    const discount = parseDiscount(form.elements.discount.value, base);
    if (discount === null || discount > base) return showError("discount", "Enter a discount up to the ticket's total, like 2.00 or 10%.");
    approve(discount, base, () => {
      t.ticket_discount_minor = discount;
      closeDialog("discount");
      changed();
    });
  });
}

// --- customer ------------------------------------------------------------------------------------------------
function wireCustomerDialog() {
  const box = dialog("customer");
  const input = $("input[name=q]", box);
  const results = $("[data-testid=customer-results]");
  const detach = $("[data-action=detach-customer]");
  let timer = null;
  let asked = 0;
  $("[data-action=customer]").addEventListener("click", () => {
    input.value = "";
    results.replaceChildren();
    fill("customer-status", state.online ? "" : "Finding a customer needs the network.");
    detach.hidden = !ticket().customer;
    openDialog("customer");
    input.focus();
  });
  detach.addEventListener("click", () => {
    ticket().customer = null;
    closeDialog("customer");
    changed();
  });
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (q.length < 2) return results.replaceChildren();
      const mine = ++asked;
      try {
        const found = await api("GET", `/pos/api/customers?q=${encodeURIComponent(q)}`);
        if (mine !== asked) return;
        fill("customer-status", found.length ? "" : `No customer matches “${q}”.`);
        results.replaceChildren(
          ...found.map((c) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "customer",
                  onclick: () => {
                    ticket().customer = { id: c.id, name: c.name || c.email || c.phone };
                    closeDialog("customer");
                    changed();
                  },
                },
                h("strong", {}, c.name || "(no name)"),
                h("small", {}, [c.email, c.phone].filter(Boolean).join(" · ")),
              ),
            ),
          ),
        );
      } catch (error) {
        fill("customer-status", error instanceof NetworkError ? "Finding a customer needs the network." : error.message);
      }
    }, 250);
  });
}

// --- void the ticket (with a reason; card payments on it are given back first) ---------------------------------------
// Gift cards, store credit and points on a ticket are only noted there: Till spends them in the sale's own
// statement (app/pos/sales.py), so a ticket voided before its sale completed took nothing from them.
const STORED_KINDS = new Set(["gift_card", "store_credit", "loyalty"]);
const storedWords = (x) =>
  `${x.kind === "gift_card" ? `gift card •••• ${x.last4 || "····"}` : x.kind === "loyalty" ? "points" : "store credit"} ${money(x.amount_minor)}`;
const unspent = (t) => t.tenders.filter((x) => STORED_KINDS.has(x.kind));

function wireVoid() {
  const form = $("[data-form=void]");
  $("[data-action=void-ticket]").addEventListener("click", () => {
    if (ticket().frozen) return locked(ticket());
    form.reset();
    showError("void", "");
    const stored = unspent(ticket());
    const note = $("[data-void-stored]");
    note.hidden = !stored.length;
    note.textContent = stored.length
      ? `Not charged, nothing to give back: ${stored.map(storedWords).join(", ")} — gift cards, store credit and points are spent only when the sale completes.`
      : "";
    openDialog("void");
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const choice = form.elements.reason.value;
    const detail = form.elements.detail.value.trim();
    if (!choice) return showError("void", "Choose a reason.");
    if (choice === "Other" && !detail) return showError("void", "Say what happened.");
    const t = ticket();
    if (!(await voidCardsOf(t))) return showError("void", "A card payment on it could not be given back yet; try again.");
    const stored = unspent(t);
    recordVoid("ticket", choice === "Other" ? detail : choice, t.lines);
    state.tickets.splice(state.tickets.indexOf(t), 1);
    state.tickets.push(newTicket());
    state.current = state.tickets.length - 1;
    closeDialog("void");
    toast(
      `Ticket voided: ${choice === "Other" ? detail : choice}.` +
        (stored.length ? ` Nothing was taken from the ${stored.map(storedWords).join(", ")}.` : ""),
      "info",
      stored.length ? 8000 : undefined,
    );
    changed();
  });
}

export function wireSell() {
  wireVoid();
  wireScan();
  wireLineDialog();
  wireDiscountDialog();
  wireCodeDialog();
  wireCustomerDialog();
  $("[data-action=park]").addEventListener("click", park);
  $("[data-action=pay-cash]").addEventListener("click", () => openPay("cash"));
  $("[data-action=pay-card]").addEventListener("click", () => openPay("card"));
  $("[data-action=pay-split]").addEventListener("click", () => openPay("split"));
}
