// Till's own browser code. htmx (static/vendor/) does the requests; this only adds small comforts.
document.addEventListener("htmx:sendError", () => {
  const banner = document.createElement("p");
  banner.className = "alert error";
  banner.setAttribute("role", "alert");
  banner.textContent = "Could not reach Till. Check the connection and try again.";
  document.querySelector(".main")?.prepend(banner);
});

// The header's <details> menus work without this; it closes an open one on a click elsewhere or on Escape.
const openMenus = () => document.querySelectorAll(".topbar details[open]");
document.addEventListener("click", (event) => {
  for (const menu of openMenus()) if (!menu.contains(event.target)) menu.open = false;
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of openMenus()) {
    const hadFocus = menu.contains(document.activeElement);
    menu.open = false;
    if (hadFocus) menu.querySelector("summary")?.focus();
  }
});
