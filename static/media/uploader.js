// Media on the staff product page: drag-and-drop or choose files. Each file asks for a signed upload, sends its
// bytes with a progress bar (XMLHttpRequest upload progress), then asks the server to check and queue it. A refused
// file says why next to its name. The list below reorders by dragging (the Move buttons work without this script).
(() => {
  const csrf = () => {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || ""; }
    catch { return ""; }
  };
  const zone = () => document.getElementById("media-drop");

  const reasonOf = (problem, fallback) => {
    const fields = problem && problem.fields ? Object.values(problem.fields) : [];
    return fields[0] || (problem && problem.detail) || fallback;
  };

  const refresh = () => {
    const z = zone();
    if (z && window.htmx && document.getElementById("media")) {
      window.htmx.ajax("GET", z.dataset.refresh, { target: "#media", swap: "outerHTML" });
    }
  };

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrftoken": csrf(), accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch { /* not JSON */ }
    if (!response.ok) throw new Error(reasonOf(data, `The server answered ${response.status}.`));
    return data;
  }

  function send(target, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(target.method, target.upload_url);
      let body = file;
      if (target.method === "POST") {
        body = new FormData();
        for (const [name, value] of Object.entries(target.fields || {})) body.append(name, value);
        body.append("file", file);
      } else {
        for (const [name, value] of Object.entries(target.headers || {})) xhr.setRequestHeader(name, value);
      }
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve();
        let problem = null;
        try { problem = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        reject(new Error(reasonOf(problem, `The upload was refused (${xhr.status}).`)));
      });
      xhr.addEventListener("error", () => reject(new Error("The connection broke during the upload: try again.")));
      xhr.send(body);
    });
  }

  async function upload(file, list) {
    const item = document.createElement("li");
    item.className = "upload";
    item.dataset.testid = "upload";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const note = document.createElement("small");
    note.className = "upload-note";
    note.textContent = "Starting…";
    item.append(name, bar, note);
    list.append(item);
    try {
      const z = zone();
      const target = await postJSON(z.dataset.negotiate, {
        product_id: z.dataset.productId,
        filename: file.name,
        content_type: file.type || "application/octet-stream",
        bytes: file.size,
      });
      note.textContent = "Uploading…";
      await send(target, file, (share) => {
        bar.value = Math.round(share * 100);
        note.textContent = `${bar.value} %`;
      });
      bar.value = 100;
      note.textContent = "Checking…";
      await postJSON(target.complete_url, {});
      item.classList.add("done");
      note.textContent = "Uploaded: processing.";
    } catch (error) {
      item.classList.add("failed");
      bar.remove();
      note.className = "upload-note error";
      note.textContent = error.message;
    }
  }

  async function uploadAll(files) {
    const list = document.getElementById("media-uploads");
    if (!list || !files.length) return;
    for (const file of files) await upload(file, list); // one at a time: the quota is checked in order
    refresh();
  }

  document.addEventListener("change", (event) => {
    if (event.target.id !== "media-files") return;
    uploadAll(Array.from(event.target.files || []));
    event.target.value = "";
  });
  document.addEventListener("dragover", (event) => {
    const z = event.target.closest && event.target.closest("#media-drop");
    if (!z) return;
    event.preventDefault();
    z.classList.add("over");
  });
  document.addEventListener("dragleave", (event) => {
    const z = event.target.closest && event.target.closest("#media-drop");
    if (z) z.classList.remove("over");
  });
  document.addEventListener("drop", (event) => {
    const z = event.target.closest && event.target.closest("#media-drop");
    if (!z || !event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    z.classList.remove("over");
    uploadAll(Array.from(event.dataTransfer.files));
  });

  // Reordering the list by dragging an item onto another.
  let dragged = null;
  document.addEventListener("dragstart", (event) => {
    const item = event.target.closest && event.target.closest(".media-item");
    if (!item) return;
    dragged = item;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.dataset.assetId);
  });
  document.addEventListener("dragover", (event) => {
    if (!dragged) return;
    const over = event.target.closest && event.target.closest(".media-item");
    if (!over || over === dragged) return;
    event.preventDefault();
    const rect = over.getBoundingClientRect();
    over.parentNode.insertBefore(dragged, event.clientY > rect.top + rect.height / 2 ? over.nextSibling : over);
  });
  document.addEventListener("dragend", () => {
    if (!dragged) return;
    const list = dragged.closest("#media-list");
    dragged = null;
    if (!list || !window.htmx) return;
    const order = Array.from(list.querySelectorAll(".media-item")).map((li) => li.dataset.assetId);
    window.htmx.ajax("POST", list.dataset.orderUrl, {
      target: "#media",
      swap: "outerHTML",
      values: { order: order.join(",") },
      headers: { "x-csrftoken": csrf() },
    });
  });
})();
