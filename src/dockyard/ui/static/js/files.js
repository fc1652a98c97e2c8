// The files browser of a container: the folders of /app (GET …/files), a file's download
// (…/download) or a folder's as a ZIP (…/download-zip), uploads by a file picker or drag
// and drop into the folder shown (…/upload-zip, with a progress bar), and the changes
// versus the image (…/changes, …/changes/archive). See docs/files.md.
import { api, fetchBlob, saveBlob, session, uploadBlob } from "./api.js";
import { errorBox, h, replace, when } from "./dom.js";
import { bytes } from "./metrics.js";
import { zipFiles } from "./zip.js";

const ROOT = "/app";
// Sent as they are (the service unpacks them) when "unpack archives" is ticked.
const ARCHIVE = /\.(zip|tar|tgz|tar\.gz|tar\.bz2|tbz2|tar\.xz|txz)$/i;

const q = (path) => encodeURIComponent(path);
const join = (dir, name) => (dir.endsWith("/") ? dir + name : `${dir}/${name}`);

// The files of a drop, folders walked (webkitGetAsEntry), as [{name, file}] with paths.
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ name: file.name, file }));
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((ok, fail) => entry.file(ok, fail));
      out.push({ name: prefix + entry.name, file });
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!batch.length) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out;
}

// The upload control: a drop zone, a file picker, "unpack archives", a progress bar.
function uploader(cuid, getPath, { onDone, showError }) {
  const picker = h("input", {
    type: "file", id: "files-picker", multiple: true, class: "visually-hidden", tabindex: -1,
  });
  const unpack = h("input", { type: "checkbox", id: "files-unpack", checked: true });
  const bar = h("progress", { id: "files-progress", max: 1, value: 0, hidden: true });
  const status = h("span", { id: "files-upload-status", class: "muted", "aria-live": "polite" });
  const zone = h("div", { class: "dropzone", id: "files-drop" },
    h("span", {}, "Drop files, folders or a ZIP/tar here, or "),
    h("label", { for: "files-picker", class: "button secondary", tabindex: 0 }, "choose files"),
    picker,
    h("label", { class: "check" }, unpack, "Unpack ZIP and tar archives"),
    bar, status);
  zone.querySelector("label[for]").addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      picker.click();
    }
  });

  const send = async (items) => {
    if (!items.length) return;
    const path = getPath();
    const archives = unpack.checked && items.length === 1 && ARCHIVE.test(items[0].name) ? items : [];
    const total = items.reduce((sum, i) => sum + i.file.size, 0);
    bar.hidden = false;
    bar.value = 0;
    zone.classList.add("busy");
    try {
      let body;
      let type = "application/zip";
      if (archives.length) {
        body = archives[0].file;
        type = /\.zip$/i.test(archives[0].name) ? "application/zip" : "application/octet-stream";
      } else {
        status.textContent = "Preparing…";
        body = await zipFiles(items, (done) => {
          status.textContent = `Preparing… ${Math.round((100 * done) / (total || 1))} %`;
        });
      }
      const answer = await uploadBlob(`/containers/${cuid}/upload-zip?path=${q(path)}`, body, type,
        (sent, size) => {
          bar.max = size || 1;
          bar.value = sent;
          status.textContent = `Uploading… ${Math.round((100 * sent) / (size || 1))} %`;
        });
      status.textContent = `Uploaded ${answer.files} file${answer.files === 1 ? "" : "s"} (${bytes(answer.bytes)}) to ${path}`;
      onDone();
    } catch (err) {
      status.textContent = "Upload failed.";
      showError(err);
    } finally {
      bar.hidden = true;
      zone.classList.remove("busy");
    }
  };
  picker.addEventListener("change", () => {
    const items = [...picker.files].map((file) => ({ name: file.name, file }));
    picker.value = "";
    send(items);
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    try {
      send(await droppedFiles(event.dataTransfer));
    } catch (err) {
      showError(err);
    }
  });
  return zone;
}

