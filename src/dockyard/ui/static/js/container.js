// One container: status (live), facts, ports as links, logs (follow) and the terminal.
import { api, session, streamText } from "./api.js";
import { actionButtons } from "./actions.js";
import { errorBox, h, portLinks, replace, statusBadge, when } from "./dom.js";
import { mountTerminal } from "./terminal.js";

const MAX_LOG_CHARS = 200_000;
// A TTY's log carries terminal control sequences (colours, cursor moves): not for a <pre>.
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r(?=\n)/g;

function facts(c) {
  const res = c.resources || {};
  const rows = [
    ["cuid", h("span", { class: "mono" }, c.cuid)],
    ["image", h("span", { class: "mono" }, c.image)],
    ["ports", portLinks(c.ports)],
    ["owner", c.owner],
    ["tags", (c.tags || []).join(", ") || "—"],
    ["restart", c.restart],
    ["resources", `${res.cpus ?? "?"} CPUs, ${res.memory ?? "?"} memory, ${res.pids ?? "?"} processes`],
    ["created", when(c.created_at)],
    ["started", when(c.started_at) || "—"],
    ["finished", when(c.finished_at) || "—"],
    ["exit code", c.exit_code ?? "—"],
  ];
  if (c.error) rows.push(["error", c.error.message || JSON.stringify(c.error)]);
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function logsPanel(cuid, showError) {
  const pre = h("pre", { class: "logs", id: "logs", tabindex: 0, "aria-label": "Logs" });
  const follow = h("input", { type: "checkbox", id: "logs-follow", checked: true });
  let controller = null;
  const start = () => {
    stop();
    pre.textContent = "";
    controller = new AbortController();
    const path = `/containers/${cuid}/logs?tail=500&follow=${follow.checked}`;
    streamText(path, (text) => {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = (pre.textContent + text.replace(CONTROL, "")).slice(-MAX_LOG_CHARS);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }, controller.signal).catch((err) => {
      if (err.name !== "AbortError") showError(err);
    });
  };
  const stop = () => {
    if (controller) controller.abort();
    controller = null;
  };
  follow.addEventListener("change", start);
  const element = h("section", { "aria-labelledby": "logs-h" },
    h("div", { class: "head" }, h("h2", { id: "logs-h" }, "Logs"),
      h("label", { class: "check" }, follow, "Follow")),
    pre);
  return { element, start, stop };
}

export async function containerPage(main, { params, navigate, onEvent }) {
  const [cuid] = params;
  const alerts = h("div", { "aria-live": "polite" });
  const showError = (err) => replace(alerts, errorBox(err));
  const title = h("h1");
  const badge = h("span", { id: "status" });
  const buttons = h("span", { class: "actions" });
  const about = h("div", { class: "card" });
  const termHost = h("div", { id: "terminal-host" });
  let container = await api("GET", `/containers/${cuid}`);
  let unmount = null;
  let gone = false;
  let left = false;

  const draw = () => {
    title.textContent = container.name || container.cuid;
    replace(badge, statusBadge(container.status));
    replace(buttons, actionButtons(container, {
      onDone: (fresh) => {
        if (fresh) {
          container = fresh;
          draw();
        } else {
          gone = true;
          navigate("/ui/containers");
        }
      },
      onError: showError,
    }));
    replace(about, facts(container));
  };
  draw();

  const logs = logsPanel(cuid, showError);
  const canExec = session.can("containers:exec");
  replace(main,
    h("p", {}, h("a", { href: "/ui/containers", "data-link": true }, "← Containers")),
    h("div", { class: "head" }, title, badge, buttons),
    alerts, about,
    canExec ? h("section", { "aria-labelledby": "term-h" }, h("h2", { id: "term-h" }, "Terminal"), termHost) : null,
    logs.element);
  logs.start();
  if (canExec) {
    mountTerminal(termHost, cuid).then((fn) => {
      if (left) fn();
      else unmount = fn;
    }, showError);
  }

  const stop = onEvent(async (event) => {
    if (event.cuid !== cuid || gone) return;
    try {
      container = await api("GET", `/containers/${cuid}`);
      draw();
    } catch (err) {
      if (err.status === 404) {
        gone = true;
        replace(badge, statusBadge("removed"));
      } else showError(err);
    }
  });
  return () => {
    left = true;
    stop();
    logs.stop();
    if (unmount) unmount();
  };
}
