// Admin tab: service keys (GET /servicekeys: admins see everyone's). A new key is shown
// once, with a copy button (the service keeps only its hash); revoking asks first.
import { api, query, session } from "./api.js";
import { confirmDialog, h, replace, when } from "./dom.js";
import { alertArea, copyButton, dataTable, field } from "./widgets.js";

function keyRow(key, { onError, onChanged }) {
  const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke ${key.prefix}` }, "Revoke");
  revoke.addEventListener("click", async () => {
    const yes = await confirmDialog(`Revoke the key ${key.prefix}…? Tokens issued with it stop working too.`, "Revoke");
    if (!yes) return;
    try {
      await api("DELETE", `/servicekeys/${encodeURIComponent(key.id)}`);
      onChanged();
    } catch (err) {
      onError(err);
    }
  });
  return h("tr", { "data-key": key.id },
    h("td", { class: "mono" }, `${key.prefix}…`),
    h("td", {}, key.owner),
    h("td", {}, key.description || h("span", { class: "muted" }, "—")),
    h("td", {}, key.role || h("span", { class: "muted" }, "the owner's")),
    h("td", { class: "wide" }, when(key.created_at)),
    h("td", {}, when(key.expires_at) || "never"),
    h("td", { class: "wide" }, when(key.last_used_at) || "never"),
    h("td", { class: "actions" }, revoke));
}

function shownOnce(made) {
  return h("div", { class: "card secret", id: "new-key-panel", role: "status" },
    h("p", {}, h("strong", {}, "The new key, shown this once: "), "copy it now; the service keeps only its hash."),
    h("div", { class: "row" }, h("code", { id: "new-key", class: "mono" }, made.key), copyButton(made.key, "Copy key")));
}

function createForm(roles, { onCreated, onError }) {
  const description = h("input", { id: "key-description", type: "text", maxlength: 255, placeholder: "what uses it" });
  const role = h("select", { id: "key-role" }, h("option", { value: "" }, "the owner's own"),
    roles.map((r) => h("option", { value: r.name }, r.name)));
  const days = h("input", { id: "key-days", type: "number", min: 1, step: 1, placeholder: "never" });
  const submit = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "form card", "aria-label": "New service key" },
    h("h2", {}, "New service key"),
    h("div", { class: "grid" },
      field("key-description", "Description", description),
      field("key-role", "Role", role, "(narrower than yours)"),
      field("key-days", "Expires in", days, "(days)")),
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const body = { description: description.value.trim() };
    if (role.value) body.role = role.value;
    if (days.value) body.expires_in = Number(days.value) * 86400;
    try {
      onCreated(await api("POST", "/servicekeys", { json: body }));
      form.reset();
    } catch (err) {
      onError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function keysTab(panel) {
  const alerts = alertArea();
  const secret = h("div", {});
  const owner = h("input", { id: "filter-owner", type: "search", placeholder: "any owner" });
  const table = dataTable("Service keys", ["Key", "Owner", "Description", "Role", { text: "Created", class: "wide" }, "Expires", { text: "Last used", class: "wide" }, { text: "Actions", class: "muted" }]);
  const load = async () => {
    try {
      const { servicekeys } = await api("GET", `/servicekeys${query({ owner: owner.value.trim() })}`);
      table.fill(servicekeys.map((k) => keyRow(k, { onError: alerts.error, onChanged: load })), "No service keys.");
    } catch (err) {
      alerts.error(err);
    }
  };
  owner.addEventListener("change", load);
  const { roles } = await api("GET", "/roles");
  const form = createForm(roles, {
    onError: alerts.error,
    onCreated: (made) => {
      alerts.clear();
      replace(secret, shownOnce(made));
      load();
    },
  });
  replace(panel, alerts.element, form, secret,
    h("h2", {}, "Service keys"),
    session.can("resources:all")
      ? h("div", { class: "toolbar", role: "search" }, h("div", {}, h("label", { for: "filter-owner" }, "Owner"), owner))
      : null,
    table.element);
  await load();
}
