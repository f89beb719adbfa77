// Till's own browser code. htmx (static/vendor/) does the requests; this only adds small comforts.
document.addEventListener("htmx:sendError", () => {
  const banner = document.createElement("p");
  banner.className = "alert error";
  banner.setAttribute("role", "alert");
  banner.textContent = "Could not reach Till. Check the connection and try again.";
  document.querySelector(".main")?.prepend(banner);
});
