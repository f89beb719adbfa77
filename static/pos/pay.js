// Payment: cash with change and quick-cash buttons, cards through the register's reader (waiting → approved /
// declined / timed out / cancelled), any mix of the two; the sale is sent only once it is fully paid. Offline,
// the sale goes into the encrypted queue instead, within the store's offline limits.

import { api, ApiError, NetworkError } from "./api.js";
import { amountText, parseAmount, quickCash } from "./money.js";
import { refreshQueue, syncSoon } from "./net.js";
import * as queue from "./queue.js";
import { finishTicket, hideLastSale, NEEDS_NETWORK, priced, promotionParts, renderTicket, signature } from "./sell.js";
import { keysFor, money, saveTickets, state, ticket, uuid } from "./state.js";
import { nextSequence } from "./store.js";
import { $, closeDialog, dialog, fill, h, openDialog, showError, toast } from "./ui.js";

const pay = { ticket: null, total: 0, checking: false, amountEdited: false, busy: false };
const polling = new Set();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const paidOf = (t) => t.tenders.reduce((a, x) => a + x.amount_minor, 0);
const dueOf = (t) => Math.max(0, pay.total - paidOf(t));
const changeOf = (tenders) =>
  tenders.filter((x) => x.kind === "cash").reduce((a, x) => a + Math.max(0, x.tendered_minor - x.amount_minor), 0);
const limits = () => state.catalog?.limits ?? {};
const brand = (name) => (name ? name[0].toUpperCase() + name.slice(1) : "Card");

export async function openPay(mode) {
  const t = ticket();
  if (!t.lines.length) return;
  hideLastSale();
  pay.ticket = t;
  pay.total = t.frozen ? t.frozen.total_minor : priced(t).total_minor;
  pay.amountEdited = false;
  showError("pay", "");
  fill("card-result", "");
  $("[data-form=pay-pin]").hidden = true;
  pay.checking = state.online && !t.frozen && !t.tenders.length;
  renderPay();
  openDialog("pay");
  if (mode === "split") $("[data-testid=pay-amount]").select();
  if (t.pending_card) poll(t);
  if (t.tenders.length && paidOf(t) >= pay.total) return complete(t); // paid while this was closed (a card)
  if (pay.checking) await checkPrice(t);
  if (mode === "card" && !t.pending_card && pay.ticket === t) startCard();
}

// A code the server refused (used up, ended): the ticket goes on without it, at its new total.
function dropCode(t, reason) {
  const code = t.promotion?.code ?? "";
  t.promotion = null;
  if (!t.frozen) pay.total = priced(t).total_minor;
  renderTicket();
  saveTickets();
  showError("pay", `Code ${code} does not apply: ${reason} It was taken off; check the new total.`);
}

// Online, the server prices the ticket (today's prices, its own rounding); the lines take its unit prices, so
// the sale sent is the one it expects. Offline, the tablet's own pricing stands (re-checked at sync).
async function checkPrice(t) {
  try {
    const code = promotionParts(t) ? t.promotion.code : null;
    const reply = await api("POST", "/pos/api/price", {
      lines: t.lines.map((l) => ({ variant_id: l.variant_id, quantity: l.quantity, discount_minor: l.discount_minor })),
      ticket_discount_minor: t.ticket_discount_minor,
      promotion_code: code,
      customer_id: code ? (t.customer?.id ?? null) : null,
    });
    reply.lines?.forEach((line, i) => {
      if (t.lines[i] && Number.isInteger(line.unit_price_minor) && line.unit_price_minor !== t.lines[i].unit_price_minor) {
        t.lines[i].unit_price_minor = line.unit_price_minor;
        toast(`${t.lines[i].name}: the price is now ${money(line.unit_price_minor)}.`);
      }
    });
    if (code) t.promotion = { ...t.promotion, parts: reply.lines.map((l) => l.promotion_minor ?? 0), signature: signature(t) };
    if (Number.isInteger(reply.total_minor)) pay.total = reply.total_minor;
    renderTicket();
  } catch (error) {
    if (error instanceof ApiError && error.fields.promotion_code) dropCode(t, error.fields.promotion_code);
    else if (!(error instanceof NetworkError)) showError("pay", error.message);
  } finally {
    if (pay.ticket === t) {
      pay.checking = false;
      renderPay();
    }
  }
}

