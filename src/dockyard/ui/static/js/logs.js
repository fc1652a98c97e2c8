// The logs pane of a container: the last 500 lines, then followed; a search over what is
// shown (matches highlighted, a count, next / previous) and a download of the whole log.
import { fetchBlob, saveBlob, streamText } from "./api.js";
import { h, replace } from "./dom.js";

const MAX_LOG_CHARS = 200_000;
// A TTY's log carries terminal control sequences (colours, cursor moves): not for a <pre>.
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r(?=\n)/g;

// Where `query` occurs in `text` (case-insensitive, plain text, not a pattern).
export function findAll(text, query) {
  const hits = [];
  if (!query) return hits;
  const hay = text.toLowerCase();
  const needle = query.toLowerCase();
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + needle.length)) {
    hits.push(at);
  }
  return hits;
}

// The search box and its state; `render()` redraws the <pre> from `getText()`.
function searchBar(pre, getText) {
  const input = h("input", {
    type: "search", id: "logs-search", placeholder: "Search the logs", "aria-label": "Search the logs",
  });
  const count = h("span", { id: "logs-count", class: "muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "secondary", "aria-label": "Previous match" }, "↑");
  const next = h("button", { type: "button", class: "secondary", "aria-label": "Next match" }, "↓");
  let current = 0;
  let total = 0;

  const render = ({ scroll = false } = {}) => {
    const text = getText();
    const query = input.value;
    const hits = findAll(text, query);
    total = hits.length;
    if (current >= total) current = total ? total - 1 : 0;
    prev.disabled = next.disabled = total === 0;
    count.textContent = query ? (total ? `${current + 1} of ${total}` : "no matches") : "";
    count.dataset.matches = String(total);
    if (!total) {
      pre.textContent = text;
      return;
    }
    const parts = [];
    let last = 0;
    hits.forEach((at, i) => {
      parts.push(text.slice(last, at));
      const mark = h("mark", { class: i === current ? "hit current" : "hit" }, text.slice(at, at + query.length));
      parts.push(mark);
      last = at + query.length;
    });
    parts.push(text.slice(last));
    replace(pre, parts);
    if (scroll) pre.querySelector("mark.current").scrollIntoView({ block: "nearest" });
  };
  const step = (by) => {
    if (!total) return;
    current = (current + by + total) % total;
    render({ scroll: true });
  };
  input.addEventListener("input", () => {
    current = 0;
    render({ scroll: true });
  });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    step(event.shiftKey ? -1 : 1);
  });
  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  const element = h("div", { class: "logs-search", role: "search" }, input, prev, next, count);
  return { element, render, active: () => Boolean(input.value) };
}

export function logsPanel(container, showError) {
  const cuid = container.cuid;
  const pre = h("pre", { class: "logs", id: "logs", tabindex: 0, "aria-label": "Logs" });
  const follow = h("input", { type: "checkbox", id: "logs-follow", checked: true });
  let text = "";
  let controller = null;
  let queued = false;
  const search = searchBar(pre, () => text);
  const show = () => {
    queued = false;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (search.active()) search.render();
    else pre.textContent = text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  const start = () => {
    stop();
    text = "";
    show();
    controller = new AbortController();
    const path = `/containers/${cuid}/logs?tail=500&follow=${follow.checked}`;
    streamText(path, (chunk) => {
      text = (text + chunk.replace(CONTROL, "")).slice(-MAX_LOG_CHARS);
      // Many chunks in a burst: one redraw per frame.
      if (!queued) {
        queued = true;
        requestAnimationFrame(show);
      }
    }, controller.signal).catch((err) => {
      if (err.name !== "AbortError") showError(err);
    });
  };
  const stop = () => {
    if (controller) controller.abort();
    controller = null;
  };
  const download = h("button", { type: "button", class: "secondary", id: "logs-download" }, "Download logs");
  download.addEventListener("click", async () => {
    download.disabled = true;
    try {
      const { blob } = await fetchBlob(`/containers/${cuid}/logs?tail=all`);
      saveBlob(blob, `${container.name || cuid}.log`);
    } catch (err) {
      showError(err);
    } finally {
      download.disabled = false;
    }
  });
  follow.addEventListener("change", start);
  const element = h("section", { "aria-labelledby": "logs-h" },
    h("div", { class: "head" }, h("h2", { id: "logs-h" }, "Logs"),
      h("label", { class: "check" }, follow, "Follow"), download),
    search.element,
    pre);
  return { element, start, stop };
}
