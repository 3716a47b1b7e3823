// The officer API: one fetch wrapper, the token in sessionStorage, errors as sentences.
// The token lives in sessionStorage only (gone with the tab), never in localStorage,
// a cookie or a URL, and is sent as a bearer header to this origin only.

const TOKEN_KEY = "wardgate.console.token";
const TOKEN_SHAPE = /^[\x21-\x7e]+$/; // one line of visible ASCII: what a header can carry

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
  /** Store a pasted token; returns an error sentence instead when it cannot be one. */
  set(raw) {
    const token = String(raw).trim().replace(/^Bearer\s+/i, "");
    if (!token) return "Paste an officer's bearer token or API key first.";
    if (!TOKEN_SHAPE.test(token)) {
      return "That is not a token: a token is one line of letters, digits and symbols, with no spaces.";
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    return null;
  },
};

/** A refusal or failure from the API, with the problem's detail and reason id. */
export class ApiError extends Error {
  constructor(status, detail, reasonId = null) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.reasonId = reasonId;
  }

  /** The token itself is the problem: the officer must sign in again. */
  get isSignInProblem() {
    return this.status === 401 || this.status === 403;
  }
}

/** What to tell the officer about an error. */
export function describe(error) {
  if (!(error instanceof ApiError)) return `Something went wrong in the console: ${error}`;
  if (error.status === 401) return `Your token was not accepted: 401 ${error.detail}`;
  if (error.status === 403) return `Your token is not an officer's: 403 ${error.detail}`;
  if (error.status === 0) return error.detail;
  return `The request failed: ${error.status} ${error.detail}`;
}

function problemDetail(payload, response) {
  const detail = payload && payload.detail;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => (item && item.msg) || JSON.stringify(item)).join("; ");
  }
  return response.statusText || "no detail given";
}

async function readJson(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  if (!type.includes("json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** Call the API; resolves to the parsed JSON, rejects with ApiError. Empty query values are left out. */
export async function api(method, path, { query = {}, body } = {}) {
  const token = session.token();
  if (!token) throw new ApiError(401, "sign in with an officer's token first", "token_missing");
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The admin API could not be reached; check the connection and try again.");
  }
  const payload = await readJson(response);
  if (!response.ok) {
    throw new ApiError(response.status, problemDetail(payload, response), payload?.reason_id);
  }
  return payload;
}

/** Path segment for a subject or id (slashes and markup included). */
export const seg = (value) => encodeURIComponent(value);

/** A list from a payload that is either the list itself or holds it under `key`. */
export function listOf(payload, key) {
  if (Array.isArray(payload)) return payload;
  if (payload && Array.isArray(payload[key])) return payload[key];
  return [];
}
