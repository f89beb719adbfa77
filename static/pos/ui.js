// Small DOM helpers for the POS screens. Text always goes in as text (never as HTML).

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// h("button", {class: "chip", dataset: {id: 1}, onclick}, "Text", child) → an element.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Text as search compares it: lower case, accents off ("Café" finds "cafe").
export const fold = (text) =>
  String(text ?? "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();

export const dialog = (name) => $(`dialog[data-dialog="${name}"]`);

export function openDialog(name) {
  const el = dialog(name);
  if (!el.open) el.showModal();
  return el;
}

export function closeDialog(name) {
  const el = dialog(name);
  if (el.open) el.close();
}

export const anyDialogOpen = () => $$("dialog[open]").length > 0;

export function fill(name, text, root = document) {
  for (const el of $$(`[data-fill="${name}"]`, root)) el.textContent = text;
}

export function showError(name, message) {
  const el = $(`[data-error="${name}"]`);
  if (el) el.textContent = message ?? "";
}

// A modal dialog sits in the top layer, over anything fixed on the page: a toast goes into the open dialog then.
export function toast(message, kind = "info", ms = 5000) {
  const host = $$("dialog[open]").at(-1);
  let box = host ? $(":scope > .toasts", host) : $("body > .toasts");
  if (!box) {
    box = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    host.append(box);
  }
  const item = h("p", { class: `toast ${kind}`, role: kind === "error" ? "alert" : null }, message);
  box.append(item);
  setTimeout(() => item.remove(), ms);
}

export function show(screen) {
  for (const el of $$("[data-screen]")) el.hidden = el.dataset.screen !== screen;
  document.body.dataset.view = screen;
}
