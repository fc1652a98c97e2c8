// One build or pull job: its status, facts, layer progress and its log, followed live
// (GET /builds/{job_id}/logs?follow=true streams until the job ends). The status is read
// again whenever the log moves (at most twice a second) and once the log has ended.
import { api, session } from "./api.js";
import { h, replace, statusBadge, when } from "./dom.js";
import { followText } from "./stream.js";
import { bytes, shortId } from "./widgets.js";

export const FINAL = ["succeeded", "failed", "cancelled"];
const MAX_LOG_CHARS = 300_000;
const REFRESH_MS = 500;

function facts(job) {
  const rows = [
    ["job", h("span", { class: "mono" }, job.job_id)],
    ["kind", job.kind],
    ["tags", (job.tags || []).join(", ") || "—"],
    ["owner", job.owner],
    ["created", when(job.created_at)],
    ["duration", job.duration === null ? "—" : `${job.duration.toFixed(1)} s`],
  ];
  if (job.total_steps) rows.push(["step", `${job.step ?? 0} of ${job.total_steps}`]);
  if (job.image_id) rows.push(["image", h("span", { class: "mono", title: job.image_id }, shortId(job.image_id))]);
  if (job.digest) rows.push(["digest", h("span", { class: "mono" }, job.digest)]);
  if (job.error) {
    const e = job.error;
    rows.push(["error", h("span", { class: "error-text" }, `${e.message || ""} (${e.kind || "error"} ${e.code || ""})`)]);
  }
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function progressList(progress) {
  const layers = Object.entries(progress || {});
  if (layers.length === 0) return null;
  return h("ul", { class: "layers", "aria-label": "Layers" }, layers.map(([layer, p]) => {
    const total = p.total || 0;
    const current = p.current || 0;
    const meter = total
      ? h("progress", { max: total, value: current, "aria-label": `layer ${layer}` })
      : null;
    return h("li", {}, h("span", { class: "mono" }, shortId(layer)), " ", p.status || "", " ",
      meter, total ? h("span", { class: "muted" }, ` ${bytes(current)} / ${bytes(total)}`) : null);
  }));
}

// `onChange(job)` hears every fresh read of the job (the last one is final).
export function jobView(jobId, { onChange = () => {}, onError = () => {} } = {}) {
  const status = h("span", { id: "job-status" });
  const details = h("div", {});
  const layers = h("div", {});
  const log = h("pre", { class: "logs", id: "job-log", tabindex: 0, "aria-label": "Log" });
  const cancel = h("button", { type: "button", class: "danger", hidden: true }, "Cancel");
  let follow = null;
  let timer = null;
  let finished = false;
  let stopped = false;

  const show = (job) => {
    replace(status, statusBadge(job.status));
    replace(details, facts(job));
    replace(layers, progressList(job.progress));
    finished = FINAL.includes(job.status);
    cancel.hidden = finished || !session.can("images:build");
    onChange(job);
  };
  const refresh = async () => {
    timer = null;
    if (stopped) return;
    try {
      show(await api("GET", `/builds/${jobId}`));
    } catch (err) {
      onError(err);
    }
  };
  const soon = () => {
    if (!timer) timer = setTimeout(refresh, REFRESH_MS);
  };
  const append = (text) => {
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = (log.textContent + text).slice(-MAX_LOG_CHARS);
    if (atEnd) log.scrollTop = log.scrollHeight;
    soon();
  };
  const start = async () => {
    await refresh();
    log.textContent = "";
    follow = followText(`/builds/${jobId}/logs?follow=true`, append);
    try {
      await follow.done;
    } catch (err) {
      onError(err);
    }
    clearTimeout(timer);
    await refresh();
  };
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      show(await api("POST", `/builds/${jobId}/cancel`));
    } catch (err) {
      onError(err);
    } finally {
      cancel.disabled = false;
    }
  });
  const element = h("section", { class: "job", "aria-label": `Job ${jobId}` },
    h("div", { class: "head" }, h("h2", {}, "Status"), status, cancel),
    details, layers,
    h("h2", {}, "Log"), log);
  return {
    element,
    start,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      if (follow) follow.stop();
    },
    get finished() {
      return finished;
    },
  };
}
