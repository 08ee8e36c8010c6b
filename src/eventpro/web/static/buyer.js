// The buyer's page: live stock, seat picking, one purchase per Idempotency-Key, the line.
// A purchase in progress is kept in sessionStorage (its key, its body, its id), so a
// reload or a double click resumes it instead of buying twice.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("buy");
  const eventId = form.dataset.event;
  const limit = Number(form.dataset.limit);
  const storeKey = `eventpro:${eventId}:pending`;
  const picked = new Set();
  const REASONS = {
    sold_out: "Sold out: not enough tickets were left in that section when your turn came.",
    seat_taken: "One of your seats was sold to someone ahead of you in line.",
    limit_exceeded: "You already hold or asked for the most tickets one buyer may have.",
    sale_not_open: "The sale had not opened yet when your request arrived.",
  };
  let sending = false;
  let purchaseStream = null;
  let mostAhead = 0;

  const load = () => {
    try {
      return JSON.parse(sessionStorage.getItem(storeKey));
    } catch {
      return null;
    }
  };
  const save = (pending) => sessionStorage.setItem(storeKey, JSON.stringify(pending));
  const forget = () => sessionStorage.removeItem(storeKey);

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");
  }

  // -- live stock and seats -------------------------------------------------------------
  const stock = new EventSource(`/v1/events/${encodeURIComponent(eventId)}/stream`);
  stock.addEventListener("event", (message) => showEvent(JSON.parse(message.data)));

  function showEvent(event) {
    $("status").textContent = event.status.replace("_", " ") + (event.paused ? " (paused)" : "");
    for (const section of event.sections) {
      const cell = document.querySelector(`[data-remaining="${CSS.escape(section.name)}"]`);
      if (cell && cell.textContent !== String(section.remaining)) {
        cell.textContent = section.remaining;
        if (section.kind === "reserved") refreshSeats(section.name);
      }
    }
  }

  async function refreshSeats(section) {
    const url = `/v1/events/${encodeURIComponent(eventId)}/seats?section=${encodeURIComponent(section)}`;
    const answer = await fetch(url);
    if (!answer.ok) return;
    for (const seat of (await answer.json()).items) {
      const button = document.querySelector(
        `.seat[data-section="${CSS.escape(section)}"][data-seat="${CSS.escape(seat.label)}"]`,
      );
      if (!button || button.disabled === !seat.available) continue;
      button.disabled = !seat.available;
      button.setAttribute("aria-label", `${seat.label}, ${seat.available ? "free" : "sold"}`);
      if (!seat.available) unpick(button);
    }
    showPicked();
  }

  function unpick(button) {
    picked.delete(button.dataset.seat);
    button.setAttribute("aria-pressed", "false");
  }

  function showPicked() {
    const out = $("picked");
    if (out) out.textContent = picked.size ? [...picked].join(", ") : "none";
  }

  for (const button of document.querySelectorAll(".seat")) {
    button.addEventListener("click", () => {
      const on = button.getAttribute("aria-pressed") === "true";
      if (!on && picked.size >= limit) {
        showError("seats", `Pick at most ${limit} seats.`);
        return;
      }
      if (on) unpick(button);
      else {
        picked.add(button.dataset.seat);
        button.setAttribute("aria-pressed", "true");
      }
      form.elements.mode.value = "seats";
      showError("seats", "");
      showPicked();
    });
  }

  // -- buying ---------------------------------------------------------------------------
  function showError(field, message) {
    const slot = $(`${field}-error`) || $("form-error");
    slot.textContent = message;
    const input = $(field);
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
  }

  function readForm() {
    for (const field of ["buyer_id", "section", "quantity", "seats", "form"]) showError(field, "");
    const buyer = form.elements.buyer_id.value.trim();
    if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(buyer)) {
      showError("buyer_id", "Use 1 to 64 letters, digits or . _ @ -");
      form.elements.buyer_id.focus();
      return null;
    }
    if (form.elements.mode.value === "seats") {
      if (!picked.size) {
        showError("seats", "Pick at least one seat on the map.");
        return null;
      }
      return { buyer_id: buyer, seats: [...picked] };
    }
    const quantity = Number(form.elements.quantity.value);
    return { buyer_id: buyer, section: form.elements.section.value, quantity };
  }

  function busy(on) {
    $("buy-button").disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sending || load()) return; // a purchase is under way: never a second one
    const body = readForm();
    if (!body) return;
    const pending = { key: newKey(), body };
    save(pending);
    send(pending);
  });

  async function send(pending) {
    sending = true;
    busy(true);
    let answer;
    try {
      answer = await fetch(`/v1/events/${encodeURIComponent(eventId)}/purchases`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": pending.key },
        body: JSON.stringify(pending.body),
      });
    } catch {
      retryLater(pending, 2, "The connection failed; trying again in 2 s.");
      return;
    }
    const body = await answer.json().catch(() => ({}));
    if (answer.status === 202) {
      sending = false;
      save({ ...pending, purchase_id: body.purchase_id, position: body.position });
      follow(body.purchase_id, body);
    } else if ([409, 429, 503].includes(answer.status)) {
      const seconds = Number(answer.headers.get("Retry-After") || "1");
      const why = body.error ? body.error.message : "The sale is busy";
      retryLater(pending, seconds, `${why}. Your request keeps its key; trying again in ${seconds} s.`);
    } else {
      sending = false;
      forget();
      busy(false);
      const error = body.error || { message: `The request failed (${answer.status}).` };
      showError(error.field || "form", error.message);
    }
  }

  function retryLater(pending, seconds, message) {
    showError("form", message);
    setTimeout(() => send(pending), seconds * 1000);
  }

  // -- the line -------------------------------------------------------------------------
  function follow(purchaseId, first) {
    $("line").hidden = false;
    busy(true);
    show(first);
    if (purchaseStream) purchaseStream.close();
    purchaseStream = new EventSource(`/v1/purchases/${encodeURIComponent(purchaseId)}/stream`);
    purchaseStream.addEventListener("purchase", (message) => {
      const purchase = JSON.parse(message.data);
      show(purchase);
      if (purchase.status === "confirmed" || purchase.status === "rejected") {
        purchaseStream.close();
        forget();
        $("again").hidden = false;
      }
    });
  }

  function show(purchase) {
    const status = $("line-status");
    const progress = $("line-progress");
    if (purchase.status === "queued") {
      const ahead = purchase.ahead ?? (purchase.position ? purchase.position - 1 : 0);
      mostAhead = Math.max(mostAhead, ahead);
      const eta = purchase.eta_seconds ? ` — about ${Math.ceil(purchase.eta_seconds)} s` : "";
      status.textContent = `You are number ${(ahead + 1).toLocaleString("en")} in line${eta}.`;
      progress.value = mostAhead ? Math.round(100 * (1 - ahead / mostAhead)) : 0;
    } else if (purchase.status === "failed") {
      status.textContent = "Your request hit a problem; it keeps its place while an operator looks.";
    } else {
      progress.value = 100;
      status.textContent = "Your turn came.";
      $("outcome").replaceChildren(outcome(purchase));
    }
  }

  function outcome(purchase) {
    const box = document.createElement("div");
    box.className = `outcome ${purchase.status}`;
    const title = document.createElement("h3");
    const text = document.createElement("p");
    if (purchase.status === "confirmed") {
      const order = purchase.order;
      const where = order.seats.length ? `seats ${order.seats.join(", ")}` : `${order.quantity} × ${order.section}`;
      title.textContent = "Confirmed";
      text.textContent = `Order ${order.order_id}: ${where}, ${(order.amount_cents / 100).toFixed(2)} in total.`;
    } else {
      title.textContent = "Not bought";
      text.textContent = REASONS[purchase.reason] || `Rejected: ${purchase.reason}.`;
    }
    box.append(title, text);
    return box;
  }

  $("again").addEventListener("click", () => {
    $("again").hidden = true;
    $("line").hidden = true;
    $("outcome").replaceChildren();
    mostAhead = 0;
    busy(false);
  });

  // -- a reload resumes what was under way ----------------------------------------------
  const pending = load();
  if (pending && pending.purchase_id) {
    follow(pending.purchase_id, { status: "queued", position: pending.position });
  } else if (pending) {
    send(pending); // the POST may or may not have arrived: the same key makes it safe
  }
})();
