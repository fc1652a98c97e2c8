// The images page: the engine's images one row per tag (repo:tag, id, size, created, the
// containers using it), a filter by tag, cursor pages, delete (asked first), and a pull
// form whose job is shown live (its layers' progress and its log) until it ends.
import { api, query, session } from "./api.js";
import { confirmDialog, h, replace, when } from "./dom.js";
import { jobView } from "./jobs.js";
import { alertArea, bytes, cursorPager, dataTable, field, notAllowed, shortId } from "./widgets.js";

const PAGE = 50;

function pullForm(alerts, onPulled, leaving) {
  const image = h("input", { id: "pull-image", type: "text", required: true, placeholder: "127.0.0.1:5000/team/app:1" });
  const registry = h("select", { id: "pull-registry" },
    h("option", { value: "" }, "saved credentials for its registry, if any"));
  const submit = h("button", { type: "submit" }, "Pull");
  const panel = h("div", { id: "pull-job" });
  let job = null;
  const form = h("form", { class: "form card", "aria-label": "Pull an image" },
    h("h2", {}, "Pull an image"),
    h("div", { class: "grid" },
      field("pull-image", "Image", image, "(a tag or digest; no tag is :latest)"),
      session.can("registries:read") ? field("pull-registry", "Credentials", registry) : null),
    h("div", { class: "form-actions" }, submit),
    panel);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alerts.clear();
    submit.disabled = true;
    try {
      const accepted = await api("POST", "/images/pull", {
        json: { image: image.value.trim(), registry: registry.value || undefined },
      });
      if (job) job.stop();
      let listed = false;
      job = jobView(accepted.job_id, {
        onError: alerts.error,
        onChange: (fresh) => {
          if (fresh.status !== "succeeded" || listed) return;
          listed = true;
          onPulled();
        },
      });
      leaving.push(() => job.stop());
      replace(panel, h("p", {}, "Pull job ", h("a", { href: `/ui/builds/${accepted.job_id}`, "data-link": true }, shortId(accepted.job_id, 13))), job.element);
      job.start();
    } catch (err) {
      alerts.error(err);
    } finally {
      submit.disabled = false;
    }
  });
  if (session.can("registries:read")) {
    api("GET", "/registries").then(({ registries }) => {
      for (const r of registries) registry.append(h("option", { value: r.id }, `${r.server} (${r.username})`));
    }).catch(alerts.error);
  }
  return form;
}

function imageRows(images, onDelete) {
  return images.flatMap((img) => {
    const refs = img.tags.length ? img.tags : [null];
    return refs.map((tag) => {
      const ref = tag || img.id;
      const del = session.can("images:delete")
        ? h("button", { type: "button", class: "danger", "aria-label": `Delete ${ref}`, "data-action": "delete" }, "Delete")
        : null;
      if (del) del.addEventListener("click", () => onDelete(ref, del));
      return h("tr", { "data-ref": ref },
        h("td", { class: "mono" }, tag || h("span", { class: "muted" }, "<none>")),
        h("td", { class: "mono", title: img.id }, shortId(img.id)),
        h("td", {}, bytes(img.size)),
        h("td", { class: "wide" }, when(img.created)),
        h("td", {}, String(img.containers)),
        h("td", { class: "actions" }, del));
    });
  });
}

export async function imagesPage(main) {
  if (!session.can("images:read")) return notAllowed(main, "Images", "images:read");
  const alerts = alertArea();
  const leaving = [];
  const tag = h("input", { id: "filter-tag", type: "search", placeholder: "part of a tag" });
  const table = dataTable("Images", ["Image", "ID", "Size", { text: "Created", class: "wide" }, "Containers", { text: "Actions", class: "muted" }]);
  const remove = async (ref, button) => {
    if (!(await confirmDialog(`Delete ${ref}?`, "Delete"))) return;
    button.disabled = true;
    try {
      await api("DELETE", `/images/${ref}`);
      pager.again();
    } catch (err) {
      alerts.error(err);
      button.disabled = false;
    }
  };
  const pager = cursorPager(async (cursor) => {
    const page = await api("GET", `/images${query({ limit: PAGE, tag: tag.value.trim(), cursor })}`);
    return { show: () => table.fill(imageRows(page.images, remove), "No images."), next: page.next_cursor };
  }, alerts.error);
  tag.addEventListener("change", () => pager.first());

  replace(main,
    h("div", { class: "head" }, h("h1", {}, "Images"),
      h("a", { href: "/ui/builds", "data-link": true }, "Builds"),
      session.can("images:build") ? h("a", { class: "button", href: "/ui/builds/new", "data-link": true }, "New build") : null),
    alerts.element,
    session.can("images:pull") ? pullForm(alerts, () => pager.first(), leaving) : null,
    h("div", { class: "toolbar", role: "search" },
      h("div", {}, h("label", { for: "filter-tag" }, "Tag"), tag)),
    table.element,
    pager.element);
  await pager.first();
  return () => leaving.forEach((fn) => fn());
}
