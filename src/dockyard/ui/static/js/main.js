// The UI's entry: a small router over history.pushState and the header. The containers
// pages are loaded with this module; the other pages are imported when first opened (the
// first load stays small). The live events feed is js/stream.js.
import { onSessionExpired, session, signOut } from "./api.js";
import { errorBox, replace } from "./dom.js";
import { onEvent, stopFeed } from "./stream.js";
import { signInPage } from "./signin.js";
import { containersPage } from "./containers.js";
import { createPage } from "./create.js";
import { containerPage } from "./container.js";

const main = document.getElementById("main");
let leave = null; // the current page's clean-up
let renders = 0; // which render is the latest (a page left while it loads is cleaned up)

const lazy = (module, name) => async () => (await import(module))[name];

const ROUTES = [
  [/^\/ui\/signin$/, () => signInPage],
  [/^\/ui\/containers\/new$/, () => createPage],
  [/^\/ui\/containers\/(c[0-9a-f-]+)$/, () => containerPage],
  [/^\/(ui(\/containers)?\/?)?$/, () => containersPage],
  [/^\/ui\/images\/?$/, lazy("./images.js", "imagesPage")],
  [/^\/ui\/builds\/?$/, lazy("./builds.js", "buildsPage")],
  [/^\/ui\/builds\/new$/, lazy("./builds.js", "newBuildPage")],
  [/^\/ui\/builds\/(j[0-9a-f]+)$/, lazy("./builds.js", "buildPage")],
  [/^\/ui\/events\/?$/, lazy("./events.js", "eventsPage")],
  [/^\/ui\/admin(?:\/([a-z]+))?\/?$/, lazy("./admin.js", "adminPage")],
];

export function navigate(path, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

// -- the header and the pages ------------------------------------------------------------
function header() {
  const s = session.get();
  document.getElementById("nav").hidden = !s;
  document.getElementById("who").hidden = !s;
  document.getElementById("who-name").textContent = s ? `${s.username} (${s.role})` : "";
  for (const link of document.querySelectorAll("#nav [data-needs]")) {
    // data-needs="a b": any one of them shows the link.
    link.hidden = !link.dataset.needs.split(" ").some((p) => session.can(p));
  }
  for (const link of document.querySelectorAll("#nav a")) {
    const section = link.dataset.section;
    const here = section ? location.pathname.startsWith(section) : link.getAttribute("href") === location.pathname;
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function render() {
  if (leave) leave();
  leave = null;
  const mine = ++renders;
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
    const page = await route[1]();
    if (mine !== renders) return; // another page was asked for meanwhile
    const done = (await page(main, { params: match.slice(1), navigate, onEvent })) || null;
    if (mine === renders) leave = done;
    else if (done) done();
  } catch (err) {
    if (mine === renders) replace(main, errorBox(err));
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