function amountNow() {
  const t = pay.ticket;
  const due = dueOf(t);
  const value = parseAmount($("[data-testid=pay-amount]").value, state.currency);
  if (value === null || value <= 0) return { error: "Enter the amount for this payment." };
  if (value > due) return { error: `That is more than is left to pay (${money(due)}).` };
  return { amount: value };
}

export function renderPay() {
  const t = pay.ticket;
  if (!t) return;
  const paid = paidOf(t);
  const due = dueOf(t);
  const box = dialog("pay");
  $("[data-pay=total]", box).textContent = pay.checking ? "…" : money(pay.total);
  $("[data-pay=paid]", box).textContent = money(paid);
  $("[data-pay=due]", box).textContent = pay.checking ? "…" : money(due);
  const amountInput = $("[data-testid=pay-amount]");
  if (!pay.amountEdited) amountInput.value = amountText(due, state.currency);
  const now = parseAmount(amountInput.value, state.currency);
  const base = now !== null && now > 0 && now <= due ? now : due;
  const waiting = Boolean(t.pending_card);
  const blocked = pay.checking || waiting || pay.busy;
  $("[data-testid=quick-cash]").replaceChildren(
    ...(due > 0
      ? quickCash(base, state.currency).map((amount, i) =>
          h(
            "button",
            {
              type: "button",
              class: `button big${i === 0 ? " primary" : ""}`,
              dataset: { cash: String(amount) },
              disabled: blocked,
              onclick: () => takeCash(amount),
            },
            i === 0 ? `Exact ${money(amount)}` : money(amount),
          ),
        )
      : []),
  );
  $("[data-testid=tenders]").replaceChildren(
    ...t.tenders.map((x) =>
      h(
        "li",
        { class: `tender ${x.kind}` },
        x.kind === "cash"
          ? h(
              "span",
              {},
              h("strong", {}, `Cash ${money(x.amount_minor)}`),
              x.tendered_minor > x.amount_minor
                ? ` — received ${money(x.tendered_minor)}, change ${money(x.tendered_minor - x.amount_minor)}`
                : "",
            )
          : x.kind === "gift_card" || x.kind === "store_credit" || x.kind === "loyalty"
            ? h("span", {}, h("strong", {}, `${storedLabel(x)} ${money(x.amount_minor)}`))
            : h("span", {}, h("strong", {}, `Card ${money(x.amount_minor)}`), ` — ${brand(x.card_brand)} •••• ${x.card_last4 || "····"}`),
        h(
          "button",
          { type: "button", class: "button small danger-ghost", disabled: blocked, onclick: () => removeTender(x) },
          x.kind === "card" ? "Void" : "Remove",
        ),
      ),
    ),
  );
  $("[data-pay-body]").hidden = waiting || due === 0;
  // Paid in full but not finished (the server refused it, or the network dropped): finish it from here.
  $("[data-action=finish-sale]").hidden = due > 0 || pay.busy || pay.checking || !t.tenders.length;
  $("[data-card-wait]").hidden = !waiting;
  for (const el of box.querySelectorAll("[data-pay-body] button")) el.disabled = blocked;
  const reader = state.register?.reader;
  $("[data-testid=start-card]").disabled = blocked || !reader;
  fill("reader-label", !reader ? "No card reader is paired with this register." : `Reader: ${reader.label}`);
  if (waiting) {
    fill("card-state", `Waiting for the card: ${money(t.pending_card.amount_minor)}`);
  }
}

