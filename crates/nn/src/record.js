// The training page's script (see record.rs): draws each chart as an SVG
// from the JSON data. Every series becomes one polyline with one point per
// recorded step (a step with no value splits the line but keeps its place).
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("training-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d",
    "#65a30d", "#4f46e5", "#a16207"];
  const W = 560, H = 260, L = 62, R = 12, T = 10, B = 30;
  const el = (tag, attrs, parent) => {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.append(e);
    return e;
  };
  const fmt = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(3)));

  function chart(title, series, log, fixed) {
    const div = document.createElement("div");
    div.className = "chart";
    const h = document.createElement("h2");
    h.textContent = title;
    div.append(h);
    const svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H }, div);
    const steps = D.steps;
    const ok = (v) => v !== null && (!log || v > 0);
    const tr = (v) => (log ? Math.log10(v) : v);
    let lo = Infinity, hi = -Infinity;
    for (const s of series) for (const v of s.values) if (ok(v)) { lo = Math.min(lo, tr(v)); hi = Math.max(hi, tr(v)); }
    if (fixed) { lo = fixed[0]; hi = fixed[1]; }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (log) { lo = Math.floor(lo); hi = Math.ceil(hi); }
    if (hi - lo < 1e-12) { hi = lo + 1; }
    const x0 = steps[0], x1 = steps[steps.length - 1];
    const sx = (x) => L + ((x - x0) / Math.max(1, x1 - x0)) * (W - L - R);
    const sy = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#9ca3af" }, svg);
    // Y ticks: every decade on a log scale, five steps otherwise.
    const ticks = [];
    if (log) for (let d = lo; d <= hi; d++) ticks.push([d, "1e" + d]);
    else for (let k = 0; k <= 4; k++) { const v = lo + ((hi - lo) * k) / 4; ticks.push([v, fmt(v)]); }
    for (const [v, label] of ticks) {
      el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: "#f3f4f6" }, svg);
      el("text", { x: L - 4, y: sy(v) + 4, "text-anchor": "end" }, svg).textContent = label;
    }
    el("text", { x: L, y: H - 8 }, svg).textContent = "step " + x0;
    el("text", { x: W - R, y: H - 8, "text-anchor": "end" }, svg).textContent = "step " + x1;
    const legend = document.createElement("div");
    legend.className = "legend";
    series.forEach((s, k) => {
      const color = COLORS[k % COLORS.length];
      // One polyline per series with a point for every recorded step; a
      // missing value (NaN, or not above 0 on a log scale) sits on the
      // chart's floor, so the point count always equals the step count.
      const pts = s.values.map((v, i) => sx(steps[i]).toFixed(1) + "," + sy(ok(v) ? tr(v) : lo).toFixed(1));
      const line = el("polyline", { class: "curve", "data-series": s.name, points: pts.join(" "),
        fill: "none", stroke: color, "stroke-width": 1.5 }, svg);
      el("title", {}, line).textContent = s.name;
      const span = document.createElement("span");
      span.style.setProperty("--c", color);
      span.textContent = s.name;
      legend.append(span);
    });
    div.append(legend);
    document.getElementById("charts").append(div);
  }

  const layers = D.layers;
  const name = (l) => "layer " + l.name + (l.activation ? " (" + l.activation + ")" : "");
  document.getElementById("summary").textContent =
    D.steps.length + " recorded steps, " + layers.length + " layers. Gradient norms and update ratios are on log scales.";
  chart("training loss", [{ name: "loss", values: D.loss }], false);
  chart("gradient norm ‖∂L/∂θ‖ per layer", layers.map((l) => ({ name: name(l), values: l.grad_norm })), true);
  chart("update / weight ratio ‖Δθ‖/‖θ‖ per layer", layers.map((l) => ({ name: name(l), values: l.update_ratio })), true);
  const act = layers.filter((l) => l.activation);
  if (act.length) {
    chart("dead (relu) or saturated (sigmoid, tanh) share per layer",
      act.map((l) => ({ name: name(l), values: l.inactive })), false, [0, 1]);
  }
})();
