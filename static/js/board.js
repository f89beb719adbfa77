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

  // A new order chimes when the sound is on (the choice is kept per tablet). Browsers start a page's
  // audio only after a tap, so every tap wakes it up.
  const soundButton = document.querySelector("[data-testid=sound]");
  let audio = null;
  const soundOn = () => soundButton.getAttribute("aria-pressed") === "true";
  const wakeAudio = () => {
    if (!soundOn()) return;
    audio ??= new AudioContext();
    audio.resume();
  };
  const setSound = (on) => {
    soundButton.setAttribute("aria-pressed", String(on));
    soundButton.textContent = on ? "Sound on" : "Sound off";
    localStorage.setItem("till.board.sound", on ? "on" : "off");
  };
  const chime = () => {
    if (!soundOn() || !audio) return;
    const tone = audio.createOscillator();
    const volume = audio.createGain();
    tone.frequency.value = 880;
    volume.gain.setValueAtTime(0.2, audio.currentTime);
    volume.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    tone.connect(volume).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.6);
  };
  soundButton.addEventListener("click", () => setSound(!soundOn()));
  document.addEventListener("click", wakeAudio);
  setSound(localStorage.getItem("till.board.sound") === "on");

  const place = (message) => {
    lastId = message.lastEventId || lastId;
    const event = JSON.parse(message.data);
    document.getElementById(`card-${event.id}`)?.remove();
    const column = board.querySelector(`[data-column="${event.status}"] .cards`);
    if (!column) return; // completed or cancelled: off the board
    column.insertAdjacentHTML("beforeend", event.html);
    if (event.type === "order.placed") {
      column.lastElementChild.classList.add("arrived");
      chime();
    }
  };

  const connect = () => {
    source = new EventSource(`/staff/board/events?after=${encodeURIComponent(lastId)}`);
    source.onopen = () => show("Live", true);
    source.onerror = () => show("Reconnecting…", false);
    source.addEventListener("order", place);
    source.addEventListener("receipts", (message) => {
      // Receipt alerts (app/receipts/board.py): the panel as it is now, empty once none is left.
      lastId = message.lastEventId || lastId;
      document.getElementById("receipt-alerts").innerHTML = JSON.parse(message.data).html;
    });
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
