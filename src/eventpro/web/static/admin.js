// The operator's dashboard: samples /admin/events/{id}/stats once a second and draws each
// series as an SVG polyline. No chart library: six small charts need a few lines each.
"use strict";
(() => {
  const table = document.getElementById("counts");
  const eventId = table.dataset.event;
  const KEEP = 120; // samples per chart: two minutes
  const series = { admissions: [], confirmed: [], rejected: [], depth: [], remaining: [], p99: [] };
  let previous = null;

  const total = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

  // p99 of the admissions between two samples of the cumulative histogram, in ms.
  function p99(before, after) {
    const count = after.at(-1)[1] - before.at(-1)[1];
    if (count <= 0) return null;
    for (let i = 0; i < after.length; i++) {
      if (after[i][1] - before[i][1] >= 0.99 * count) {
        return Number.isFinite(after[i][0]) ? after[i][0] * 1000 : null;
      }
    }
    return null;
  }

  function push(key, value) {
    series[key].push(value);
    if (series[key].length > KEEP) series[key].shift();
  }

  function draw(key, unit) {
    const values = series[key];
    const svg = document.getElementById(`chart-${key}`);
    const top = Math.max(1, ...values.filter((v) => v !== null));
    const step = 300 / (KEEP - 1);
    const offset = KEEP - values.length; // the newest sample sits at the right edge
    const points = values
      .map((v, i) =>
        v === null ? null : `${((offset + i) * step).toFixed(1)},${(100 - (98 * v) / top).toFixed(1)}`,
      )
      .filter(Boolean)
      .join(" ");
    svg.querySelector("polyline").setAttribute("points", points);
    const last = values.at(-1);
    const text = last === null || last === undefined ? "—" : `${Math.round(last * 10) / 10}${unit}`;
    document.getElementById(`chart-${key}-latest`).textContent = `now ${text} · max ${Math.round(top)}${unit}`;
  }

  function showNumbers(state) {
    for (const [status, count] of Object.entries(state.counts)) {
      const cell = table.querySelector(`[data-count="${status}"]`);
      if (cell) cell.textContent = count;
    }
    table.querySelector("[data-depth]").textContent = state.event.queue.depth;
    for (const section of state.event.sections) {
      const cell = document.querySelector(`[data-remaining="${CSS.escape(section.name)}"]`);
      if (cell) cell.textContent = section.remaining;
    }
    document.getElementById("sale-status").textContent = state.event.status.replace("_", " ");
  }

  function sample(state) {
    showNumbers(state);
    const remaining = state.event.sections.reduce((a, s) => a + s.remaining, 0);
    if (previous) {
      const seconds = Math.max(0.001, state.at - previous.at);
      const rate = (key) => (state.counts[key] - previous.counts[key]) / seconds;
      push("admissions", (total(state.counts) - total(previous.counts)) / seconds);
      push("confirmed", Math.max(0, rate("confirmed")));
      push("rejected", Math.max(0, rate("rejected")));
      push("p99", p99(previous.admission_buckets, state.admission_buckets));
    }
    push("depth", state.event.queue.depth);
    push("remaining", remaining);
    previous = state;
    for (const [key, unit] of Object.entries({
      admissions: "/s", confirmed: "/s", rejected: "/s", depth: "", remaining: "", p99: " ms",
    })) {
      draw(key, unit);
    }
  }

  async function tick() {
    try {
      const answer = await fetch(`/admin/events/${encodeURIComponent(eventId)}/stats`, {
        credentials: "same-origin",
      });
      if (answer.status === 401) {
        window.location.assign("/admin");
        return;
      }
      if (answer.ok) sample(await answer.json());
    } catch {
      // the next tick tries again
    }
    setTimeout(tick, 1000);
  }
  tick();
})();
