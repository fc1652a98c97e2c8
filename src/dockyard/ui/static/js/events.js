// The events page: the newest events (filters by type and container, the API's), then new
// ones live as they happen (an events stream of its own, with the same filters, resumed
// after the last event shown), and older ones on demand.
import { api, query, session } from "./api.js";
import { h, replace, when } from "./dom.js";
import { followEvents } from "./stream.js";
import { alertArea, dataTable, detailsText, notAllowed } from "./widgets.js";

const GROUPS = [
  ["engine", ["create", "start", "restart", "pause", "unpause", "kill", "stop", "die", "destroy", "oom", "health_status"]],
  ["Dockyard", ["container.created", "container.updated", "container.deleted", "container.action",
    "container.adopted", "container.missing", "container.failed", "container.idle_stopped",
    "container.expired", "container.scaled", "container.redeployed", "image.deleted"]],
  ["builds and pulls", ["build.queued", "build.started", "build.succeeded", "build.failed", "build.cancelled", "image.pulled"]],
  ["webhooks", ["webhook.created", "webhook.updated", "webhook.deleted", "webhook.delivery_failed", "hub.delivery"]],
];
const PAGE = 100;
const MAX_ROWS = 1000;

function subject(cuid) {
  if (!cuid) return h("span", { class: "muted" }, "—");
  if (/^c[0-9a-f-]+$/.test(cuid)) return h("a", { class: "mono", href: `/ui/containers/${cuid}`, "data-link": true }, cuid.slice(0, 13));
  if (/^j[0-9a-f]+$/.test(cuid)) return h("a", { class: "mono", href: `/ui/builds/${cuid}`, "data-link": true }, cuid.slice(0, 13));
  return h("span", { class: "mono" }, cuid.slice(0, 13));
}

function eventRow(event) {
  return h("tr", { "data-event": event.id, "data-type": event.type },
    h("td", { class: "nowrap" }, when(event.time)),
    h("td", { class: "mono" }, event.type),
    h("td", {}, subject(event.cuid)),
    h("td", {}, event.actor || event.source),
    h("td", { class: "mono details" }, detailsText(event.details)));
}

export async function eventsPage(main) {
  if (!session.can("containers:read")) return notAllowed(main, "Events", "containers:read");
  const params = new URLSearchParams(location.search);
  const alerts = alertArea();
  const type = h("select", { id: "filter-type" }, h("option", { value: "" }, "any type"),
    GROUPS.map(([label, types]) => h("optgroup", { label },
      types.map((t) => h("option", { value: t, selected: params.get("type") === t }, t)))));
  const cuid = h("input", { id: "filter-cuid", type: "search", list: "event-containers", placeholder: "cuid", value: params.get("cuid") || "" });
  const known = h("datalist", { id: "event-containers" });
  const state = h("span", { id: "events-state", class: "muted", role: "status" }, "connecting…");
  const older = h("button", { type: "button", class: "secondary", hidden: true }, "Older");
  const table = dataTable("Events", ["Time", "Type", "Subject", "By", "Details"], { id: "events" });
  let next = null;
  let stop = () => {};
  let latest = 0; // the newest load: an older answer arriving late is dropped

  const filters = () => ({ type: type.value, cuid: cuid.value.trim() });
  const live = (after) => {
    stop();
    stop = followEvents(`/events${query({ follow: "true", ...filters() })}`, (event) => {
      table.body.querySelector("td[colspan]")?.parentElement.remove();
      table.body.prepend(eventRow(event));
      while (table.body.rows.length > MAX_ROWS) table.body.lastElementChild.remove();
    }, {
      after,
      onState: (s, err) => {
        state.textContent = s === "live" ? "live" : s === "reconnecting" ? "reconnecting…" : "stopped";
        state.dataset.state = s;
        if (err) alerts.error(err);
      },
    });
  };
  const load = async () => {
    const mine = ++latest;
    alerts.clear();
    stop();
    history.replaceState(null, "", `/ui/events${query(filters())}`);
    try {
      const page = await api("GET", `/events${query({ limit: PAGE, ...filters() })}`);
      if (mine !== latest) return;
      table.fill(page.events.map(eventRow), "No events yet: new ones appear here as they happen.");
      next = page.next_cursor;
      older.hidden = !next;
      live(page.events.length ? page.events[0].id : null);
    } catch (err) {
      if (mine === latest) alerts.error(err);
    }
  };
  older.addEventListener("click", async () => {
    try {
      const page = await api("GET", `/events${query({ limit: PAGE, cursor: next, ...filters() })}`);
      table.body.append(...page.events.map(eventRow));
      next = page.next_cursor;
      older.hidden = !next;
    } catch (err) {
      alerts.error(err);
    }
  });
  type.addEventListener("change", load);
  cuid.addEventListener("change", load);

  replace(main,
    h("div", { class: "head" }, h("h1", {}, "Events"), state),
    alerts.element,
    h("div", { class: "toolbar", role: "search" },
      h("div", {}, h("label", { for: "filter-type" }, "Type"), type),
      h("div", {}, h("label", { for: "filter-cuid" }, "Container"), cuid, known)),
    table.element,
    h("div", { class: "pager" }, older));
  api("GET", "/containers?limit=100").then(({ containers }) => {
    replace(known, containers.map((c) => h("option", { value: c.cuid }, c.name || c.cuid)));
  }).catch(alerts.error);
  await load();
  return () => stop();
}
