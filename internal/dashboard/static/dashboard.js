// dcon dashboard: every element with data-live polls its URL each second
// and puts the answer in place: the figures ([data-figure]) of a connector
// or of each row ([data-connector]) of a project's table, and the live chart.
// After each update it counts it in the element's data-updates, and the
// chart says what it drew in data-bars (seconds with traffic) and
// data-delivered (their deliveries): tests wait on them instead of sleeping.
"use strict";

(function () {
  const period = 1000;

  function setFigures(scope, figures) {
    for (const [name, value] of Object.entries(figures)) {
      const el = scope.querySelector('[data-figure="' + name + '"]');
      if (el && el.textContent !== value) el.textContent = value;
    }
  }

  function update(el, data) {
    if (data.figures) setFigures(el, data.figures);
    if (data.connectors) {
      for (const row of el.querySelectorAll("tr[data-connector]")) {
        const f = data.connectors[row.dataset.connector];
        if (f) setFigures(row, f);
      }
    }
    if (data.points) {
      const canvas = el.querySelector("canvas");
      if (canvas) {
        draw(canvas, data.points);
        canvas.dataset.bars = String(data.points.filter((p) => p.delivered + p.failed + p.expired > 0).length);
        canvas.dataset.delivered = String(data.points.reduce((n, p) => n + p.delivered, 0));
      }
      summarize(el.querySelector("#chart-summary"), data.points);
    }
    el.dataset.updates = String((Number(el.dataset.updates) || 0) + 1);
  }

  function poll(el) {
    const url = el.dataset.live;
    const next = () => setTimeout(() => poll(el), period);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then((r) => {
        if (r.status === 401) {
          window.location.reload(); // the session ended: the page sends us to log in
          return null;
        }
        return r.ok ? r.json() : null;
      })
      .then((data) => {
        if (data) update(el, data);
        next();
      })
      .catch(next);
  }

  function summarize(el, points) {
    if (!el || points.length === 0) return;
    const p = points[points.length - 1];
    let text = "Last second: " + p.delivered + " delivered, " + (p.failed + p.expired) + " failed or expired";
    if (p.delivered + p.failed > 0) text += ", mean latency " + p.avgMs.toFixed(1) + " ms";
    el.textContent = text + ".";
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * e) return m * e;
    return 10 * e;
  }

  function draw(canvas, points) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue("--muted").trim() || "#5b6574";
    const line = style.getPropertyValue("--line").trim() || "#dde1e7";
    const accent = style.getPropertyValue("--accent").trim() || "#2f5fd0";
    const font = style.getPropertyValue("--font").trim() || "sans-serif";

    const left = 44, right = 52, top = 8, bottom = 22;
    const pw = Math.max(1, w - left - right), ph = Math.max(1, h - top - bottom);
    const count = Math.max(1, points.length);
    const maxRate = niceMax(Math.max(...points.map((p) => p.delivered + p.failed + p.expired)));
    const maxLat = niceMax(Math.max(...points.map((p) => p.avgMs)));

    g.font = "12px " + font;
    g.fillStyle = muted;
    g.strokeStyle = line;
    g.lineWidth = 1;
    g.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      g.beginPath();
      g.moveTo(left, Math.round(y) + 0.5);
      g.lineTo(left + pw, Math.round(y) + 0.5);
      g.stroke();
      g.textAlign = "right";
      g.fillText(fmt((maxRate * i) / 4) + "/s", left - 6, y);
      g.textAlign = "left";
      g.fillText(fmt((maxLat * i) / 4) + " ms", left + pw + 6, y);
    }
    g.textAlign = "center";
    g.textBaseline = "alphabetic";
    g.fillText("−" + count + " s", left + 12, h - 4);
    g.fillText("now", left + pw - 12, h - 4);

    const bw = pw / count;
    points.forEach((p, i) => {
      const x = left + i * bw;
      const ok = (p.delivered / maxRate) * ph;
      const bad = ((p.failed + p.expired) / maxRate) * ph;
      g.fillStyle = "#3c9d6c";
      g.fillRect(x + 0.5, top + ph - ok, Math.max(1, bw - 1), ok);
      g.fillStyle = "#d0574f";
      g.fillRect(x + 0.5, top + ph - ok - bad, Math.max(1, bw - 1), bad);
    });

    g.strokeStyle = accent;
    g.lineWidth = 2;
    g.beginPath();
    let started = false;
    points.forEach((p, i) => {
      if (p.delivered + p.failed === 0) {
        started = false;
        return;
      }
      const x = left + i * bw + bw / 2;
      const y = top + ph - (p.avgMs / maxLat) * ph;
      if (started) g.lineTo(x, y);
      else g.moveTo(x, y);
      started = true;
    });
    g.stroke();
  }

  function fmt(v) {
    return v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1);
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const el of document.querySelectorAll("[data-live]")) poll(el);
  });
})();
