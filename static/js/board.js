// The live board: cards move between columns as order events arrive over SSE.
// EventSource reconnects by itself after a dropped stream and sends Last-Event-ID; when the tablet
// itself goes offline we close the stream and reopen it from the last event seen once it is back.
// Either way the server replays what was missed, so the board catches up without a reload.
(() => {
  const board = document.querySelector(".board");
  if (!board) return;
  const banner = document.querySelector("[data-testid=connection]");
  const csrf = board.querySelector("input[name=_csrf_token]").value;
  let lastId = board.dataset.after;
  let source = null;

  const show = (text, live) => {
    banner.textContent = text;
    banner.classList.toggle("live", live);
  };

  const place = (message) => {
    lastId = message.lastEventId || lastId;
    const event = JSON.parse(message.data);
    document.getElementById(`card-${event.id}`)?.remove();
    const column = board.querySelector(`[data-column="${event.status}"] .cards`);
    if (!column) return; // completed or cancelled: off the board
    column.insertAdjacentHTML("beforeend", event.html);
  };

  const connect = () => {
    source = new EventSource(`/staff/board/events?after=${encodeURIComponent(lastId)}`);
    source.onopen = () => show("Live", true);
    source.onerror = () => show("Reconnecting…", false);
    source.addEventListener("order", place);
  };

  // A card that sits in one status longer than the store allows gets its "delayed" badge, even
  // between events.
  const markDelayed = () => {
    for (const card of board.querySelectorAll(".order-card")) {
      const waited = (Date.now() - Date.parse(card.dataset.since)) / 1000;
      card.querySelector(".delayed").hidden = waited <= Number(card.dataset.delay);
    }
  };
  setInterval(markDelayed, 30_000);

  window.addEventListener("offline", () => {
    source?.close();
    show("Reconnecting…", false);
  });
  window.addEventListener("online", connect);
  connect();

  board.addEventListener("click", async (click) => {
    const button = click.target.closest("button.advance");
    if (!button) return;
    button.disabled = true;
    const body = new URLSearchParams({ axis: "order", status: button.dataset.status, _csrf_token: csrf });
    const reply = await fetch(`/staff/orders/${button.dataset.order}/status`, {
      method: "POST", body, headers: { "x-board": "1" }, redirect: "manual",
    });
    if (reply.status >= 400) button.disabled = false;
  });
})();
