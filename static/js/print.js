// A page's Print button (the shift report): the browser's print dialog. No inline scripts (CSP).
for (const button of document.querySelectorAll("[data-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
