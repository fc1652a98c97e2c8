// Live streams shared by the pages, read with fetch (the token goes in a header):
// - the one events feed of the tab (`onEvent`), which the containers pages subscribe to;
// - `followEvents`: an events stream of a page's own (filters), which reconnects after 2 s
//   and resumes after the last event it saw (SSE `id:` sent back as Last-Event-ID);
// - `followText`: a text stream (a job's log) until it ends.
import { openStream, readText, session } from "./api.js";

const RETRY_MS = 2000;

// A parser of text/event-stream: each message's `data:` as JSON, with its `id:`.
function sseParser(onMessage) {
  let buffer = "";
  let data = [];
  let id = null;
  return (text) => {
    buffer += text;
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut).replace(/\r$/, "");
      buffer = buffer.slice(cut + 1);
      if (line === "") {
        if (data.length) onMessage(JSON.parse(data.join("\n")), id);
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).trimStart());
      } else if (line.startsWith("id:")) {
        id = line.slice(3).trim();
      }
    }
  };
}

// Follows the events stream at `path` until the returned stop() is called. `onState` hears
// "live" (connected), "reconnecting" (ended; again in 2 s) or "error" with the ApiError
// (refused: no retry, e.g. a 403 or a 400 for a bad filter). `after`: an event id to
// resume after (the newest one a page already shows), else it starts with the next one.
export function followEvents(path, onEvent, { after = null, onState = () => {} } = {}) {
  let lastId = after === null || after === undefined ? null : String(after);
  let controller = null;
  let timer = null;
  let stopped = false;
  const open = async () => {
    if (stopped || !session.get()) return;
    const mine = new AbortController();
    controller = mine;
    const headers = lastId ? { "Last-Event-ID": lastId } : {};
    try {
      const response = await openStream(path, { signal: mine.signal, headers });
      onState("live");
      await readText(response, sseParser((event, id) => {
        lastId = id || (event.id !== undefined ? String(event.id) : lastId);
        onEvent(event);
      }));
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err.status >= 400 && err.status < 500 && err.status !== 429) {
        onState("error", err);
        return;
      }
    }
    if (stopped || mine.signal.aborted || !session.get()) return;
    onState("reconnecting");
    timer = setTimeout(open, RETRY_MS);
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (controller) controller.abort();
  };
}

// Reads the text stream at `path` to its end; resolves when it ends, rejects with the
// ApiError of a refused request. The returned `stop()` abandons it.
export function followText(path, onText) {
  const controller = new AbortController();
  const done = openStream(path, { signal: controller.signal })
    .then((response) => readText(response, onText))
    .catch((err) => {
      if (err.name !== "AbortError") throw err;
    });
  return { done, stop: () => controller.abort() };
}

// -- the tab's shared feed -------------------------------------------------------------
const listeners = new Set();
let stopShared = null;

// `fn(event)` for every new event the account may see; returns the unsubscribe.
export function onEvent(fn) {
  listeners.add(fn);
  if (!stopShared && session.get()) {
    stopShared = followEvents("/events?follow=true", (event) => {
      for (const listener of listeners) listener(event);
    }, { onState: (state) => { if (state === "error") stopShared = null; } });
  }
  return () => listeners.delete(fn);
}

// Ends the shared feed (sign-out, an expired session); the next onEvent opens it again.
export function stopFeed() {
  if (stopShared) stopShared();
  stopShared = null;
}
