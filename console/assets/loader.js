// Loads a module's frontend into its panel, as its manifest's `frontend.type` says
// (docs/console.md):
// - `spa-module` (integrated): an ES module whose default export is
//   `{ init(context), loadPage(page, container) }`, run in the shell's page;
// - `iframe` (micro-frontend): a document in a sandboxed frame (no origin: no cookie, no
//   storage, no call of its own), talking to the shell only through the postMessage
//   contract below.
// A failure is thrown to the caller, which shows it in the module's own panel.
//
// A bundle's files are the ones published with the installed version, listed with their
// SHA-384 by `GET /api/v1/modules/{m}/frontend` and served under their bundle's digest. An
// integrated module's scripts are fetched as `<link rel="modulepreload" integrity>` before
// `import()` runs them: a file whose bytes do not match its listed hash is refused by the
// browser and never runs (docs/console.md, "Integrity").

import { call, moduleClient } from './api.js';

const INTEGRATED = new Set(['spa-module', 'es-module']);
const FRAMED = new Set(['iframe', 'micro-frontend']);

/** The published frontend of `module`'s installed version: `{type, entry_point, base, files}`. */
function publishedFrontend(module) {
  return call('GET', `/v1/modules/${encodeURIComponent(module)}/frontend`);
}

/**
 * Loads `entry` (`{module, version, display_name, frontend}`) into `container` on `page`,
 * with `context` (`{user, tenant, company, configuration}`).
 */
export async function loadModule(entry, page, container, context) {
  if (!entry.frontend) throw new Error(`${entry.display_name} ships no frontend`);
  const kind = entry.frontend.type;
  if (!INTEGRATED.has(kind) && !FRAMED.has(kind)) {
    throw new Error(`frontend.type "${kind}" is not one the console loads (spa-module, iframe)`);
  }
  const published = await publishedFrontend(entry.module);
  if (!published.base) {
    throw new Error(`${entry.display_name} ${published.version} was published without its frontend's files`);
  }
  const bundle = { ...entry, ...published };
  if (INTEGRATED.has(kind)) return integrated(bundle, page, container, context);
  return framed(bundle, page, container, context);
}

// One preload per URL for the page's life: the module map keeps what it fetched.
const preloads = new Map();

/** Fetches `file` of `bundle` as a module script checked against its integrity. */
function preload(bundle, file) {
  const url = bundle.base + file.path;
  if (!preloads.has(url)) {
    preloads.set(url, new Promise((resolve, reject) => {
      const link = document.createElement('link');
      link.rel = 'modulepreload';
      link.integrity = file.integrity;
      link.href = url;
      link.addEventListener('load', () => resolve(url), { once: true });
      link.addEventListener('error', () => {
        preloads.delete(url);
        reject(new Error(`${file.path} does not match its published integrity ${file.integrity.slice(0, 22)}… (or could not be fetched); it was not run`));
      }, { once: true });
      document.head.append(link);
    }));
  }
  return preloads.get(url);
}

async function integrated(bundle, page, container, context) {
  const file = bundle.entry_point || 'module.js';
  const entryFile = bundle.files.find((f) => f.path === file);
  let loaded;
  try {
    if (!entryFile) throw new Error('it is not among the published files');
    // Every script of the bundle, so that the entry's own imports are checked too.
    const scripts = bundle.files.filter((f) => /\.m?js$/.test(f.path));
    await Promise.all(scripts.map((f) => preload(bundle, f)));
    loaded = await import(bundle.base + entryFile.path);
  } catch (e) {
    throw new Error(`cannot load ${bundle.module}'s bundle ${file}: ${e.message}`);
  }
  const ui = loaded.default;
  if (!ui || typeof ui.init !== 'function' || typeof ui.loadPage !== 'function') {
    throw new Error(`${bundle.module}'s ${file} has no default export { init(context), loadPage(page, container) }`);
  }
  await runModule(ui, bundle, page, container, { ...context, module: bundle.module, version: bundle.version, api: moduleClient(bundle.module, context.company) });
}

/** How long an integrated module's `init` and `loadPage` each have before its panel says so. */
export const SETTLE_MS = 15000;

/**
 * Runs `ui.init(context)` then `ui.loadPage(page, container)`, each bounded by `settleMs`: a
 * module that never settles gets an error in its panel, not a blank one.
 */
export async function runModule(ui, bundle, page, container, context, settleMs = SETTLE_MS) {
  const bounded = (what, work) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bundle.module}'s ${what} did not finish within ${settleMs / 1000} s`)), settleMs);
    Promise.resolve().then(work).then(resolve, reject).finally(() => clearTimeout(timer));
  });
  await bounded('init', () => ui.init(context));
  await bounded(`loadPage("${page}")`, () => ui.loadPage(page, container));
}

// The frame → shell messages: {plinth: 1, type: 'ready'}; {plinth: 1, type: 'request', id,
// method, path, body}; {plinth: 1, type: 'resize', height}. The shell → frame messages:
// {plinth: 1, type: 'init', context, page}; {plinth: 1, type: 'response', id, status, body}.
async function framed(entry, page, container, context) {
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', 'allow-scripts allow-forms');
  frame.title = `${entry.display_name} (sandboxed)`;
  frame.className = 'module-frame';
  frame.src = entry.base + (entry.entry_point || 'index.html');
  const api = moduleClient(entry.module, context.company);
  const reply = (message) => frame.contentWindow && frame.contentWindow.postMessage({ plinth: 1, ...message }, '*');
  const listener = async (event) => {
    // Only this frame's messages: a sandboxed frame's origin is opaque ("null"), so the
    // window it comes from is what identifies it.
    if (event.source !== frame.contentWindow || !event.data || event.data.plinth !== 1) return;
    const message = event.data;
    if (message.type === 'ready') {
      reply({ type: 'init', page, context: { user: context.user, tenant: context.tenant, company: context.company, configuration: context.configuration, module: entry.module } });
    } else if (message.type === 'request') {
      const method = String(message.method || 'GET').toLowerCase();
      try {
        if (!['get', 'post', 'put', 'delete'].includes(method)) throw new Error(`method ${message.method} is not allowed`);
        const body = await api[method](message.path, message.body);
        reply({ type: 'response', id: message.id, status: 200, body });
      } catch (e) {
        reply({ type: 'response', id: message.id, status: e.status || 400, body: e.problem || { detail: e.message } });
      }
    } else if (message.type === 'resize' && Number.isFinite(message.height)) {
      frame.style.height = `${Math.min(Math.max(message.height, 100), 5000)}px`;
    }
  };
  window.addEventListener('message', listener);
  // The listener goes with the frame when the panel is replaced.
  const gone = new MutationObserver(() => {
    if (!frame.isConnected) { window.removeEventListener('message', listener); gone.disconnect(); }
  });
  gone.observe(document.body, { childList: true, subtree: true });
  await new Promise((resolve, reject) => {
    frame.addEventListener('load', resolve, { once: true });
    frame.addEventListener('error', () => reject(new Error(`cannot load ${entry.module}'s frame`)), { once: true });
    container.append(frame);
  });
}
