// A real terminal: xterm.js (vendored, loaded only on this page) over /ws/{cuid}, with a
// single-use ticket from POST /auth/ws-ticket (browsers cannot send the token), resized
// with the window, and a reconnect button. SPEC §5 has the frames.
import { wsTicket } from "./api.js";
import { h, replace } from "./dom.js";

let vendored = null;

// xterm.js writes its theme and cell sizes into <style> elements and, for true colours,
// `style` attributes: both are refused by the UI's CSP (no inline style; xterm.js
// issue 4445). Their text goes into constructed style sheets instead, and a `style`
// attribute through the CSSOM, neither of which the CSP governs.
function installStyleShim() {
  if (Document.prototype.createElement.dockyardShim) return;
  const create = Document.prototype.createElement;
  const createElement = function (tag, options) {
    if (String(tag).toLowerCase() !== "style") return create.call(this, tag, options);
    const doc = this;
    const holder = create.call(this, "template"); // inert: never styled, never checked
    const sheet = new CSSStyleSheet();
    let css = "";
    Object.defineProperty(holder, "textContent", {
      get: () => css,
      set: (value) => {
        css = String(value ?? "");
        sheet.replaceSync(css);
        if (!doc.adoptedStyleSheets.includes(sheet)) {
          doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
        }
      },
    });
    const remove = holder.remove.bind(holder);
    holder.remove = () => {
      doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet);
      remove();
    };
    return holder;
  };
  createElement.dockyardShim = true;
  Document.prototype.createElement = createElement;
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (String(name).toLowerCase() === "style" && this.style) {
      this.style.cssText = String(value);
      return;
    }
    setAttribute.call(this, name, value);
  };
}

async function loadXterm() {
  if (!vendored) {
    installStyleShim();
    vendored = Promise.all([
      import("../vendor/xterm/xterm.mjs"),
      import("../vendor/addon-fit/addon-fit.mjs"),
    ]);
  }
  const [{ Terminal }, { FitAddon }] = await vendored;
  return { Terminal, FitAddon };
}

function decode(frame) {
  if (frame.encoding !== "base64") return frame.data;
  const raw = atob(frame.data);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// Mounts a terminal for `cuid` into `host`; returns its clean-up.
export async function mountTerminal(host, cuid) {
  const { Terminal, FitAddon } = await loadXterm();
  const status = h("span", { class: "muted", role: "status", id: "terminal-status" }, "connecting…");
  const command = h("input", {
    id: "terminal-cmd", type: "text", placeholder: "attach to the main process",
    "aria-label": "Command to run (empty: attach to the main process)",
  });
  const reconnect = h("button", { type: "button", class: "secondary", id: "terminal-reconnect" }, "Reconnect");
  const screen = h("div", { class: "terminal", id: "terminal" });
  replace(host, h("div", { class: "terminal-bar" }, command, reconnect, status), screen);

  const term = new Terminal({
    cursorBlink: true,
    convertEol: false,
    fontFamily: '"DejaVu Sans Mono", ui-monospace, monospace',
    fontSize: 14,
    scrollback: 5000,
    theme: { background: "#0d1117" },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();

  let socket = null;
  const sendFrame = (frame) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  };
  term.onData((data) => sendFrame({ type: "stdin", data }));
  const showSize = () => Object.assign(screen.dataset, { cols: term.cols, rows: term.rows });
  term.onResize(({ cols, rows }) => {
    showSize();
    sendFrame({ type: "resize", cols, rows });
  });
  showSize();

  const connect = async () => {
    if (socket) socket.close();
    socket = null;
    status.textContent = "connecting…";
    let ticket;
    try {
      ticket = await wsTicket();
    } catch (err) {
      status.textContent = `${err.message}${err.requestId ? ` (request id ${err.requestId})` : ""}`;
      return;
    }
    const query = new URLSearchParams({ ticket, cols: String(term.cols), rows: String(term.rows) });
    if (command.value.trim()) query.set("cmd", command.value.trim());
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/${cuid}?${query}`);
    socket = ws;
    ws.addEventListener("open", () => {
      status.textContent = "connected";
      term.focus();
    });
    ws.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "stdout" || frame.type === "stderr") term.write(decode(frame));
      else if (frame.type === "exit") {
        status.textContent = frame.detached ? "detached" : `exited with code ${frame.code}`;
      } else if (frame.type === "error") {
        const e = frame.error || {};
        status.textContent = `${e.message || "error"}${e.request_id ? ` (request id ${e.request_id})` : ""}`;
      }
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      socket = null;
      if (status.textContent === "connected") status.textContent = "disconnected";
    });
  };
  reconnect.addEventListener("click", connect);
  command.addEventListener("keydown", (event) => {
    if (event.key === "Enter") connect();
  });
  const onWindowResize = () => fit.fit();
  window.addEventListener("resize", onWindowResize);
  await connect();

  return () => {
    window.removeEventListener("resize", onWindowResize);
    if (socket) {
      const ws = socket;
      socket = null;
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "close" }));
      ws.close();
    }
    term.dispose();
  };
}
