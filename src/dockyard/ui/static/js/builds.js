// The builds pages: the list of jobs (builds and pulls, one's own; admins everyone's)
// with filters and cursor pages, refreshed by the jobs' events; the new-build form
// (Dockerfile text, a git repository, a tar URL or an uploaded context; push after the
// build); one job's page with its status and live log
// (js/jobs.js).
import { api, query, session, uploadBlob } from "./api.js";
import { h, replace, statusBadge, when } from "./dom.js";
import { jobView } from "./jobs.js";
import { alertArea, cursorPager, dataTable, field, notAllowed, shortId } from "./widgets.js";

const STATUSES = ["queued", "building", "pulling", "pushing", "redeploying", "succeeded", "failed", "cancelled"];
const KINDS = ["build", "pull", "redeploy"];
const PAGE = 50;
const SAMPLE = "FROM alpine:3.20\nRUN echo hello > /hello.txt";

function select(id, any, values, chosen) {
  return h("select", { id }, h("option", { value: "" }, any),
    values.map((v) => h("option", { value: v, selected: chosen === v }, v)));
}

function jobRow(job) {
  return h("tr", { "data-job": job.job_id },
    h("td", {}, h("a", { class: "mono", href: `/ui/builds/${job.job_id}`, "data-link": true }, shortId(job.job_id, 13))),
    h("td", {}, job.kind),
    h("td", {}, statusBadge(job.status)),
    h("td", { class: "mono" }, (job.tags || []).join(", ") || "—"),
    h("td", {}, job.owner),
    h("td", { class: "wide" }, when(job.created_at)),
    h("td", {}, job.duration === null ? "—" : `${job.duration.toFixed(1)} s`));
}

export async function buildsPage(main, { onEvent }) {
  if (!session.can("images:read")) return notAllowed(main, "Builds", "images:read");
  const params = new URLSearchParams(location.search);
  const alerts = alertArea();
  const status = select("filter-status", "any status", STATUSES, params.get("status"));
  const kind = select("filter-kind", "any kind", KINDS, params.get("kind"));
  const table = dataTable("Builds", ["Job", "Kind", "Status", "Tags", "Owner", { text: "Created", class: "wide" }, "Duration"]);
  const pager = cursorPager(async (cursor) => {
    const page = await api("GET", `/builds${query({ limit: PAGE, status: status.value, kind: kind.value, cursor })}`);
    return { show: () => table.fill(page.builds.map(jobRow), "No builds or pulls yet."), next: page.next_cursor };
  }, alerts.error);
  const refilter = () => {
    history.replaceState(null, "", `/ui/builds${query({ status: status.value, kind: kind.value })}`);
    pager.first();
  };
  status.addEventListener("change", refilter);
  kind.addEventListener("change", refilter);
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  refresh.addEventListener("click", () => pager.again());

  replace(main,
    h("div", { class: "head" }, h("h1", {}, "Builds"),
      session.can("images:build") ? h("a", { class: "button", href: "/ui/builds/new", "data-link": true }, "New build") : null,
      h("a", { href: "/ui/images", "data-link": true }, "Images")),
    alerts.element,
    h("div", { class: "toolbar", role: "search" },
      h("div", {}, h("label", { for: "filter-status" }, "Status"), status),
      h("div", {}, h("label", { for: "filter-kind" }, "Kind"), kind),
      refresh),
    table.element,
    pager.element);
  await pager.first();
  // Live: a job event (queued, started, ended; a pull done) reloads this page, once per burst.
  let timer = null;
  const stop = onEvent((event) => {
    if (!event.type.startsWith("build.") && event.type !== "image.pulled") return;
    if (!timer) timer = setTimeout(() => { timer = null; pager.again(); }, 300);
  });
  return () => {
    stop();
    clearTimeout(timer);
  };
}

