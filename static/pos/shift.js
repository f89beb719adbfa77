// Registers and shifts: choose the register, open a shift with a counted float (or join the one already open),
// cash in and out, and close with the counted cash (expected vs counted, over/short) and the shift report.
//
// The shift's offline_key arrives with the shift (open, or GET while it is open). It is imported at once as
// non-extractable CryptoKeys and kept in IndexedDB for the shift — so a reload while offline can still read and
// add to the queue — and deleted when the shift closes or the cashier signs out.

import { api, NetworkError } from "./api.js";
import { importShiftKey } from "./crypto.js";
import { parseAmount } from "./money.js";
import { refreshQueue, syncNow } from "./net.js";
import { sendVoids } from "./voids.js";
import * as queue from "./queue.js";
import { focusScan, renderTicket } from "./sell.js";
import {
  forgetKeys,
  forgetTickets,
  keysFor,
  loadSession,
  loadTickets,
  money,
  saveSession,
  state,
  storeKeys,
  uuid,
} from "./state.js";
import { $, $$, closeDialog, dialog, fill, h, openDialog, show, showError, toast } from "./ui.js";

export function renderChrome() {
  $("[data-testid=register-name]").textContent = state.register ? `${state.register.name} ▾` : "";
  fill("register-name", state.register?.name ?? "");
  for (const el of $$("[data-needs-shift]")) el.hidden = !state.shift;
  for (const el of $$("[data-needs-register]")) el.hidden = !state.register;
}

function showSell() {
  show("sell");
  renderChrome();
  renderTicket();
  focusScan();
}

// --- registers -------------------------------------------------------------------------------------------------
export async function showRegisters(message = "") {
  state.shift = null;
  state.keys = null;
  renderChrome();
  show("registers");
  const list = $("[data-testid=registers]");
  list.replaceChildren(h("li", { class: "muted" }, message || "Loading registers…"));
  try {
    state.registers = await api("GET", "/pos/api/registers");
  } catch (error) {
    list.replaceChildren(
      h("li", { class: "error" }, error instanceof NetworkError ? "Choosing a register needs the network. It is down." : error.message),
    );
    return;
  }
  $("[data-testid=no-registers]").hidden = state.registers.length > 0;
  list.replaceChildren(
    ...state.registers.map((r) =>
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "register", dataset: { register: r.id }, onclick: () => chooseRegister(r) },
          h("strong", {}, r.name),
          h(
            "span",
            { class: r.open_shift ? "ok" : "muted" },
            r.open_shift
              ? `Open since ${new Date(r.open_shift.opened_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`
              : "Closed: open it with a counted float",
          ),
          h("small", {}, r.reader ? `Card reader: ${r.reader.label}` : "No card reader"),
        ),
      ),
    ),
  );
}

async function chooseRegister(r) {
  state.register = { id: r.id, name: r.name, reader: r.reader ?? null };
  state.shift = null;
  await saveSession();
  if (r.open_shift) return joinShift(r.open_shift.id);
  showOpenShift();
}

function showOpenShift() {
  renderChrome();
  const form = $("[data-form=open-shift]");
  form.reset();
  showError("float", "");
  show("open-shift");
  form.elements.float.focus();
}

async function enterShift(shift) {
  if (shift.offline_key) await storeKeys(shift.id, await importShiftKey(shift.offline_key));
  const { offline_key: _secret, ...plain } = shift;
  state.shift = plain;
  state.keys = await keysFor(shift.id);
  if (!state.keys) return showRegisters("This tablet has no key for that shift. Connect to the network and choose the register again.");
  await saveSession();
  await loadTickets();
  showSell();
}

async function joinShift(id) {
  try {
    await enterShift(await api("GET", `/pos/api/shifts/${id}`));
  } catch (error) {
    toast(error.message, "error");
    await showRegisters();
  }
}

function wireOpenShift() {
  const form = $("[data-form=open-shift]");
  let key = uuid();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const float = parseAmount(form.elements.float.value, state.currency);
    if (float === null || float < 0) return showError("float", "Enter the cash counted in the drawer, like 150 or 150.00.");
    showError("float", "");
    try {
      const shift = await api(
        "POST",
        "/pos/api/shifts",
        { register_id: state.register.id, opening_float_minor: float },
        { idempotencyKey: key },
      );
      key = uuid();
      await enterShift(shift);
    } catch (error) {
      key = uuid();
      if (error.status === 409) {
        toast("Someone opened this register already: joining their shift.");
        const registers = await api("GET", "/pos/api/registers").catch(() => []);
        const open = registers.find((r) => r.id === state.register.id)?.open_shift;
        if (open) return joinShift(open.id);
      }
      showError("float", error instanceof NetworkError ? "Opening a shift needs the network. It is down." : error.fields?.opening_float_minor || error.message);
    }
  });
}

