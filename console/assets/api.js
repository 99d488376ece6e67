// The shell's calls to the platform and to modules' routes. Every call goes through
// `/console/api/…`, where the console adds the signed-in user's token from its HttpOnly
// cookie: no script here (nor in a module's bundle) ever holds the token.

/** A refused call: `status` and the API's problem document (`title`, `detail`, `errors`). */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && (problem.detail || problem.title);
    super(detail ? `${status}: ${detail}` : `the call failed with ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

async function send(method, url, body, headers = {}) {
  const init = { method, headers: { accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `method` on the platform API's `path` (`/v1/tenants/acme/modules`), as the signed-in user. */
export function call(method, path, body, { company } = {}) {
  const headers = company ? { 'x-plinth-company': company } : {};
  return send(method, `/console/api${path}`, body, headers);
}

/** Who is signed in (`user`, or null) and the development sign-in's users. */
export const session = () => send('GET', '/console/session');
export const signIn = (user) => send('POST', '/console/session', { user });
export const signOut = () => send('DELETE', '/console/session');

/**
 * The API client a module's frontend gets: its own routes only (`/invoices` is
 * `/api/v1/{module}/invoices` through the gateway), acting in `company`.
 */
export function moduleClient(module, company) {
  const own = `/console/api/v1/${module}`;
  const scoped = (path) => {
    // Decided on the URL the browser will send, not on the text: it reads `%2e%2e` as `..`
    // and `\` as `/`. A path with an escape or a backslash is refused outright.
    const route = typeof path === 'string' ? path.split(/[?#]/)[0] : '';
    let sent = null;
    try { sent = new URL(`${own}${path}`, 'http://console.invalid').pathname; } catch { sent = null; }
    if (!route.startsWith('/') || /[%\\]/.test(route) || route.split('/').includes('..')
        || sent === null || (sent !== own && !sent.startsWith(`${own}/`))) {
      throw new Error(`a module's path starts with / and stays within the module: ${path}`);
    }
    return `/v1/${module}${path}`;
  };
  const as = { company };
  return Object.freeze({
    get: (path) => call('GET', scoped(path), undefined, as),
    post: (path, body) => call('POST', scoped(path), body, as),
    put: (path, body) => call('PUT', scoped(path), body, as),
    delete: (path) => call('DELETE', scoped(path), undefined, as),
  });
}
