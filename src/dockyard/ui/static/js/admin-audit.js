// Admin tab: the audit trail (GET /audit), newest first, with its filters (user, action,
// resource, a time window) and cursor pages.
import { api, query } from "./api.js";
import { h, replace, when } from "./dom.js";
import { alertArea, cursorPager, dataTable, field } from "./widgets.js";

const PAGE = 50;

// A datetime-local value (the browser's zone) as ISO 8601 with a zone, as the API wants.
function instant(input) {
  if (!input.value) return "";
  const date = new Date(input.value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

function entryRow(e) {
  return h("tr", { "data-audit": e.id },
    h("td", { class: "nowrap" }, when(e.at)),
    h("td", {}, e.user),
    h("td", { class: "mono" }, `${e.method} ${e.route}`),
    h("td", { class: "mono" }, e.action),
    h("td", { class: "mono" }, e.resource || "—"),
    h("td", {}, String(e.status)),
    h("td", { class: "mono wide" }, e.credential),
    h("td", { class: "mono wide" }, e.request_id || "—"));
}

export async function auditTab(panel) {
  const alerts = alertArea();
  const input = (id, attrs = {}) => h("input", { id, type: "text", ...attrs });
  const user = input("audit-user", { placeholder: "any" });
  const action = input("audit-action", { placeholder: "e.g. create_account" });
  const resource = input("audit-resource", { placeholder: "cuid, account, key…" });
  const since = input("audit-since", { type: "datetime-local" });
  const until = input("audit-until", { type: "datetime-local" });
  const table = dataTable("Audit", ["When", "User", "Request", "Action", "Resource", "Status", { text: "Credential", class: "wide" }, { text: "Request id", class: "wide" }]);
  const pager = cursorPager(async (cursor) => {
    const q = query({
      limit: PAGE, user: user.value.trim(), action: action.value.trim(), resource: resource.value.trim(),
      since: instant(since), until: instant(until), cursor,
    });
    const page = await api("GET", `/audit${q}`);
    return { show: () => table.fill(page.entries.map(entryRow), "No entries."), next: page.next_cursor };
  }, alerts.error);
  const form = h("form", { class: "toolbar", role: "search", "aria-label": "Audit filters" },
    field("audit-user", "User", user), field("audit-action", "Action", action),
    field("audit-resource", "Resource", resource), field("audit-since", "Since", since),
    field("audit-until", "Until", until, "(exclusive)"),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    alerts.clear();
    pager.first();
  });
  replace(panel, alerts.element, form, table.element, pager.element);
  await pager.first();
}