// Online: is the shift this tablet resumed still the register's open one? (It may have been closed elsewhere.)
async function verifyShift() {
  let registers;
  try {
    registers = await api("GET", "/pos/api/registers");
  } catch {
    return;
  }
  const mine = registers.find((r) => r.id === state.register?.id);
  if (!mine) return showRegisters("That register is no longer there. Choose another.");
  state.register = { id: mine.id, name: mine.name, reader: mine.reader ?? null };
  await saveSession();
  renderChrome();
  if (mine.open_shift?.id === state.shift?.id) return;
  toast("This register's shift was closed on another device.", "error", 8000);
  const closed = state.shift.id;
  await forgetTickets(closed);
  if (!(await queue.entries()).some((e) => e.shift_id === closed)) await forgetKeys(closed);
  state.shift = null;
  await saveSession();
  if (mine.open_shift) return joinShift(mine.open_shift.id);
  showOpenShift();
}

// At start: back to the register and shift this tablet had, offline too when its key is here.
export async function resume() {
  const session = await loadSession();
  state.register = session.register ?? null;
  if (session.shift && (await keysFor(session.shift.id))) {
    state.shift = session.shift;
    state.keys = await keysFor(session.shift.id);
    await loadTickets();
    showSell();
    if (state.online) verifyShift();
    return;
  }
  if (!state.register) return showRegisters();
  try {
    const registers = await api("GET", "/pos/api/registers");
    const mine = registers.find((r) => r.id === state.register.id);
    if (!mine) return showRegisters();
    return chooseRegister(mine);
  } catch (error) {
    return showRegisters(error instanceof NetworkError ? "Offline, and this tablet has no open shift. Connect to open one." : error.message);
  }
}

async function switchRegister() {
  if (state.tickets.some((t) => t.tenders.length || t.pending_card)) {
    return toast("A ticket has payments on it: finish or void it first.", "error");
  }
  if (state.shift && !(await queue.entries()).some((e) => e.shift_id === state.shift.id)) {
    await forgetKeys(state.shift.id);
  }
  state.register = null;
  state.shift = null;
  await saveSession();
  showRegisters();
}

// --- cash in / out -------------------------------------------------------------------------------------------------
function wireCashMovement() {
  const form = $("[data-form=cash-movement]");
  let key = uuid();
  $("[data-action=cash-movement]").addEventListener("click", () => {
    form.reset();
    showError("cash-movement", state.online ? "" : "Recording cash in or out needs the network.");
    openDialog("cash-movement");
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const kind = form.elements.kind.value;
    const amount = parseAmount(form.elements.amount.value, state.currency);
    const reason = form.elements.reason.value.trim();
    if (amount === null || amount <= 0) return showError("cash-movement", "Enter the amount, like 20 or 12.50.");
    if (!reason) return showError("cash-movement", "Say why the cash goes in or out.");
    try {
      await api(
        "POST",
        `/pos/api/shifts/${state.shift.id}/cash`,
        { kind, amount_minor: amount, reason },
        { idempotencyKey: key },
      );
      key = uuid();
      closeDialog("cash-movement");
      toast(`Cash ${kind} of ${money(amount)} recorded.`, "ok");
    } catch (error) {
      showError("cash-movement", error instanceof NetworkError ? "Recording cash in or out needs the network." : error.message);
    }
  });
}

// --- close the shift -------------------------------------------------------------------------------------------------
let expected = null;

function overShort(value) {
  if (value === 0) return "Exact";
  return value > 0 ? `Over ${money(value)}` : `Short ${money(-value)}`;
}

function renderCashCheck() {
  const form = $("[data-form=close-shift]");
  const counted = parseAmount(form.elements.counted.value, state.currency);
  const box = $("[data-testid=cash-check]");
  $("[data-close=expected]", box).textContent = expected === null ? "…" : money(expected);
  $("[data-close=counted]", box).textContent = counted === null ? "—" : money(counted);
  $("[data-close=over-short]", box).textContent = counted === null || expected === null ? "—" : overShort(counted - expected);
}

