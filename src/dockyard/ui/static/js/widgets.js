// Small pieces the images, builds, events and admin pages share: a table with a message
// row when empty, cursor pages, a labelled field, an alerts area, sizes, a copy button.
import { errorBox, h, replace } from "./dom.js";

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}

export function shortId(id, length = 12) {
  if (!id) return "—";
  return id.replace(/^sha256:/, "").slice(0, length);
}

export function field(id, text, input, hint) {
  return h("div", { class: "field" },
    h("label", { for: id }, text, hint ? h("span", { class: "hint" }, ` ${hint}`) : null), input);
}

// An aria-live area for errors (with their request id) and notes.
export function alertArea() {
  const element = h("div", { "aria-live": "polite" });
  return {
    element,
    error: (err) => {
      replace(element, errorBox(err));
      element.scrollIntoView({ block: "nearest" });
    },
    note: (...content) => replace(element, h("p", { class: "notice", role: "status" }, ...content)),
    clear: () => replace(element),
  };
}

// A table: `columns` are header texts (a {text, class} object for a styled one); `fill`
// replaces the rows, showing `empty` when there are none.
export function dataTable(label, columns, { id } = {}) {
  const body = h("tbody");
  const head = columns.map((c) => (typeof c === "string" ? { text: c } : c));
  const element = h("div", { class: "table-wrap" },
    h("table", { "aria-label": label, id },
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col", class: c.class }, c.text)))),
      body));
  const fill = (rows, empty = "Nothing here.") => {
    replace(body, rows);
    if (rows.length === 0) body.append(h("tr", {}, h("td", { colspan: head.length, class: "muted" }, empty)));
  };
  return { element, body, fill };
}

// Previous / Next over an opaque keyset cursor. `load(cursor)` reads a page and returns
// `{ show, next }`: `show()` draws it (skipped when a newer load has started meanwhile, so
// answers arriving out of order never mix) and `next` is its next_cursor. `first()`
// starts again (new filters); `again()` reloads this page.
export function cursorPager(load, onError) {
  let cursors = [null];
  let next = null;
  let latest = 0;
  const prev = h("button", { type: "button", class: "secondary", disabled: true }, "Previous");
  const nextButton = h("button", { type: "button", class: "secondary", disabled: true }, "Next");
  const count = h("span", { class: "muted" });
  const show = async () => {
    const mine = ++latest;
    try {
      const page = await load(cursors.at(-1));
      if (mine !== latest) return;
      page.show();
      next = page.next;
      nextButton.disabled = !next;
      prev.disabled = cursors.length <= 1;
      count.textContent = `page ${cursors.length}`;
    } catch (err) {
      if (mine === latest) onError(err);
    }
  };
  nextButton.addEventListener("click", () => {
    cursors.push(next);
    show();
  });
  prev.addEventListener("click", () => {
    cursors.pop();
    show();
  });
  return {
    element: h("div", { class: "pager" }, prev, nextButton, count),
    first: () => {
      cursors = [null];
      return show();
    },
    again: show,
  };
}

// A button that copies `text` to the clipboard and says so.
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "secondary" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy it";
    }
  });
  return button;
}

// What a page shows to someone without the permission it needs (the API refuses anyway).
export function notAllowed(main, title, permission) {
  replace(main, h("h1", {}, title),
    h("p", { class: "notice", role: "status" }, `This page needs the ${permission} permission.`));
}

// A compact text of an event's or a job's details object.
export function detailsText(details) {
  if (!details) return "";
  return Object.entries(details)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" ");
}
