// The admin section: tabs for accounts, roles, service keys, the audit trail and the
// engines, each shown only with the permission it needs (the API refuses anyway). The
// section itself is for those who hold one of accounts:manage, audit:read, engines:read.
import { session } from "./api.js";
import { h, replace } from "./dom.js";
import { notAllowed } from "./widgets.js";

const TABS = [
  ["accounts", "Accounts", "accounts:manage", () => import("./admin-accounts.js").then((m) => m.accountsTab)],
  ["roles", "Roles", "accounts:manage", () => import("./admin-accounts.js").then((m) => m.rolesTab)],
  ["keys", "Service keys", "keys:manage", () => import("./admin-keys.js").then((m) => m.keysTab)],
  ["audit", "Audit", "audit:read", () => import("./admin-audit.js").then((m) => m.auditTab)],
  ["engines", "Engines", "engines:read", () => import("./admin-engines.js").then((m) => m.enginesTab)],
];
export const ADMIN_PERMISSIONS = ["accounts:manage", "audit:read", "engines:read"];

export async function adminPage(main, { params, navigate }) {
  if (!ADMIN_PERMISSIONS.some((p) => session.can(p))) {
    return notAllowed(main, "Admin", "accounts:manage");
  }
  const allowed = TABS.filter(([, , permission]) => session.can(permission));
  const tab = allowed.find(([name]) => name === params[0]);
  if (!tab) {
    navigate(`/ui/admin/${allowed[0][0]}`, { replaceState: true });
    return null;
  }
  const panel = h("div", { id: "admin-panel" });
  const tabs = h("nav", { class: "tabs", "aria-label": "Admin" }, allowed.map(([name, text]) =>
    h("a", { href: `/ui/admin/${name}`, "data-link": true, "aria-current": name === tab[0] ? "page" : false }, text)));
  replace(main, h("h1", {}, `Admin: ${tab[1]}`), tabs, panel);
  const show = await tab[3]();
  return show(panel, { navigate });
}
