// The REST client: the gateway's own API, with the token when there is one.
// Every URL is relative to the page (/ui), so the console follows a path prefix.

/** An error as the API reports it: {error: {code, message, details}}, plus the status. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api {
  /**
   * @param tokens where the token lives (token.js)
   * @param onUnauthorized called on every 401, so the console can ask for the token again
   */
  constructor(tokens, onUnauthorized) {
    this.tokens = tokens;
    this.onUnauthorized = onUnauthorized;
  }

  url(path, query = {}) {
    const url = new URL(path.replace(/^\//, ""), document.baseURI);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    return url;
  }

  /** The WebSocket URL, with the token in ?token= (browsers cannot set its headers). */
  webSocketUrl() {
    const url = this.url("ws");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const token = this.tokens.get();
    if (token) url.searchParams.set("token", token);
    return url.href;
  }

  async request(method, path, {query, body} = {}) {
    const headers = {Accept: "application/json"};
    const token = this.tokens.get();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = {method, headers, cache: "no-store"};
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.url(path, query), init);
    } catch (err) {
      throw new ApiError(0, "network_error", `the gateway did not answer (${err.message})`);
    }
    const text = await response.text();
    let doc = null;
    if (text) {
      try {
        doc = JSON.parse(text);
      } catch {
        doc = null;
      }
    }
    if (response.ok) return doc;
    const error = doc && typeof doc.error === "object" && doc.error ? doc.error : {};
    const failure = new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `${response.status} ${response.statusText}`, error.details);
    if (response.status === 401) this.onUnauthorized(failure);
    throw failure;
  }

  get(path, query) {
    return this.request("GET", path, {query});
  }

  post(path, body, query) {
    return this.request("POST", path, {body, query});
  }

  delete(path, query) {
    return this.request("DELETE", path, {query});
  }
}

/** "invalid_arguments: arguments do not fit task 'x'" for a banner. */
export function describeError(err) {
  if (err instanceof ApiError) {
    return err.status ? `${err.message} (${err.status} ${err.code})` : err.message;
  }
  return String(err && err.message ? err.message : err);
}
