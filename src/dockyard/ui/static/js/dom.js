// A tiny element builder: h("button", {type: "button", onclick}, "Start").
// Attributes named on* become listeners; no inline style (the CSP forbids it).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// An API error as a readable message with its request id (nothing fails silently).
export function errorBox(error) {
  const rid = error && error.requestId;
  return h(
    "div",
    { class: "alert", role: "alert" },
    h("span", { class: "msg" }, (error && error.message) || String(error)),
    rid ? h("span", { class: "rid" }, `request id ${rid}`) : null,
  );
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, "data-status": status }, status);
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

// Links to a container's published ports, on the host the UI was opened from.
export function portLinks(ports) {
  if (!ports || ports.length === 0) return [h("span", { class: "muted" }, "none")];
  return ports.map((port, i) => {
    const label = `${port.host ?? "?"}→${port.container}/${port.protocol}`;
    const sep = i > 0 ? ", " : null;
    if (!port.host || port.protocol !== "tcp") return [sep, h("span", { class: "mono" }, label)];
    const href = `${location.protocol}//${location.hostname}:${port.host}/`;
    return [sep, h("a", { class: "mono", href, target: "_blank", rel: "noopener" }, label)];
  });
}

// A yes/no question in a modal <dialog>; resolves true when confirmed.
export function confirmDialog(question, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { "aria-label": "Confirm" },
      h("form", { method: "dialog" },
        h("p", {}, question),
        h("div", { class: "form-actions" },
          h("button", { value: "yes", class: "danger" }, confirmLabel),
          h("button", { value: "no", class: "secondary", autofocus: true }, "Cancel"),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "yes");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