function wirePay() {
  const box = dialog("pay");
  const amountInput = $("[data-testid=pay-amount]");
  amountInput.addEventListener("input", () => {
    pay.amountEdited = true;
    renderPay();
  });
  $("[data-form=cash-other]").addEventListener("submit", (event) => {
    event.preventDefault();
    const tendered = parseAmount(event.target.elements.tendered.value, state.currency);
    if (tendered === null || tendered <= 0) return showError("pay", "Enter the cash received, like 20 or 12.50.");
    event.target.reset();
    takeCash(tendered);
  });
  $("[data-action=start-card]").addEventListener("click", startCard);
  $("[data-form=gift-card]").addEventListener("submit", (event) => {
    event.preventDefault();
    takeStoredValue("gift_card", event.target.elements.code.value.trim(), event.target);
  });
  $("[data-action=store-credit]").addEventListener("click", () => takeStoredValue("store_credit", "", null));
  $("[data-action=points]").addEventListener("click", () => takeStoredValue("loyalty", "", null));
  $("[data-action=finish-sale]").addEventListener("click", () => complete(pay.ticket));
  const pinForm = $("[data-form=pay-pin]");
  pinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const pin = pinForm.elements.pin.value.trim();
    if (!pin || !pay.ticket) return;
    pay.ticket.manager_pin = pin;
    pay.ticket.frozen = null;
    pinForm.reset();
    pinForm.hidden = true;
    complete(pay.ticket);
  });
  $("[data-action=cancel-card]").addEventListener("click", cancelCard);
  box.addEventListener("close", () => {
    pay.ticket = null;
    renderTicket();
  });
}

function takeCash(tendered) {
  const t = pay.ticket;
  const now = amountNow();
  if (now.error) return showError("pay", now.error);
  showError("pay", "");
  const amount = Math.min(now.amount, tendered);
  t.tenders.push({ kind: "cash", amount_minor: amount, tendered_minor: tendered });
  pay.amountEdited = false;
  afterTender(t);
}

// Gift card / store credit: spent by the sale's own statement (app/stored_value). Online the card's balance is
// looked up first and pays at most what it has; offline it is taken as keyed and checked at sync (a shortfall goes
// to the managers' review, never below zero).
const storedLabel = (x) =>
  x.kind === "gift_card" ? `Gift card •••• ${x.last4 || "····"}` : x.kind === "loyalty" ? "Points" : "Store credit";

async function takeStoredValue(kind, code, form) {
  const t = pay.ticket;
  const now = amountNow();
  if (now.error) return showError("pay", now.error);
  if (kind === "gift_card" && code.replace(/[\s-]/g, "").length !== 16) {
    return showError("pay", "Enter the gift card's 16-symbol code.");
  }
  if (kind === "store_credit" && !t.customer) return showError("pay", "Choose the customer whose store credit pays.");
  if (kind === "loyalty" && !t.customer) return showError("pay", "Choose the customer whose points pay.");
  let amount = now.amount;
  let last4 = kind === "gift_card" ? code.replace(/[\s-]/g, "").slice(-4).toUpperCase() : "";
  if (kind === "gift_card" && state.online) {
    try {
      const card = await api("GET", `/pos/api/gift-cards/lookup?code=${encodeURIComponent(code)}`);
      if (!card.usable || card.spendable_minor <= 0) return showError("pay", "This gift card has nothing to spend.");
      amount = Math.min(amount, card.spendable_minor);
      last4 = card.last4;
    } catch (error) {
      if (!(error instanceof NetworkError)) return showError("pay", error.message);
    }
  } else if (kind === "loyalty" && state.online) {
    // What the customer's points are worth (app/stored_value/loyalty/pos.py): they pay at most that.
    try {
      const points = await api("GET", `/pos/api/loyalty/${encodeURIComponent(t.customer.id)}`);
      if (!points.enabled) return showError("pay", "This store has no loyalty program.");
      if (points.worth_minor <= 0) return showError("pay", `Points pay from ${points.min_points} points; this customer has ${points.points}.`);
      amount = Math.min(amount, points.worth_minor);
    } catch (error) {
      if (!(error instanceof NetworkError)) return showError("pay", error.message);
    }
  } else if (!state.online) {
    toast("Offline: the balance is checked when the tablet syncs; a shortfall goes to the managers' review.", "warn", 6000);
  }
  showError("pay", "");
  if (form) form.reset();
  t.tenders.push({ kind, amount_minor: amount, code: kind === "gift_card" ? code : null, last4 });
  pay.amountEdited = false;
  afterTender(t);
}

