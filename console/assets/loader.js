// Loads a module's frontend into its panel, as its manifest's `frontend.type` says
// (docs/console.md):
// - `spa-module` (integrated): an ES module whose default export is
//   `{ init(context), loadPage(page, container) }`, run in the shell's page;
// - `iframe` (micro-frontend): a document in a sandboxed frame (no origin: no cookie, no
//   storage, no call of its own), talking to the shell only through the postMessage
//   contract below.
// A failure is thrown to the caller, which shows it in the module's own panel.

import { moduleClient } from './api.js';

const INTEGRATED = new Set(['spa-module', 'es-module']);
const FRAMED = new Set(['iframe', 'micro-frontend']);

/** The URL of a file of `entry`'s staged bundle. */
export function bundleUrl(entry, file) {
  return `/console/bundles/${encodeURIComponent(entry.module)}/${encodeURIComponent(entry.version)}/${file}`;
}

/**
 * Loads `entry` (`{module, version, display_name, frontend}`) into `container` on `page`,
 * with `context` (`{user, tenant, company, configuration}`).
 */
export async function loadModule(entry, page, container, context) {
  const frontend = entry.frontend;
  if (!frontend) throw new Error(`${entry.display_name} ships no frontend`);
  const kind = frontend.type;
  if (INTEGRATED.has(kind)) return integrated(entry, page, container, context);
  if (FRAMED.has(kind)) return framed(entry, page, container, context);
  throw new Error(`frontend.type "${kind}" is not one the console loads (spa-module, iframe)`);
}

async function integrated(entry, page, container, context) {
  const file = entry.frontend.entry_point || 'module.js';
  let loaded;
  try {
    loaded = await import(bundleUrl(entry, file));
  } catch (e) {
    throw new Error(`cannot load ${entry.module}'s bundle ${file}: ${e.message}`);
  }
  const ui = loaded.default;
  if (!ui || typeof ui.init !== 'function' || typeof ui.loadPage !== 'function') {
    throw new Error(`${entry.module}'s ${file} has no default export { init(context), loadPage(page, container) }`);
  }
  await ui.init({ ...context, module: entry.module, version: entry.version, api: moduleClient(entry.module, context.company) });
  await ui.loadPage(page, container);
}

// The frame → shell messages: {plinth: 1, type: 'ready'}; {plinth: 1, type: 'request', id,
// method, path, body}; {plinth: 1, type: 'resize', height}. The shell → frame messages:
// {plinth: 1, type: 'init', context, page}; {plinth: 1, type: 'response', id, status, body}.
async function framed(entry, page, container, context) {
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', 'allow-scripts allow-forms');
  frame.title = `${entry.display_name} (sandboxed)`;
  frame.className = 'module-frame';
  frame.src = bundleUrl(entry, entry.frontend.entry_point || 'index.html');
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
