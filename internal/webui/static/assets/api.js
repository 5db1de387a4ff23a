// REST calls to the Switchboard API, and the error every failure becomes.

// ApiError carries the server's error: code for the program, message for
// the person (the server words it so that they can act on it).
export class ApiError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
  // Retryable: the same call may succeed later (the rules of the Go client).
  get retryable() {
    return ["unavailable", "rate_limited", "internal"].includes(this.code);
  }
}

let token = "";
let onRefused = () => {};

// setToken sets the token of later calls, and what to do when the server
// refuses it (expired, or its app is gone).
export function setToken(t, refused = () => {}) {
  token = t;
  onRefused = refused;
}

// call sends a request and answers the decoded JSON body, or throws an
// ApiError with the server's code and message.
export async function call(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError("unavailable", "Cannot reach the server. Check your connection and try again.");
  }
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // Not JSON: a proxy's page, or a cut connection; handled below.
  }
  if (resp.ok && data) return data;
  const e = data && data.error;
  if (e && e.code) {
    const err = new ApiError(e.code, e.message || e.code, resp.status);
    if (resp.status === 401 && token) onRefused(err);
    throw err;
  }
  throw new ApiError(resp.status >= 500 ? "unavailable" : "internal",
    `The server answered ${resp.status} ${resp.statusText}. Try again shortly.`, resp.status);
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

// claims reads a JWT's payload without checking it (the server checks);
// the page only needs the address and the expiry. null if malformed.
export function claims(jwt) {
  const part = jwt.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const c = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof c.iss !== "string" || typeof c.sub !== "string") return null;
    return c;
  } catch {
    return null;
  }
}