// The source part of the form: Dockerfile text, a git repository, a tar URL, or a
// context archive uploaded from this computer.
function sourceFields() {
  const dockerfile = h("textarea", { id: "dockerfile", rows: 8, class: "mono", spellcheck: "false", placeholder: SAMPLE });
  const url = h("input", { id: "git-url", type: "url", placeholder: "https://git.example.com/team/app.git" });
  const ref = h("input", { id: "git-ref", type: "text", placeholder: "main (optional)" });
  const subdir = h("input", { id: "git-subdir", type: "text", placeholder: "(optional)" });
  const path = h("input", { id: "git-dockerfile", type: "text", placeholder: "Dockerfile (optional)" });
  const tarUrl = h("input", { id: "tar-url", type: "url", placeholder: "https://example.com/context.tar.gz" });
  const file = h("input", { id: "context-file", type: "file", accept: ".tar,.tar.gz,.tgz,.zip,application/x-tar,application/gzip,application/zip" });
  const filePath = h("input", { id: "context-dockerfile", type: "text", placeholder: "Dockerfile (optional)" });
  const parts = {
    text: h("div", { id: "source-text" }, field("dockerfile", "Dockerfile", dockerfile)),
    git: h("div", { id: "source-git", class: "grid", hidden: true },
      field("git-url", "Repository URL", url), field("git-ref", "Ref", ref),
      field("git-subdir", "Folder", subdir), field("git-dockerfile", "Dockerfile path", path)),
    tar: h("div", { id: "source-tar", hidden: true }, field("tar-url", "Context archive URL", tarUrl, "(tar, tar.gz)")),
    upload: h("div", { id: "source-upload", class: "grid", hidden: true },
      field("context-file", "Context archive", file, "(tar, tar.gz or zip)"),
      field("context-dockerfile", "Dockerfile path", filePath)),
  };
  const radio = (value, text, checked) => h("label", { class: "check" },
    h("input", { type: "radio", name: "source", value, checked }), text);
  const choice = h("fieldset", { class: "choice" }, h("legend", {}, "Source"),
    radio("text", "Dockerfile text", true), radio("git", "Git repository", false),
    radio("tar", "Tar URL", false), radio("upload", "Upload a context", false));
  const chosen = () => choice.querySelector("input:checked").value;
  choice.addEventListener("change", () => {
    for (const [name, part] of Object.entries(parts)) part.hidden = name !== chosen();
    url.required = chosen() === "git";
    tarUrl.required = chosen() === "tar";
    file.required = chosen() === "upload";
  });
  // JSON sources give {json}; an upload gives {file, dockerfile_path} (sent as the body).
  const read = () => {
    switch (chosen()) {
      case "text": return { json: { dockerfile: dockerfile.value } };
      case "tar": return { json: { tar_url: tarUrl.value.trim() } };
      case "upload": return { file: file.files[0], dockerfile_path: filePath.value.trim() || undefined };
      default: {
        const git = { url: url.value.trim() };
        if (ref.value.trim()) git.ref = ref.value.trim();
        if (subdir.value.trim()) git.subdir = subdir.value.trim();
        if (path.value.trim()) git.dockerfile = path.value.trim();
        return { json: { git } };
      }
    }
  };
  return { element: h("div", {}, choice, ...Object.values(parts)), read };
}

// Push after the build: to a saved registry (its credentials stay on the server).
function pushFields() {
  const push = h("input", { id: "push", type: "checkbox" });
  const registry = h("select", { id: "push-registry" }, h("option", { value: "" }, "(the tag's registry, saved credentials)"));
  if (session.can("registries:read")) {
    api("GET", "/registries").then(({ registries }) => {
      for (const r of registries) registry.append(h("option", { value: r.id }, `${r.server} (${r.username})`));
    }, () => {});
  }
  const element = h("div", {}, h("label", { class: "check" }, push, "Push the tags when built"),
    session.can("registries:read") ? field("push-registry", "Registry", registry) : null);
  const read = () => (push.checked ? { push: true, registry: registry.value || undefined } : {});
  return { element, read };
}

export async function newBuildPage(main, { navigate }) {
  if (!session.can("images:build")) return notAllowed(main, "New build", "images:build");
  const alerts = alertArea();
  const source = sourceFields();
  const pushing = pushFields();
  const tags = h("input", { id: "build-tags", type: "text", required: true, placeholder: "me/app:1, me/app:latest" });
  const noCache = h("input", { id: "no-cache", type: "checkbox" });
  const pull = h("input", { id: "pull-base", type: "checkbox" });
  const submit = h("button", { type: "submit" }, "Build");
  const progress = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true, "aria-label": "Upload" });
  const form = h("form", { class: "form", "aria-label": "New build" },
    source.element,
    field("build-tags", "Tags", tags, "(comma separated)"),
    h("label", { class: "check" }, noCache, "Build without the cache"),
    h("label", { class: "check" }, pull, "Pull newer base images"),
    pushing.element,
    progress,
    h("div", { class: "form-actions" }, submit, h("a", { href: "/ui/builds", "data-link": true }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alerts.clear();
    submit.disabled = true;
    const options = {
      tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
      no_cache: noCache.checked,
      pull: pull.checked,
      ...pushing.read(),
    };
    const picked = source.read();
    try {
      let job;
      if (picked.file) {
        // The archive is the body; the options travel as query parameters.
        progress.hidden = false;
        const q = query({ ...options, tags: options.tags.join(","), dockerfile_path: picked.dockerfile_path });
        job = await uploadBlob(`/builds${q}`, picked.file, "application/octet-stream", (done, total) => {
          progress.value = total ? done / total : 0;
        });
      } else {
        job = await api("POST", "/builds", { json: { ...picked.json, ...options } });
      }
      navigate(`/ui/builds/${job.job_id}`);
    } catch (err) {
      alerts.error(err);
      submit.disabled = false;
      progress.hidden = true;
    }
  });
  replace(main, h("h1", {}, "New build"), alerts.element, form);
}

export async function buildPage(main, { params }) {
  if (!session.can("images:read")) return notAllowed(main, "Build", "images:read");
  const [jobId] = params;
  const alerts = alertArea();
  const view = jobView(jobId, { onError: alerts.error });
  replace(main,
    h("div", { class: "head" }, h("a", { href: "/ui/builds", "data-link": true }, "← Builds"),
      h("h1", { class: "mono" }, shortId(jobId, 13))),
    alerts.element,
    view.element);
  view.start();
  return () => view.stop();
}