function afterTender(t) {
  saveTickets();
  renderTicket();
  if (pay.ticket !== t) {
    toast(`Card approved on ticket ${t.no}: open its payment to finish the sale.`, "ok", 8000);
    return;
  }
  renderPay();
  if (paidOf(t) >= pay.total) complete(t);
}

// Give an approved card payment's money back. The reader API answers "voiding" (202) while the provider has not
// confirmed: the same call again finishes it.
async function voidCard(id) {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const reply = await api("POST", `/pos/api/card-payments/${id}/void`, {}, { idempotencyKey: `void:${id}:${attempt}` });
    if (reply?.status !== "voiding") return reply;
    await sleep(1000);
  }
  throw new Error("The card payment is still being given back; try again in a moment.");
}

async function removeTender(tender) {
  const t = pay.ticket;
  if (tender.kind === "card") {
    pay.busy = true;
    renderPay();
    try {
      await voidCard(tender.reader_payment_id);
      toast(`Card payment of ${money(tender.amount_minor)} given back.`);
    } catch (error) {
      showError("pay", error instanceof NetworkError ? "Giving a card payment back needs the network." : error.message);
      return;
    } finally {
      pay.busy = false;
    }
  }
  t.tenders = t.tenders.filter((x) => x !== tender);
  t.frozen = null;
  pay.amountEdited = false;
  saveTickets();
  renderPay();
  renderTicket();
}

// --- cards ---------------------------------------------------------------------------------------------------
async function startCard() {
  const t = pay.ticket;
  if (!t || t.pending_card) return;
  showError("pay", "");
  fill("card-result", "");
  if (!state.register?.reader) return showError("pay", "No card reader is paired with this register. Take cash.");
  if (!state.online && !(limits().offline_tenders ?? ["cash"]).includes("card")) {
    return showError("pay", "Card payments need the network and it is down. Take cash, or wait for the connection.");
  }
  const now = amountNow();
  if (now.error) return showError("pay", now.error);
  pay.busy = true;
  renderPay();
  try {
    const started = await api(
      "POST",
      "/pos/api/card-payments",
      { register_id: state.register.id, client_sale_id: t.id, amount_minor: now.amount },
      { idempotencyKey: uuid() },
    );
    t.pending_card = { id: started.id, amount_minor: started.amount_minor ?? now.amount };
    saveTickets();
  } catch (error) {
    showError("pay", error instanceof NetworkError ? "Card payments need the network and it is down. Take cash." : error.message);
    return;
  } finally {
    pay.busy = false;
    renderPay();
  }
  poll(t);
}

const OUTCOMES = {
  declined: (rp) => `Declined${rp.message ? `: ${rp.message.replace(/[.\s]+$/, "")}` : ""}. Try another card, or cash.`,
  timed_out: () => "Timed out: no card was presented at the reader.",
  canceled: () => "Card payment cancelled.",
  voided: () => "That card payment was given back.",
};

function cardResult(text, kind) {
  const el = $("[data-testid=card-result]");
  el.textContent = text;
  el.className = `card-result ${kind}`;
}

