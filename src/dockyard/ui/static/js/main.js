// The UI's entry: a small router over history.pushState, the header, and one shared
// live feed of events (GET /events?follow=true) that the pages subscribe to.
import { onSessionExpired, session, signOut, streamEvents } from "./api.js";
import { errorBox, replace } from "./dom.js";
import { signInPage } from "./signin.js";
import { containersPage } from "./containers.js";
import { createPage } from "./create.js";
import { containerPage } from "./container.js";

const main = document.getElementById("main");
let leave = null; // the current page's clean-up

const ROUTES = [
  [/^\/ui\/signin$/, () => signInPage],
  [/^\/ui\/containers\/new$/, () => createPage],
  [/^\/ui\/containers\/(c[0-9a-f-]+)$/, () => containerPage],
  [/^\/(ui(\/containers)?\/?)?$/, () => containersPage],
];

export function navigate(path, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

// -- the live feed ------------------------------------------------------------------
const listeners = new Set();
let feed = null;

export function onEvent(fn) {
  listeners.add(fn);
  startFeed();
  return () => listeners.delete(fn);
}

function startFeed() {
  if (feed || !session.get()) return;
  const controller = new AbortController();
  feed = controller;
  streamEvents(
    "/events?follow=true",
    (event) => {
      for (const fn of listeners) fn(event);
    },
    controller.signal,
  )
    .catch(() => {}) // an ended session or a restart: the retry below decides
    .finally(() => {
      if (feed !== controller) return;
      feed = null;
      if (!controller.signal.aborted && session.get()) setTimeout(startFeed, 2000);
    });
}

function stopFeed() {
  if (feed) feed.abort();
  feed = null;
}

// -- the header and the pages ------------------------------------------------------------
function header() {
  const s = session.get();
  document.getElementById("nav").hidden = !s;
  document.getElementById("who").hidden = !s;
  document.getElementById("who-name").textContent = s ? `${s.username} (${s.role})` : "";
  for (const link of document.querySelectorAll("#nav [data-needs]")) {
    link.hidden = !session.can(link.dataset.needs);
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function render() {
  if (leave) leave();
  leave = null;
  const path = location.pathname;
  if (!session.get() && path !== "/ui/signin") {
    const next = path === "/" ? "" : `?next=${encodeURIComponent(path)}`;
    history.replaceState(null, "", `/ui/signin${next}`);
  }
  header();
  const current = location.pathname;
  const route = ROUTES.find(([pattern]) => pattern.test(current));
  if (!route) {
    replace(main, errorBox({ message: `No page at ${current}` }));
    return;
  }
  const match = current.match(route[0]);
  try {
    leave = (await route[1]()(main, { params: match.slice(1), navigate, onEvent })) || null;
  } catch (err) {
    replace(main, errorBox(err));
  }
  main.focus({ preventScroll: true });
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", render);

document.getElementById("sign-out").addEventListener("click", async () => {
  stopFeed();
  try {
    await signOut();
  } catch {
    /* the token is forgotten here whatever the answer */
  }
  navigate("/ui/signin", { replaceState: true });
});

onSessionExpired(() => {
  stopFeed();
  navigate(`/ui/signin?expired=1&next=${encodeURIComponent(location.pathname)}`, {
    replaceState: true,
  });
});

render();