async function openClose() {
  const box = dialog("close-shift");
  const form = $("[data-form=close-shift]");
  const submit = $("[data-testid=confirm-close]");
  form.reset();
  form.hidden = false;
  $("[data-testid=shift-report]").hidden = true;
  showError("close-shift", "");
  expected = null;
  submit.disabled = true;
  renderCashCheck();
  openDialog("close-shift");
  const status = (text) => fill("close-status", text, box);
  if (!state.online) return status("Closing the shift needs the network. It is down.");
  if (state.tickets.some((t) => t.tenders.length || t.pending_card)) {
    return status("A ticket has payments on it: finish or void it before closing.");
  }
  status("Sending any offline sales first…");
  await syncNow();
  const left = (await queue.entries()).filter((e) => e.shift_id === state.shift.id);
  if (left.length) {
    return status(`${left.length} offline sale${left.length === 1 ? " has" : "s have"} not reached Till yet. Tap the status above to see why; close once they are sent.`);
  }
  const voidsLeft = await sendVoids();
  if (voidsLeft) {
    return status(`${voidsLeft} voided ticket${voidsLeft === 1 ? " or line has" : "s or lines have"} not reached Till yet; close once the network is back.`);
  }
  try {
    const report = await api("GET", `/pos/api/shifts/${state.shift.id}/report`);
    expected = report.expected_cash_minor;
  } catch (error) {
    return status(error instanceof NetworkError ? "Closing the shift needs the network. It is down." : error.message);
  }
  const open = state.tickets.filter((t) => t.lines.length).length;
  status(open ? `${open} open ticket${open === 1 ? " is" : "s are"} dropped when the shift closes.` : "Count the cash in the drawer.");
  submit.disabled = false;
  renderCashCheck();
  form.elements.counted.focus();
}

const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

function renderReport(report) {
  // Every tender kind (cash, card, gift card, store credit, loyalty points) with what the sales took and the
  // refunds gave back; only cash is in the drawer (app/pos/reports.py).
  const byKind = (field) =>
    (report.tenders ?? []).filter((t) => t[field]).map((t) => `${t.label} ${money(t[field])}`).join(", ") || "none";
  const rows = [
    ["Sales", `${report.sales_count} · ${money(report.gross_minor)}`],
    ["Discounts", money(report.discounts_minor)],
    ["Tax", money(report.tax_minor)],
    ["By tender", byKind("sales_minor")],
    ["Refunds", `${report.refunds_count} · ${byKind("refunds_minor")}`],
    ...(report.stored_value_sales_minor || report.stored_value_refunds_minor
      ? [["Not in the drawer", `Gift cards, store credit and points: ${money(report.stored_value_sales_minor)} taken, ${money(report.stored_value_refunds_minor)} given back`]]
      : []),
    ["Voids", `${count(report.voided_tickets, "ticket")}, ${count(report.voided_lines, "line")} · ${money(report.voided_minor)}`],
    ["Card payments given back", String(report.card_voids_count)],
    ["Cash in / out", `${money(report.cash_in_minor)} / ${money(report.cash_out_minor)}`],
    ["Expected cash", money(report.expected_cash_minor)],
    ["Counted cash", money(report.counted_cash_minor)],
    ["Over / short", overShort(report.over_short_minor)],
  ];
  const shiftId = report.shift?.id ?? state.shift.id;
  $("[data-testid=shift-report]").replaceChildren(
    h("h2", {}, "Shift closed"),
    h("dl", { class: "report" }, ...rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button", href: `/pos/shifts/${shiftId}/report`, target: "_blank", rel: "noopener" }, "Printable report"),
      h("button", { type: "button", class: "button primary", onclick: afterClose }, "Done"),
    ),
  );
}

async function afterClose() {
  closeDialog("close-shift");
  await showRegisters();
}

function wireClose() {
  const form = $("[data-form=close-shift]");
  let key = uuid();
  $("[data-action=close-shift]").addEventListener("click", openClose);
  form.elements.counted.addEventListener("input", renderCashCheck);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const counted = parseAmount(form.elements.counted.value, state.currency);
    if (counted === null || counted < 0) return showError("close-shift", "Enter the cash counted in the drawer.");
    const shiftId = state.shift.id;
    try {
      const report = await api(
        "POST",
        `/pos/api/shifts/${shiftId}/close`,
        { counted_cash_minor: counted, note: form.elements.note.value.trim() },
        { idempotencyKey: key },
      );
      key = uuid();
      // The shift is over: its key and open tickets leave this tablet.
      await forgetKeys(shiftId);
      await forgetTickets(shiftId);
      state.tickets = [];
      renderReport(report);
      state.shift = null;
      state.keys = null;
      await saveSession();
      renderChrome();
      form.hidden = true;
      $("[data-testid=shift-report]").hidden = false;
      await refreshQueue();
    } catch (error) {
      showError("close-shift", error instanceof NetworkError ? "Closing the shift needs the network." : error.message);
    }
  });
}

export function wireShift() {
  wireOpenShift();
  wireCashMovement();
  wireClose();
  for (const el of $$("[data-action=switch-register]")) el.addEventListener("click", switchRegister);
  document.addEventListener("pos:network", (event) => {
    if (event.detail.online && state.shift) verifyShift();
  });
}
