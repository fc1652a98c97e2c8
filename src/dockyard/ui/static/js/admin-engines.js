// Admin tab: the engines (status, capacity, containers; drain, undrain, remove; add one
// by its address) and the cluster's totals (GET /cluster/info).
import { api, session } from "./api.js";
import { confirmDialog, h, replace, statusBadge, when } from "./dom.js";
import { alertArea, bytes, dataTable, field } from "./widgets.js";

function totals(info) {
  const t = info.total;
  const cell = (label, value) => h("div", { class: "stat" }, h("span", { class: "muted" }, label), h("strong", {}, value));
  return h("div", { class: "stats", id: "cluster", "aria-label": "Cluster" },
    cell("engines", String(info.engine_count)),
    cell("CPUs", `${t.reserved_cpus} of ${t.cpus} reserved`),
    cell("memory", `${bytes(t.reserved_memory)} of ${bytes(t.memory)} reserved`),
    cell("containers", String(info.container_count)),
    cell("images", String(info.image_count)));
}

function engineRow(engine, { onError, onChanged }) {
  const buttons = [];
  const act = (text, label, work, danger = false) => {
    const button = h("button", { type: "button", class: danger ? "danger" : "secondary", "aria-label": `${label} ${engine.id}` }, text);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        if (await work()) onChanged();
      } catch (err) {
        onError(err);
      } finally {
        button.disabled = false;
      }
    });
    buttons.push(button);
  };
  if (session.can("engines:manage")) {
    const verb = engine.draining ? "undrain" : "drain";
    act(engine.draining ? "Undrain" : "Drain", engine.draining ? "Undrain" : "Drain",
      async () => api("POST", `/engines/${encodeURIComponent(engine.id)}/${verb}`));
    if (engine.kind !== "local") {
      act("Remove", "Remove", async () => {
        if (!(await confirmDialog(`Remove the engine ${engine.id} (${engine.addr})?`, "Remove"))) return false;
        await api("DELETE", `/engines/${encodeURIComponent(engine.id)}`);
        return true;
      }, true);
    }
  }
  const c = engine.containers;
  return h("tr", { "data-engine": engine.id },
    h("td", { class: "mono" }, engine.id),
    h("td", { class: "mono" }, engine.addr),
    h("td", {}, statusBadge(engine.status), engine.last_error ? h("div", { class: "muted" }, engine.last_error) : null),
    h("td", {}, engine.cpus === null ? "—" : String(engine.cpus)),
    h("td", {}, bytes(engine.memory)),
    h("td", {}, c ? `${c.running} running, ${c.paused} paused, ${c.stopped} stopped` : "—"),
    h("td", { class: "wide" }, engine.version || "—"),
    h("td", { class: "wide" }, when(engine.last_seen) || "—"),
    h("td", { class: "actions" }, buttons));
}

function addForm({ onAdded, onError }) {
  const addr = h("input", { id: "engine-addr", type: "text", required: true, placeholder: "tcp://10.0.0.5:2376" });
  const id = h("input", { id: "engine-id", type: "text", maxlength: 64, placeholder: "(generated)" });
  const submit = h("button", { type: "submit" }, "Add engine");
  const form = h("form", { class: "form card", "aria-label": "Add an engine" },
    h("h2", {}, "Add an engine"),
    h("div", { class: "grid" }, field("engine-addr", "Address", addr), field("engine-id", "Id", id, "(optional)")),
    h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const body = { addr: addr.value.trim() };
      if (id.value.trim()) body.id = id.value.trim();
      onAdded(await api("POST", "/engines", { json: body }));
      form.reset();
    } catch (err) {
      onError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function enginesTab(panel) {
  const alerts = alertArea();
  const summary = h("div", {});
  const table = dataTable("Engines", ["Id", "Address", "Status", "CPUs", "Memory", "Containers", { text: "Version", class: "wide" }, { text: "Last seen", class: "wide" }, { text: "Actions", class: "muted" }]);
  const load = async () => {
    try {
      const [{ engines }, info] = await Promise.all([api("GET", "/engines"), api("GET", "/cluster/info")]);
      table.fill(engines.map((e) => engineRow(e, { onError: alerts.error, onChanged: load })), "No engines.");
      replace(summary, totals(info));
    } catch (err) {
      alerts.error(err);
    }
  };
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  refresh.addEventListener("click", load);
  replace(panel, alerts.element,
    h("div", { class: "head" }, h("h2", {}, "Cluster"), refresh), summary,
    session.can("engines:manage")
      ? addForm({ onError: alerts.error, onAdded: (e) => { alerts.note(`Engine ${e.id} added: ${e.status}.`); load(); } })
      : null,
    h("h2", {}, "Engines"), table.element);
  await load();
}
