// The API client of the UI: a bearer token from POST /auth/token, kept in sessionStorage
// (never in a URL), every error turned into an ApiError with the API's message and
// request id, and the two streams (events, logs) read with fetch so that the token goes
// in a header (EventSource cannot send one).

const KEY = "dockyard.session";

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", requestId = "", kind = "" } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.kind = kind;
  }
}

export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || "null");
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
  can(permission) {
    const s = this.get();
    return Boolean(s && s.permissions && s.permissions.includes(permission));
  },
};

// Listeners told when the session ends (a 401: expired or revoked token).
const expiredListeners = new Set();
export function onSessionExpired(fn) {
  expiredListeners.add(fn);
}

async function toError(response) {
  const requestId = response.headers.get("x-request-id") || "";
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: the status says it */
  }
  if (body && body.message) {
    return new ApiError(body.message, {
      status: response.status,
      code: body.code,
      kind: body.error,
      requestId: body.request_id || requestId,
    });
  }
  return new ApiError(`HTTP ${response.status}`, { status: response.status, requestId });
}

async function send(method, path, { json, headers = {}, signal, auth } = {}) {
  // No cookies are used; "omit" also keeps the browser's own Basic sign-in prompt away
  // from a 401 (the API answers it with WWW-Authenticate).
  const init = { method, headers: { ...headers }, signal, credentials: "omit" };
  const s = session.get();
  if (auth) init.headers.Authorization = auth;
  else if (s) init.headers.Authorization = `Bearer ${s.token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(`cannot reach the service (${err.message})`);
  }
  if (!response.ok) {
    const error = await toError(response);
    if (response.status === 401 && !auth && s) {
      session.clear();
      for (const fn of expiredListeners) fn(error);
    }
    throw error;
  }
  return response;
}

export async function api(method, path, options = {}) {
  const response = await send(method, path, options);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export async function signIn(username, password) {
  const basic = `Basic ${btoa(unescape(encodeURIComponent(`${username}:${password}`)))}`;
  const issued = await api("POST", "/auth/token", { json: {}, auth: basic });
  const me = await api("GET", "/auth/whoami", { auth: `Bearer ${issued.token}` });
  session.set({
    token: issued.token,
    tokenId: issued.id,
    expiresAt: issued.expires_at,
    username: me.username,
    role: me.role,
    permissions: me.permissions,
  });
  return session.get();
}

export async function signOut() {
  const s = session.get();
  if (!s) return;
  try {
    await api("DELETE", `/auth/tokens/${encodeURIComponent(s.tokenId)}`);
  } finally {
    session.clear();
  }
}

// A single-use ticket for one WebSocket (the browser cannot send the token there).
export async function wsTicket() {
  const { ticket } = await api("POST", "/auth/ws-ticket");
  return ticket;
}

// Reads a streamed answer as text, chunk by chunk, until it ends or is aborted.
export async function readText(response, onText) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onText(value);
    }
  } catch (err) {
    if (err.name !== "AbortError") throw err;
  } finally {
    reader.releaseLock();
  }
}

// GET `path` and read its streamed answer as text until it ends or `signal` aborts.
export async function streamText(path, onText, signal) {
  await readText(await send("GET", path, { signal }), onText);
}

// container page (uic)

// The file name a Content-Disposition names (filename* first), or `fallback`.
function dispositionName(header, fallback) {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header || "");
  if (star) {
    try {
      return decodeURIComponent(star[1]);
    } catch {
      /* a malformed name: the plain one below */
    }
  }
  const plain = /filename="([^"]*)"/i.exec(header || "");
  return plain ? plain[1] : fallback;
}

// A download (file, ZIP, logs) read whole as a Blob, with the token in a header; the
// caller hands it to the browser (saveBlob). Errors are ApiErrors as for `api`.
export async function fetchBlob(path, fallbackName = "download") {
  const response = await send("GET", path);
  const name = dispositionName(response.headers.get("content-disposition"), fallbackName);
  return { blob: await response.blob(), name };
}

// Saves a Blob as a file through a temporary object URL (a download, not a navigation).
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function xhrError(xhr) {
  const requestId = xhr.getResponseHeader("x-request-id") || "";
  let body = null;
  try {
    body = JSON.parse(xhr.responseText);
  } catch {
    /* not JSON: the status says it */
  }
  if (body && body.message) {
    return new ApiError(body.message, {
      status: xhr.status, code: body.code, kind: body.error, requestId: body.request_id || requestId,
    });
  }
  return new ApiError(`HTTP ${xhr.status}`, { status: xhr.status, requestId });
}

// POSTs a body (a Blob: ZIP or tar) with upload progress: `onProgress(sent, total)`.
// XMLHttpRequest, since fetch reports no upload progress. Resolves with the JSON answer.
export function uploadBlob(path, blob, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    const s = session.get();
    if (s) xhr.setRequestHeader("Authorization", `Bearer ${s.token}`);
    xhr.setRequestHeader("Content-Type", contentType);
    xhr.upload.addEventListener("progress", (event) => {
      if (onProgress) onProgress(event.loaded, event.lengthComputable ? event.total : blob.size);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.responseText ? JSON.parse(xhr.responseText) : null);
        return;
      }
      const error = xhrError(xhr);
      if (xhr.status === 401 && s) {
        session.clear();
        for (const fn of expiredListeners) fn(error);
      }
      reject(error);
    });
    xhr.addEventListener("error", () => reject(new ApiError("cannot reach the service (upload failed)")));
    xhr.addEventListener("abort", () => reject(new ApiError("upload cancelled")));
    xhr.send(blob);
  });
}

// pages (uip)
// A streamed answer (an events or log follow), with extra headers such as Last-Event-ID.
export function openStream(path, { signal, headers } = {}) {
  return send("GET", path, { signal, headers });
}

// A query string of the values that are set (empty strings, null and undefined left out).
export function query(values) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== "") q.set(name, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}
