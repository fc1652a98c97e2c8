// The live metrics of a container: CPU % and memory (used / limit) over the last few
// minutes, one GET /containers/{cuid}/metrics a second while it runs (the API has no
// stream; its answer comes from memory). Drawn by hand in SVG, with the latest values as
// text beside it for screen readers. `stop()` ends the polling when the page is left.
import { api } from "./api.js";
import { h } from "./dom.js";

const INTERVAL_MS = 1000;
const WINDOW = 180; // samples kept: three minutes at one a second
const W = 360;
const H = 120;
const SVG = "http://www.w3.org/2000/svg";

export function bytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// One chart: a polyline over the window, its top value labelled.
function chart(id, label) {
  const line = svg("polyline", { class: "chart-line", points: "" });
  const area = svg("polygon", { class: "chart-area", points: "" });
  const top = svg("text", { x: 4, y: 12, class: "chart-label" });
  const root = svg("svg", {
    id, viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label,
    preserveAspectRatio: "none",
  });
  for (const y of [0.25, 0.5, 0.75]) root.append(svg("line", { x1: 0, x2: W, y1: H * y, y2: H * y, class: "chart-grid" }));
  root.append(area, line, top);
  const draw = (values, max, topText) => {
    const step = W / (WINDOW - 1);
    const x0 = W - (values.length - 1) * step;
    const pts = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(H - 1 - (Math.min(v ?? 0, max) / max) * (H - 16)).toFixed(1)}`);
    line.setAttribute("points", pts.join(" "));
    area.setAttribute("points", pts.length ? `${x0.toFixed(1)},${H} ${pts.join(" ")} ${W},${H}` : "");
    top.textContent = topText;
  };
  return { root, draw };
}

// A round top above the peak: 1, 2 or 5 times a power of ten (of `unit`s: bytes are
// scaled in KiB, MiB, GiB so that the label reads "2 MiB", not "1.9 MiB").
function scaleTop(values, floor, unit = 1) {
  const peak = Math.max(floor, ...values.map((v) => v ?? 0));
  const base = unit === 1 ? 1 : unit ** Math.max(0, Math.floor(Math.log(peak) / Math.log(unit)));
  const scaled = peak / base;
  const p = 10 ** Math.floor(Math.log10(scaled));
  return [1, 2, 5, 10].map((m) => m * p).find((t) => t >= scaled) * base;
}

export function metricsPanel(cuid, showError) {
  const samples = [];
  const cpu = chart("chart-cpu", "CPU % over the last minutes");
  const mem = chart("chart-memory", "Memory used over the last minutes");
  const cpuText = h("dd", { id: "metric-cpu" }, "—");
  const memText = h("dd", { id: "metric-memory" }, "—");
  const netText = h("dd", { id: "metric-network" }, "—");
  const note = h("p", { class: "muted", id: "metrics-note" });
  const figure = h("div", { class: "metrics", id: "metrics", "data-samples": "0" },
    h("figure", {}, h("figcaption", {}, "CPU %"), cpu.root),
    h("figure", {}, h("figcaption", {}, "Memory"), mem.root),
    h("dl", { class: "facts metric-values" },
      h("dt", {}, "CPU"), cpuText, h("dt", {}, "Memory"), memText, h("dt", {}, "Network"), netText));
  let timer = null;
  let running = false;
  let generation = 0;

  const redraw = () => {
    const last = samples[samples.length - 1];
    const cpus = samples.map((s) => s.cpu_percent);
    cpu.draw(cpus, scaleTop(cpus, 10), `${scaleTop(cpus, 10)} %`);
    const used = samples.map((s) => s.memory.used_bytes);
    const memTop = Math.min(scaleTop(used, 1024 * 1024, 1024), last.memory.limit_bytes || Infinity);
    mem.draw(used, memTop, bytes(memTop));
    cpuText.textContent = last.cpu_percent === null ? "measuring…" : `${last.cpu_percent.toFixed(1)} %`;
    const m = last.memory;
    memText.textContent = `${bytes(m.used_bytes)} of ${bytes(m.limit_bytes)} (${(m.percent ?? 0).toFixed(1)} %)`;
    const prev = samples[samples.length - 2];
    const net = last.network || {};
    if (prev && prev.network && last.sampled_at !== prev.sampled_at) {
      const secs = Math.max((Date.parse(last.sampled_at) - Date.parse(prev.sampled_at)) / 1000, 0.001);
      const rx = (net.rx_bytes - prev.network.rx_bytes) / secs;
      const tx = (net.tx_bytes - prev.network.tx_bytes) / secs;
      netText.textContent = `in ${bytes(Math.max(rx, 0))}/s, out ${bytes(Math.max(tx, 0))}/s`;
    } else {
      netText.textContent = `in ${bytes(net.rx_bytes)}, out ${bytes(net.tx_bytes)} in all`;
    }
    figure.dataset.samples = String(samples.length);
  };

  // One loop per run: `generation` changes when polling stops, which ends the old loop.
  const tick = async (gen) => {
    if (gen !== generation) return;
    if (!document.hidden) {
      try {
        const sample = await api("GET", `/containers/${cuid}/metrics`);
        if (gen !== generation) return;
        samples.push(sample);
        if (samples.length > WINDOW) samples.shift();
        redraw();
      } catch (err) {
        if (gen !== generation) return;
        if (err.code === "CONTAINER_NOT_RUNNING") return setStatus("exited");
        showError(err);
      }
    }
    if (gen === generation) timer = setTimeout(() => tick(gen), INTERVAL_MS);
  };

  // Polls while the container is running or paused (the API has metrics for those only).
  const setStatus = (status) => {
    const live = status === "running" || status === "paused";
    note.textContent = live ? "" : "Not running: no metrics.";
    if (live === running) return;
    running = live;
    generation += 1;
    clearTimeout(timer);
    timer = null;
    if (live) tick(generation);
  };
  const element = h("section", { "aria-labelledby": "metrics-h" },
    h("h2", { id: "metrics-h" }, "Metrics"), note, figure);
  return { element, setStatus, stop: () => setStatus("left") };
}
