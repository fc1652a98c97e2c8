// The create form: POST /containers with the image picked from GET /images.
import { api } from "./api.js";
import { errorBox, h, replace } from "./dom.js";

const RESTART = ["no", "always", "unless-stopped", "on-failure"];

function field(id, text, input, hint) {
  return h("div", { class: "field" },
    h("label", { for: id }, text, hint ? h("span", { class: "hint" }, ` ${hint}`) : null), input);
}

// Rows of inputs (env pairs, ports) with add and remove buttons.
function rows(name, make, addLabel) {
  const list = h("div", { class: "rows", id: `${name}-rows` });
  const add = () => {
    const inputs = make(list.children.length);
    const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove this ${name} row` }, "×");
    const row = h("div", { class: "row" }, inputs, remove);
    remove.addEventListener("click", () => row.remove());
    list.append(row);
    inputs[0].focus();
  };
  const button = h("button", { type: "button", class: "secondary", id: `add-${name}` }, addLabel);
  button.addEventListener("click", add);
  return { element: h("div", {}, list, button), list };
}

function readEnv(list) {
  const env = {};
  for (const row of list.children) {
    const [key, value] = row.querySelectorAll("input");
    if (key.value.trim()) env[key.value.trim()] = value.value;
  }
  return env;
}

function readPorts(list) {
  const ports = [];
  for (const row of list.children) {
    const [container, host] = row.querySelectorAll("input");
    const protocol = row.querySelector("select").value;
    if (!container.value) continue;
    const port = { container: Number(container.value), protocol };
    if (host.value) port.host = Number(host.value);
    ports.push(port);
  }
  return ports;
}

function number(input) {
  return input.value === "" ? undefined : Number(input.value);
}

export async function createPage(main, { navigate }) {
  const alerts = h("div", { "aria-live": "polite" });
  const image = h("select", { id: "image", required: true });
  const i = (id, attrs = {}) => h("input", { id, name: id, type: "text", ...attrs });
  const name = i("name", { pattern: "[A-Za-z0-9_.\\-]{1,63}" });
  const command = i("command", { placeholder: "e.g. sh" });
  const tags = i("tags", { placeholder: "web, demo" });
  const restart = h("select", { id: "restart" }, RESTART.map((r) => h("option", { value: r }, r)));
  const idle = i("idle_timeout", { type: "number", min: 1, step: 1 });
  const ttl = i("ttl", { type: "number", min: 1, step: 1 });
  const cpus = i("cpus", { type: "number", min: 0.01, step: 0.01 });
  const memory = i("memory", { placeholder: "512m" });
  const pids = i("pids", { type: "number", min: 16, step: 1 });
  const publishAll = h("input", { id: "publish_all", type: "checkbox" });
  const start = h("input", { id: "start", type: "checkbox", checked: true });
  const env = rows("env", (n) => [
    h("input", { type: "text", placeholder: "NAME", "aria-label": `env name ${n + 1}` }),
    h("input", { type: "text", placeholder: "value", "aria-label": `env value ${n + 1}` }),
  ], "Add variable");
  const ports = rows("port", (n) => [
    h("input", { type: "number", min: 1, max: 65535, placeholder: "container port", "aria-label": `container port ${n + 1}` }),
    h("input", { type: "number", min: 1024, max: 65535, placeholder: "host port (any)", "aria-label": `host port ${n + 1}` }),
    h("select", { "aria-label": `protocol ${n + 1}` }, h("option", {}, "tcp"), h("option", {}, "udp")),
  ], "Add port");
  const submit = h("button", { type: "submit" }, "Create");

  const form = h("form", { class: "form", "aria-label": "New container" },
    h("div", { class: "grid" },
      field("image", "Image", image),
      field("name", "Name", name, "(optional)"),
      field("command", "Command", command, "(optional)"),
      field("tags", "Tags", tags, "(comma separated)"),
      field("restart", "Restart", restart),
      field("idle_timeout", "Idle timeout", idle, "(seconds)"),
      field("ttl", "Time to live", ttl, "(seconds)")),
    h("h2", {}, "Resources"),
    h("div", { class: "grid" },
      field("cpus", "CPUs", cpus), field("memory", "Memory", memory), field("pids", "Processes", pids)),
    h("h2", {}, "Environment"), env.element,
    h("h2", {}, "Ports"), ports.element,
    h("label", { class: "check" }, publishAll, "Publish every port the image exposes"),
    h("label", { class: "check" }, start, "Start it now"),
    h("div", { class: "form-actions" }, submit,
      h("a", { href: "/ui/containers", "data-link": true }, "Cancel")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(alerts);
    const resources = { cpus: number(cpus), memory: memory.value.trim() || undefined, pids: number(pids) };
    const body = {
      image: image.value,
      name: name.value.trim() || undefined,
      command: command.value.trim() || undefined,
      tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
      env: readEnv(env.list),
      ports: readPorts(ports.list),
      publish_all: publishAll.checked,
      restart: restart.value,
      idle_timeout: number(idle),
      ttl: number(ttl),
      resources: Object.fromEntries(Object.entries(resources).filter(([, v]) => v !== undefined)),
      start: start.checked,
    };
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      const created = await api("POST", "/containers", { json: body });
      navigate(`/ui/containers/${created.cuid}`);
    } catch (err) {
      replace(alerts, errorBox(err));
      alerts.scrollIntoView({ block: "nearest" });
      submit.disabled = false;
      submit.textContent = "Create";
    }
  });

  replace(main, h("h1", {}, "New container"), alerts, form);
  try {
    const { images } = await api("GET", "/images?limit=500");
    const names = images.flatMap((img) => img.tags).sort();
    replace(image, names.map((t) => h("option", { value: t }, t)));
    if (names.length === 0) alerts.append(h("p", { class: "notice" }, "No images on the engine yet."));
  } catch (err) {
    replace(alerts, errorBox(err));
  }
  image.focus();
}
