// One container: status (live), facts, ports as links, pause/unpause, env, the metrics
// chart, logs (follow, search, download), the terminal and the files browser.
import { api, session } from "./api.js";
import { actionButtons, deleting } from "./actions.js";
import { errorBox, h, portLinks, replace, statusBadge, when } from "./dom.js";
import { filesPanel } from "./files.js";
import { logsPanel } from "./logs.js";
import { metricsPanel } from "./metrics.js";
import { mountTerminal } from "./terminal.js";

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

// Pause and unpause (containers:control): the lifecycle buttons of actions.js cover the rest.
function pauseButtons(container, { onDone, onError }) {
  if (!session.can("containers:control")) return [];
  const label = container.name || container.cuid;
  const make = (verb, text, from) => {
    const button = h("button", {
      type: "button", class: "secondary", "data-action": verb, "aria-label": `${text} ${label}`,
      disabled: container.status !== from,
    }, text);
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = `${text}…`;
      try {
        onDone(await api("POST", `/containers/${container.cuid}/${verb}`));
      } catch (err) {
        onError(err);
        button.disabled = false;
      } finally {
        button.textContent = text;
      }
    });
    return button;
  };
  return container.status === "paused" ? [make("unpause", "Unpause", "paused")] : [make("pause", "Pause", "running")];
}

// The environment as the API returns it (only the owner and admins see a container).
function envTable(env) {
  const names = Object.keys(env || {}).sort();
  if (!names.length) return h("p", { class: "muted", id: "env" }, "No variables.");
  return h("div", { class: "table-wrap" }, h("table", { id: "env" },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Value"))),
    h("tbody", {}, names.map((name) =>
      h("tr", { "data-name": name }, h("td", { class: "mono" }, name), h("td", { class: "mono env-value" }, env[name]))))));
}

function section(id, title, ...body) {
  return h("section", { "aria-labelledby": `${id}-h` }, h("h2", { id: `${id}-h` }, title), ...body);
}

export async function containerPage(main, { params, navigate, onEvent }) {
  const [cuid] = params;
  const alerts = h("div", { "aria-live": "polite" });
  const showError = (err) => replace(alerts, errorBox(err));
  const title = h("h1");
  const badge = h("span", { id: "status" });
  const buttons = h("span", { class: "actions" });
  const about = h("div", { class: "card" });
  const envHost = h("div", { id: "env-host" });
  const termHost = h("div", { id: "terminal-host" });
  let container = await api("GET", `/containers/${cuid}`);
  let unmount = null;
  let gone = false;
  let left = false;
  const logs = logsPanel(container, showError);
  const metrics = metricsPanel(cuid, showError);
  const files = session.can("files:read") ? filesPanel(cuid) : null;

  const onDone = (fresh) => {
    if (fresh) {
      container = fresh;
      draw();
    } else {
      gone = true;
      navigate("/ui/containers");
    }
  };
  const draw = () => {
    title.textContent = container.name || container.cuid;
    replace(badge, statusBadge(container.status));
    const lifecycle = actionButtons(container, { onDone, onError: showError });
    const cut = lifecycle.findIndex((b) => b.dataset.action === "delete");
    const at = cut < 0 ? lifecycle.length : cut; // pause before delete
    lifecycle.splice(at, 0, ...pauseButtons(container, { onDone, onError: showError }));
    replace(buttons, lifecycle);
    replace(about, facts(container));
    replace(envHost, envTable(container.env));
    metrics.setStatus(container.status);
  };
  draw();

  const canExec = session.can("containers:exec");
  replace(main,
    h("p", {}, h("a", { href: "/ui/containers", "data-link": true }, "← Containers")),
    h("div", { class: "head" }, title, badge, buttons),
    alerts, about, metrics.element,
    canExec ? section("term", "Terminal", termHost) : null,
    logs.element,
    section("env", "Environment", envHost),
    files ? files.element : null);
  logs.start();
  if (files) files.start();
  if (canExec) {
    mountTerminal(termHost, cuid).then((fn) => {
      if (left) fn();
      else unmount = fn;
    }, showError);
  }

  const stop = onEvent(async (event) => {
    if (event.cuid !== cuid || gone || deleting.has(cuid)) return;
    try {
      container = await api("GET", `/containers/${cuid}`);
      draw();
    } catch (err) {
      if (err.status === 404) {
        gone = true;
        metrics.stop();
        replace(badge, statusBadge("removed"));
      } else showError(err);
    }
  });
  return () => {
    left = true;
    stop();
    logs.stop();
    metrics.stop();
    if (unmount) unmount();
  };
}