async function poll(t) {
  const id = t.pending_card?.id;
  if (!id || polling.has(id)) return;
  polling.add(id);
  try {
    while (t.pending_card?.id === id) {
      let rp;
      try {
        rp = await api("GET", `/pos/api/card-payments/${id}`);
      } catch (error) {
        if (pay.ticket === t) fill("card-message", error instanceof NetworkError ? "The connection dropped; still asking the reader…" : error.message);
        await sleep(2000);
        continue;
      }
      if (rp.status === "waiting") {
        if (pay.ticket === t) fill("card-message", rp.message || "Present, insert or tap the card on the reader.");
        await sleep(1000);
        continue;
      }
      t.pending_card = null;
      if (rp.status === "approved") {
        t.tenders.push({
          kind: "card",
          amount_minor: rp.amount_minor,
          reader_payment_id: rp.id ?? id,
          card_brand: rp.card_brand ?? "",
          card_last4: rp.card_last4 ?? "",
        });
        cardResult(`Approved: ${brand(rp.card_brand)} •••• ${rp.card_last4 || "····"} ${money(rp.amount_minor)}`, "ok");
        pay.amountEdited = false;
        afterTender(t);
      } else {
        cardResult((OUTCOMES[rp.status] ?? (() => `The reader says: ${rp.status}.`))(rp), "error");
        saveTickets();
        renderPay();
      }
    }
  } finally {
    polling.delete(id);
  }
}

async function cancelCard() {
  const t = pay.ticket;
  const id = t?.pending_card?.id;
  if (!id) return;
  try {
    await api("POST", `/pos/api/card-payments/${id}/cancel`, {}, { idempotencyKey: `cancel:${id}` });
    fill("card-message", "Cancelling…");
  } catch (error) {
    fill("card-message", error instanceof NetworkError ? "Cancelling needs the network; the reader may still take the card." : error.message);
  }
}

// --- completing the sale ---------------------------------------------------------------------------------------
async function buildSale(t) {
  t.sequence ??= await nextSequence(state.register.id);
  return {
    client_sale_id: t.id,
    register_id: state.register.id,
    shift_id: state.shift.id,
    sequence: t.sequence,
    sold_at: new Date().toISOString(),
    offline: !state.online,
    lines: t.lines.map((l, i) => ({
      variant_id: l.variant_id,
      quantity: l.quantity,
      unit_price_minor: l.unit_price_minor,
      discount_minor: l.discount_minor,
      promotion_minor: promotionParts(t)?.[i] ?? 0,
      note: l.note,
    })),
    ticket_discount_minor: t.ticket_discount_minor,
    manager_pin: t.manager_pin,
    customer_id: t.customer?.id ?? null,
    promotion_code: promotionParts(t) ? t.promotion.code : null,
    tenders: t.tenders.map((x) =>
      x.kind === "cash"
        ? { kind: "cash", amount_minor: x.amount_minor, tendered_minor: x.tendered_minor }
        : x.kind === "gift_card" || x.kind === "store_credit" || x.kind === "loyalty"
          ? { kind: x.kind, amount_minor: x.amount_minor, code: x.code ?? null }
          : { kind: x.kind, amount_minor: x.amount_minor, reader_payment_id: x.reader_payment_id },
    ),
    total_minor: pay.total,
  };
}

// The ticket's gift cards (products the store sells as gift cards): Till activates them when the sale reaches it.
function giftCardLines(t) {
  const gift = new Set(
    (state.catalog?.products ?? []).filter((p) => p.gift_card).flatMap((p) => p.variants.map((v) => v.id)),
  );
  return t.lines.filter((l) => gift.has(l.variant_id));
}

const GIFT_CARD_ONLINE = "A gift card is activated by Till when it is sold, so it needs the network: sell it when the network is back.";

// Why an offline sale may not be taken now (the store's limits), or null.
async function offlineProblem(sale) {
  const { max_offline_sale_minor: perSale, max_offline_total_minor: allQueued, max_offline_hours: hours } = limits();
  if (hours !== null && hours !== undefined && state.lastOnlineAt && Date.now() - state.lastOnlineAt > hours * 3_600_000) {
    return `This tablet has been offline for more than ${hours} hours: it takes no more offline sales until it reaches Till again.`;
  }
  if (perSale !== null && perSale !== undefined && sale.total_minor > perSale) {
    return `Offline, one sale may be at most ${money(perSale)}. Take it when the network is back.`;
  }
  const queued = await queue.queuedTotal(keysFor);
  if (allQueued !== null && allQueued !== undefined && queued + sale.total_minor > allQueued) {
    return `Offline sales waiting to be sent may add up to ${money(allQueued)}; ${money(queued)} are waiting already.`;
  }
  return null;
}

