// Admin tabs: accounts (list, create, change the role, delete) and roles (list, view
// each one's permissions). Deleting asks first; the API's refusals (the last admin, one's
// own account, an account that still owns containers) show as messages.
import { api, session } from "./api.js";
import { confirmDialog, h, replace, when } from "./dom.js";
import { alertArea, dataTable, field } from "./widgets.js";

function quotaText(quota) {
  const parts = Object.entries(quota || {}).filter(([, v]) => v !== null).map(([k, v]) => `${k.replace("max_", "")} ${v}`);
  return parts.length ? parts.join(", ") : "none";
}

function roleSelect(id, roles, chosen, label) {
  return h("select", { id, "aria-label": label },
    roles.map((r) => h("option", { value: r.name, selected: r.name === chosen }, r.name)));
}

function accountRow(account, roles, { onError, onChanged }) {
  const me = session.get().username === account.username;
  const role = roleSelect(undefined, roles, account.role, `Role of ${account.username}`);
  role.addEventListener("change", async () => {
    role.disabled = true;
    try {
      await api("PATCH", `/accounts/${encodeURIComponent(account.username)}`, { json: { role: role.value } });
      onChanged();
    } catch (err) {
      role.value = account.role;
      onError(err);
    } finally {
      role.disabled = false;
    }
  });
  const del = h("button", { type: "button", class: "danger", "aria-label": `Delete ${account.username}`, disabled: me }, "Delete");
  del.addEventListener("click", async () => {
    const yes = await confirmDialog(`Delete the account ${account.username}? Its keys and tokens go too.`, "Delete");
    if (!yes) return;
    try {
      await api("DELETE", `/accounts/${encodeURIComponent(account.username)}`);
      onChanged();
    } catch (err) {
      onError(err);
    }
  });
  return h("tr", { "data-account": account.username },
    h("td", {}, account.username, me ? h("span", { class: "muted" }, " (you)") : null),
    h("td", {}, role),
    h("td", {}, quotaText(account.quota)),
    h("td", { class: "wide" }, when(account.created_at)),
    h("td", { class: "actions" }, del));
}

function createForm(roles, alerts, onCreated) {
  const username = h("input", { id: "new-username", type: "text", required: true, autocomplete: "off", maxlength: 64 });
  const password = h("input", { id: "new-password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const role = roleSelect("new-role", roles, "user");
  const submit = h("button", { type: "submit" }, "Create account");
  const form = h("form", { class: "form card", "aria-label": "New account" },
    h("h2", {}, "New account"),
    h("div", { class: "grid" },
      field("new-username", "User name", username),
      field("new-password", "Password", password, "(8 characters or more)"),
      field("new-role", "Role", role)),
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const made = await api("POST", "/accounts", {
        json: { username: username.value.trim(), password: password.value, role: role.value },
      });
      form.reset();
      alerts.note(`Account ${made.username} created (${made.role}).`);
      onCreated();
    } catch (err) {
      alerts.error(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function accountsTab(panel) {
  const alerts = alertArea();
  const table = dataTable("Accounts", ["User name", "Role", "Quota", { text: "Created", class: "wide" }, { text: "Actions", class: "muted" }]);
  const { roles } = await api("GET", "/roles");
  const load = async () => {
    try {
      const { accounts } = await api("GET", "/accounts");
      table.fill(accounts.map((a) => accountRow(a, roles, { onError: alerts.error, onChanged: load })), "No accounts.");
    } catch (err) {
      alerts.error(err);
    }
  };
  replace(panel, alerts.element, createForm(roles, alerts, load), h("h2", {}, "Accounts"), table.element);
  await load();
}

function roleRow(role) {
  const perms = h("details", {}, h("summary", {}, `${role.permissions.length} permissions`),
    h("ul", { class: "perms" }, role.permissions.map((p) => h("li", { class: "mono" }, p))));
  return h("tr", { "data-role": role.name },
    h("td", {}, role.name),
    h("td", {}, role.builtin ? "built-in" : "custom"),
    h("td", {}, role.description || (role.builtin ? "" : "—")),
    h("td", {}, perms));
}

export async function rolesTab(panel) {
  const alerts = alertArea();
  const table = dataTable("Roles", ["Name", "Kind", "Description", "Permissions"]);
  replace(panel, alerts.element, table.element);
  try {
    const { roles } = await api("GET", "/roles");
    table.fill(roles.map(roleRow), "No roles.");
  } catch (err) {
    alerts.error(err);
  }
}
