// The containers page: a table with live status (the shared event feed), filters by
// status and tag (the API's), a search by name (over the page shown), cursor pages.
import { api, session } from "./api.js";
import { actionButtons, deleting } from "./actions.js";
import { errorBox, h, portLinks, replace, statusBadge, when } from "./dom.js";

const STATUSES = ["running", "paused", "restarting", "created", "exited", "dead", "failed", "missing"];
const PAGE = 50;

export async function containersPage(main, { navigate, onEvent }) {
  const params = new URLSearchParams(location.search);
  const state = { cursors: [null], rows: new Map(), containers: [] };
  const alerts = h("div", { "aria-live": "polite" });
  const status = h("select", { id: "filter-status" },
    h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, s)));
  const tag = h("input", { id: "filter-tag", type: "text", value: params.get("tag") || "", placeholder: "tag" });
  const search = h("input", { id: "search", type: "search", placeholder: "name or cuid" });
  const body = h("tbody");
  const prev = h("button", { type: "button", class: "secondary", disabled: true }, "Previous");
  const next = h("button", { type: "button", class: "secondary", disabled: true }, "Next");
  const count = h("span", { class: "muted" });
  const showError = (err) => replace(alerts, errorBox(err));

  const row = (c) => {
    const tr = h("tr", { "data-cuid": c.cuid, "data-name": (c.name || "").toLowerCase() },
      h("td", {}, h("a", { href: `/ui/containers/${c.cuid}`, "data-link": true }, c.name || c.cuid.slice(0, 13))),
      h("td", { class: "mono" }, c.image),
      h("td", {}, statusBadge(c.status)),
      h("td", {}, portLinks(c.ports)),
      h("td", { class: "wide" }, when(c.created_at)),
      h("td", { class: "actions" }, actionButtons(c, {
        onDone: (fresh) => (fresh ? update(fresh) : drop(c.cuid)),
        onError: showError,
      })),
    );
    return tr;
  };
  const update = (c) => {
    const old = state.rows.get(c.cuid);
    if (!old) return;
    const fresh = row(c);
    old.replaceWith(fresh);
    state.rows.set(c.cuid, fresh);
    filterByName();
  };
  const drop = (cuid) => {
    state.rows.get(cuid)?.remove();
    state.rows.delete(cuid);
  };
  const filterByName = () => {
    const needle = search.value.trim().toLowerCase();
    for (const [cuid, tr] of state.rows) {
      tr.hidden = Boolean(needle) && !tr.dataset.name.includes(needle) && !cuid.includes(needle);
    }
  };

  const load = async (cursor) => {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (status.value) query.set("status", status.value);
    if (tag.value.trim()) query.set("tag", tag.value.trim());
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/containers?${query}`);
    state.rows.clear();
    replace(body, page.containers.map((c) => {
      const tr = row(c);
      state.rows.set(c.cuid, tr);
      return tr;
    }));
    if (page.containers.length === 0) {
      body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No containers.")));
    }
    state.next = page.next_cursor;
    next.disabled = !page.next_cursor;
    prev.disabled = state.cursors.length <= 1;
    count.textContent = `page ${state.cursors.length}`;
    filterByName();
  };
  const reload = () => load(state.cursors.at(-1)).catch(showError);
  const refilter = () => {
    state.cursors = [null];
    const query = new URLSearchParams();
    if (status.value) query.set("status", status.value);
    if (tag.value.trim()) query.set("tag", tag.value.trim());
    history.replaceState(null, "", `/ui/containers${query.size ? `?${query}` : ""}`);
    reload();
  };
  status.addEventListener("change", refilter);
  tag.addEventListener("change", refilter);
  search.addEventListener("input", filterByName);
  next.addEventListener("click", () => {
    state.cursors.push(state.next);
    reload();
  });
  prev.addEventListener("click", () => {
    state.cursors.pop();
    reload();
  });

  // Live status: an event about a shown container refreshes its row; a new or deleted
  // container refreshes the page (a burst of events is one request per container).
  const pending = new Map();
  const stop = onEvent((event) => {
    if (!event.cuid || deleting.has(event.cuid)) return;
    if (!state.rows.has(event.cuid)) {
      if (event.type === "container.created" && state.cursors.length === 1) schedule("*", reload);
      return;
    }
    schedule(event.cuid, async () => {
      if (deleting.has(event.cuid)) return; // deleted meanwhile, by this tab
      try {
        update(await api("GET", `/containers/${event.cuid}`));
      } catch (err) {
        if (err.status === 404) drop(event.cuid);
        else showError(err);
      }
    });
  });
  const schedule = (key, work) => {
    if (pending.has(key)) return;
    pending.set(key, setTimeout(() => {
      pending.delete(key);
      work();
    }, 150));
  };

  replace(main,
    h("div", { class: "head" }, h("h1", {}, "Containers"),
      session.can("containers:create")
        ? h("a", { class: "button", href: "/ui/containers/new", "data-link": true }, "New container")
        : null),
    alerts,
    h("div", { class: "toolbar", role: "search" },
      h("div", {}, h("label", { for: "filter-status" }, "Status"), status),
      h("div", {}, h("label", { for: "filter-tag" }, "Tag"), tag),
      h("div", { class: "grow" }, h("label", { for: "search" }, "Search ", h("span", { class: "hint" }, "(this page)")), search)),
    h("div", { class: "table-wrap" },
      h("table", { "aria-label": "Containers" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Image"),
          h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Ports"),
          h("th", { scope: "col", class: "wide" }, "Created"), h("th", { scope: "col" }, h("span", { class: "muted" }, "Actions")))),
        body)),
    h("div", { class: "pager" }, prev, next, count),
  );
  await load(null);
  return () => {
    stop();
    for (const timer of pending.values()) clearTimeout(timer);
  };
}