async function complete(t) {
  if (pay.busy) return;
  pay.busy = true;
  renderPay();
  showError("pay", "");
  try {
    t.frozen ??= await buildSale(t);
    const sale = t.frozen;
    const sentOnce = Boolean(t.sent) || state.online; // a POST of this very body may reach the server
    t.sent = sentOnce;
    await saveTickets();
    if (state.online) {
      try {
        const reply = await api("POST", "/pos/api/sales", sale);
        closeDialog("pay");
        finishTicket(t, {
          change: reply?.change_minor ?? changeOf(sale.tenders),
          message: `Order #${reply.order_number} · ${money(reply.total_minor ?? sale.total_minor)}`,
          orderId: reply.order_id, // receipt buttons (app/receipts)
          giftCards: reply.gift_cards ?? [], // their codes, shown this once
        });
        return;
      } catch (error) {
        if (!(error instanceof NetworkError)) {
          t.frozen = null; // refused: nothing was written, the ticket may change and go again
          t.sent = false;
          if (error instanceof ApiError && error.fields.manager_pin) {
            t.manager_pin = null; // a discount over the limit needs a manager's PIN: ask for it right here
            $("[data-form=pay-pin]").hidden = false;
            $("[data-testid=pay-pin]").focus();
          }
          if (error instanceof ApiError && error.fields.promotion_code) {
            dropCode(t, error.fields.promotion_code);
            return;
          }
          const fields = Object.values(error.fields ?? {}).filter((f) => f !== error.message);
          showError("pay", [error.message, ...fields].join(" "));
          saveTickets();
          return;
        }
      }
    }
    // A code is priced and claimed by the server: a sale that never reached it does not take one offline (one
    // that may have reached it goes in the queue as sent, and sync settles it).
    const problem =
      sale.promotion_code && !sentOnce
        ? NEEDS_NETWORK
        : giftCardLines(t).length && !sentOnce
          ? GIFT_CARD_ONLINE
          : await offlineProblem(sale);
    if (problem) {
      if (!sentOnce) t.frozen = null; // it never left the tablet: it may change, and go online later
      saveTickets();
      showError("pay", `${problem} The sale is not finished.`);
      return;
    }
    await queue.enqueue(state.keys, sale);
    closeDialog("pay");
    finishTicket(t, {
      change: changeOf(sale.tenders),
      message:
        `Saved on this tablet (sale ${sale.sequence}); it goes to Till when the network is back.` +
        (giftCardLines(t).length
          ? " Its answer was lost: if Till had recorded it, its gift card is active but its code cannot be shown again; the tablet says so when it syncs, and a manager replaces the card."
          : ""),
    });
    await refreshQueue();
    syncSoon();
  } finally {
    pay.busy = false;
    if (pay.ticket === t) renderPay();
  }
}

// Give back the card payments on a ticket being voided (needs the network); answers false when one could not be.
export async function voidCardsOf(t) {
  if (t.pending_card) {
    try {
      await api("POST", `/pos/api/card-payments/${t.pending_card.id}/cancel`, {}, { idempotencyKey: `cancel:${t.pending_card.id}` });
      t.pending_card = null;
    } catch (error) {
      toast(error instanceof NetworkError ? "Cancelling the card payment needs the network." : error.message, "error");
      return false;
    }
  }
  for (const tender of t.tenders.filter((x) => x.kind === "card")) {
    try {
      await voidCard(tender.reader_payment_id);
      t.tenders = t.tenders.filter((x) => x !== tender);
    } catch (error) {
      toast(error instanceof NetworkError ? "Giving a card payment back needs the network." : error.message, "error");
      saveTickets();
      return false;
    }
  }
  return true;
}

wirePay();