// Saves what `path` answers, with the button busy meanwhile; errors shown.
async function download(button, path, fallback, showError) {
  button.disabled = true;
  try {
    const { blob, name } = await fetchBlob(path, fallback);
    saveBlob(blob, name);
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

function crumbs(path, go) {
  const parts = path.split("/").filter(Boolean);
  return parts.map((part, i) => {
    const target = `/${parts.slice(0, i + 1).join("/")}`;
    const last = i === parts.length - 1;
    const sep = i > 0 ? h("span", { class: "muted" }, " / ") : null;
    if (last || target.length < ROOT.length) return [sep, h("span", { "aria-current": last ? "location" : null }, part)];
    return [sep, h("button", { type: "button", class: "link", onclick: () => go(target) }, part)];
  });
}

function entryRow(cuid, dir, entry, go, showError) {
  const path = join(dir, entry.name);
  const isDir = entry.type === "dir";
  const name = isDir
    ? h("button", { type: "button", class: "link", "data-dir": entry.name, onclick: () => go(path) }, `${entry.name}/`)
    : h("span", { class: "mono" }, entry.name);
  let action = null;
  if (entry.type === "file" || isDir) {
    action = h("button", {
      type: "button", class: "secondary", "data-download": entry.name,
      "aria-label": `Download ${entry.name}${isDir ? " as ZIP" : ""}`,
    }, isDir ? "ZIP" : "Download");
    const url = isDir ? `/containers/${cuid}/download-zip?path=${q(path)}` : `/containers/${cuid}/download?path=${q(path)}`;
    action.addEventListener("click", () => download(action, url, isDir ? `${entry.name}.zip` : entry.name, showError));
  }
  return h("tr", { "data-name": entry.name, "data-type": entry.type },
    h("td", {}, name),
    h("td", { class: "num" }, isDir ? "—" : bytes(entry.size)),
    h("td", { class: "wide" }, when(entry.mtime)),
    h("td", { class: "wide mono" }, entry.type === "symlink" ? "link" : entry.mode),
    h("td", { class: "actions" }, action));
}

// The changes versus the image, read when the <details> is opened.
function changesPart(cuid, showError) {
  const list = h("ul", { class: "changes", id: "files-changes" });
  const fetchButton = h("button", { type: "button", class: "secondary" }, "Download changed files (tar.gz)");
  fetchButton.addEventListener("click", () =>
    download(fetchButton, `/containers/${cuid}/changes/archive`, "changes.tar.gz", showError));
  const details = h("details", {}, h("summary", {}, "Changes since the image"), fetchButton, list);
  details.addEventListener("toggle", async () => {
    if (!details.open) return;
    try {
      const { changes } = await api("GET", `/containers/${cuid}/changes`);
      replace(list, changes.length
        ? changes.map((c) => h("li", {}, h("span", { class: `change change-${c.kind}` }, c.kind), " ", h("span", { class: "mono" }, c.path)))
        : h("li", { class: "muted" }, "No changes."));
    } catch (err) {
      showError(err);
    }
  });
  return details;
}

export function filesPanel(cuid) {
  let path = ROOT;
  const alerts = h("div", { "aria-live": "polite" });
  const showError = (err) => replace(alerts, errorBox(err));
  const where = h("nav", { class: "crumbs", "aria-label": "Folder", id: "files-path" });
  const body = h("tbody");
  const zipHere = h("button", { type: "button", class: "secondary", id: "files-zip" }, "Download folder (ZIP)");
  zipHere.addEventListener("click", () => {
    const name = `${path.split("/").filter(Boolean).pop() || "app"}.zip`;
    download(zipHere, `/containers/${cuid}/download-zip?path=${q(path)}`, name, showError);
  });
  const load = async (target) => {
    try {
      const listing = await api("GET", `/containers/${cuid}/files?path=${q(target)}`);
      path = listing.path || target;
      replace(alerts);
      replace(where, crumbs(path, load));
      const up = path !== ROOT ? h("tr", {}, h("td", { colspan: 5 },
        h("button", { type: "button", class: "link", onclick: () => load(path.slice(0, path.lastIndexOf("/")) || ROOT) }, "../"))) : null;
      const sorted = [...listing.entries].sort((a, b) => (b.type === "dir") - (a.type === "dir") || a.name.localeCompare(b.name));
      replace(body, up, sorted.length ? sorted.map((e) => entryRow(cuid, path, e, load, showError))
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "Empty folder.")));
    } catch (err) {
      showError(err);
    }
  };
  const upload = session.can("files:write") ? uploader(cuid, () => path, { onDone: () => load(path), showError }) : null;
  const element = h("section", { "aria-labelledby": "files-h", id: "files" },
    h("div", { class: "head" }, h("h2", { id: "files-h" }, "Files"), where, zipHere,
      h("button", { type: "button", class: "secondary", onclick: () => load(path) }, "Refresh")),
    alerts, upload,
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Size"), h("th", { class: "wide" }, "Modified"),
        h("th", { class: "wide" }, "Mode"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
      body)),
    changesPart(cuid, showError));
  return { element, start: () => load(ROOT) };
}
