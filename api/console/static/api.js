// The console's one way to the API: the key from this tab's sessionStorage on every call, the
// service's error shape turned into an ApiError with its code. Nothing else stores the key.

import { readEvents } from "./sse.js";

const KEY_ITEM = "reasoning-agent.api-key";

export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
}

/** An error answer of the API ({"error": {message, type, code}}), or no answer at all. */
export class ApiError extends Error {
  constructor(status, code, message, { type = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.type = type;
    this.retryAfter = retryAfter;
  }

  /** What to tell the user. */
  explain() {
    if (this.status === 401) return `The API key was refused: ${this.message} (${this.code}).`;
    if (this.status === 429) {
      const wait = this.retryAfter ? ` Retry in ${this.retryAfter} s.` : "";
      return `Too many requests for this key: ${this.message}.${wait}`;
    }
    if (this.status === 0) return this.message;
    return `${this.message} (${this.status} ${this.code})`;
  }
}

let unauthorized = () => {};

/** Called when any call is refused with a 401: the key is no longer good. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

async function send(path, { method = "GET", body, signal, headers = {}, key = storedKey() } = {}) {
  const init = {
    method,
    signal,
    cache: "no-store",
    credentials: "omit",
    headers: { Accept: "application/json", ...headers },
  };
  if (key) init.headers["X-API-Key"] = key;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", `The service could not be reached (${error.message}).`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && key === storedKey()) unauthorized(error);
    throw error;
  }
  return response;
}

async function errorOf(response) {
  let code = "http_error";
  let message = response.statusText || `HTTP ${response.status}`;
  let type = null;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message, type } = body.error);
  } catch {
    // not the service's error shape (a proxy's page): keep the status line
  }
  return new ApiError(response.status, code, message, {
    type,
    retryAfter: response.headers.get("Retry-After"),
  });
}

/** GET or POST a JSON endpoint; resolves to {status, data}. */
export async function call(path, options = {}) {
  const response = await send(path, options);
  return { status: response.status, data: await response.json() };
}

/** GET a JSON endpoint; resolves to its body. */
export async function get(path, options = {}) {
  return (await call(path, options)).data;
}

/** POST a body and read the Server-Sent Events it answers with (POST /task, "stream": true). */
export async function* postStream(path, body, { signal } = {}) {
  const response = await send(path, {
    method: "POST",
    body,
    signal,
    headers: { Accept: "text/event-stream" },
  });
  yield* readEvents(response);
}

/** GET an event stream (GET /task/{id}/events), from after `lastEventId` when given. */
export async function* getStream(path, { signal, lastEventId } = {}) {
  const headers = { Accept: "text/event-stream" };
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const response = await send(path, { signal, headers });
  yield* readEvents(response);
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
