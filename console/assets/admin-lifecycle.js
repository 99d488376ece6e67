// Platform admin: publish a module version (its manifest.json), and install, upgrade, roll back
// and uninstall it, the saga's steps shown as they run. Progress is read as the CLI's
// `plinth module install` reads it: `GET /api/v1/modules/{m}/installation`, polled until the
// operation is no longer pending or running.

import * as api from './api.js';
import { clearProblems, el, empty, field, loading, page, placeProblems, problem, when } from './dom.js';

const enc = encodeURIComponent;
/** How often the installation is read while an operation runs. */
const POLL_MS = 250;
const BUSY = new Set(['pending', 'running']);
const words = (name) => String(name).replaceAll('_', ' ');

/** `#/admin/lifecycle[/{module}]`. */
export async function lifecycle({ main }, preselected) {
  // Set below, once the catalog can be loaded again; a publish chooses what it published.
  let loadCatalog;
  const publishForm = publishSection((module) => loadCatalog(module));

  const moduleSelect = el('select', { name: 'module' });
  const versionSelect = el('select', { name: 'version' });
  const endpoint = el('input', { name: 'endpoint', type: 'url', placeholder: 'http://127.0.0.1:9000', autocomplete: 'off' });
  const dropData = el('input', { type: 'checkbox', id: 'life-drop-data', name: 'drop_data' });
  const current = el('p', { id: 'life-current', class: 'muted', 'aria-live': 'polite' });
  const opStatus = el('div', { role: 'status', class: 'status' });
  const buttons = {
    install: el('button', { type: 'button', 'data-op': 'install', text: 'Install' }),
    upgrade: el('button', { type: 'button', 'data-op': 'upgrade', text: 'Upgrade' }),
    rollback: el('button', { type: 'button', class: 'secondary', 'data-op': 'rollback', text: 'Roll back' }),
    uninstall: el('button', { type: 'button', class: 'danger', 'data-op': 'uninstall', text: 'Uninstall' }),
    retry: el('button', { type: 'button', class: 'secondary', 'data-op': 'retry', text: 'Retry', hidden: true }),
  };
  const opForm = el('form', { class: 'admin-form', novalidate: true, 'aria-labelledby': 'operate-title' },
    el('h2', { id: 'operate-title', text: 'Install, upgrade, roll back, uninstall' }),
    field({ id: 'life-module', label: 'Module', input: moduleSelect }), current,
    field({ id: 'life-version', label: 'Version', input: versionSelect }),
    field({ id: 'life-endpoint', label: 'Endpoint (optional)', input: endpoint,
      about: 'A backend that is already running; empty: the platform starts the manifest’s dev_command.' }),
    el('div', { class: 'check' }, dropData, el('label', { for: 'life-drop-data', text: ' On uninstall, drop the module’s data too' })),
    el('div', { class: 'actions' }, ...Object.values(buttons)), opStatus);
  const stepsTitle = el('h2', { id: 'steps-title', text: 'Steps' });
  const steps = el('ol', { id: 'saga-steps', class: 'steps', 'aria-labelledby': 'steps-title' });
  const feed = el('ol', { id: 'saga-feed', class: 'feed', 'aria-live': 'polite', 'aria-label': 'Steps as they finished' });
  main.replaceChildren(page('lifecycle-title', 'Publish and install', el('div', { class: 'split' },
    el('div', {}, publishForm, opForm),
    el('section', { class: 'saga', 'aria-labelledby': 'steps-title' }, stepsTitle, steps,
      el('h3', { text: 'As it happened' }), feed))));

  let catalog = [];
  loadCatalog = async (choose) => {
    catalog = await api.call('GET', '/v1/modules');
    moduleSelect.replaceChildren(...catalog.map((m) => el('option', { value: m.name, text: `${m.display_name} (${m.name})` })));
    if (choose && catalog.some((m) => m.name === choose)) moduleSelect.value = choose;
    await moduleChosen();
  };
  const moduleChosen = async () => {
    const entry = catalog.find((m) => m.name === moduleSelect.value);
    versionSelect.replaceChildren(...(entry ? entry.versions : []).map((v) => el('option', { value: v, text: v })));
    if (entry) versionSelect.value = entry.latest_version;
    await showInstallation(await installation(moduleSelect.value), false);
  };
  const installation = async (module) => {
    if (!module) return null;
    try {
      return await api.call('GET', `/v1/modules/${enc(module)}/installation`);
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  };
  // What the feed has said of each step of the operation followed, so each is said once.
  let said = new Map();
  const showInstallation = async (inst, live) => {
    if (!inst) {
      current.textContent = 'Not installed.';
      stepsTitle.textContent = 'Steps';
      steps.replaceChildren(el('li', { class: 'muted', text: 'No operation yet.' }));
      buttons.retry.hidden = true;
      return;
    }
    current.textContent = `${inst.installed_version ? `Serving ${inst.installed_version}` : 'Not serving'}; last: ${inst.operation} ${inst.version}, ${inst.status}.`;
    stepsTitle.textContent = `${words(inst.operation)} ${inst.module} ${inst.version}: ${inst.status}`;
    steps.replaceChildren(...inst.steps.map((s) => el('li', { 'data-step': s.step, 'data-step-status': s.status, class: `step step-${s.status}` },
      el('span', { class: 'step-name', text: words(s.step) }), el('span', { class: 'step-status', text: ` ${s.status}` }),
      s.detail ? el('span', { class: 'muted', text: ` — ${s.detail}` }) : '')));
    if (inst.failure) steps.append(el('li', { class: 'error', role: 'alert', text: `Failed at ${words(inst.failure.step)}: ${inst.failure.reason}` }));
    buttons.retry.hidden = inst.status !== 'failed' && !BUSY.has(inst.status);
    if (!live) return;
    for (const s of inst.steps) {
      if (s.status === 'pending' || said.get(s.step) === s.status) continue;
      said.set(s.step, s.status);
      feed.append(el('li', { 'data-feed': s.step, text: `${words(s.step)}: ${s.status}${s.at ? ` at ${when(s.at)}` : ''}` }));
    }
  };
  /** Polls the installation until its operation is over; gives back the last answer. */
  const follow = async (module) => {
    for (;;) {
      const inst = await installation(module);
      await showInstallation(inst, true);
      // Done, or the page was left: no more reads.
      if (!inst || !BUSY.has(inst.status) || !steps.isConnected) return inst;
      await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
    }
  };
  const run = async (op) => {
    const module = moduleSelect.value;
    if (!module) return;
    const path = `/v1/modules/${enc(module)}`;
    const version = versionSelect.value;
    const requests = {
      install: () => api.call('POST', `${path}/install`, { version, ...(endpoint.value.trim() ? { endpoint: endpoint.value.trim() } : {}) }),
      upgrade: () => api.call('POST', `${path}/upgrade`, { version }),
      rollback: () => api.call('POST', `${path}/rollback`),
      uninstall: () => api.call('DELETE', `${path}/installation?drop_data=${dropData.checked}`),
      retry: () => api.call('POST', `${path}/installation/retry`),
    };
    for (const b of Object.values(buttons)) b.disabled = true;
    opStatus.replaceChildren(loading(`${words(op)}: requested…`));
    said = new Map();
    feed.replaceChildren();
    try {
      await requests[op]();
      clearProblems(opForm);
      opStatus.replaceChildren(loading(`${words(op)} ${module}: running…`));
      const ended = await follow(module);
      opStatus.textContent = ended ? `${words(ended.operation)} ${module} ${ended.version}: ${ended.status}.` : `${module}: gone.`;
    } catch (e) {
      placeProblems(opForm, e, opStatus, (p) => (p === 'version' ? 'life-version' : p === 'endpoint' ? 'life-endpoint' : null));
    } finally {
      for (const b of Object.values(buttons)) b.disabled = false;
    }
  };
  for (const [op, button] of Object.entries(buttons)) button.addEventListener('click', () => run(op));
  moduleSelect.addEventListener('change', () => moduleChosen().catch((e) => opStatus.replaceChildren(problem(e))));
  opForm.addEventListener('submit', (event) => event.preventDefault());

  try {
    await loadCatalog(preselected);
    if (!catalog.length) current.replaceChildren(empty('Nothing is published yet: publish a manifest above.'));
  } catch (e) {
    opStatus.replaceChildren(problem(e));
  }
}

/** The form that publishes a manifest.json chosen from disk; `onPublished(module)` after. */
function publishSection(onPublished) {
  const publishStatus = el('div', { role: 'status', class: 'status' });
  const file = el('input', { type: 'file', name: 'manifest', accept: 'application/json,.json' });
  const publishForm = el('form', { class: 'admin-form', novalidate: true, 'aria-labelledby': 'publish-title' },
    el('h2', { id: 'publish-title', text: 'Publish a version' }),
    field({ id: 'publish-file', label: 'Manifest (manifest.json)', input: file, about: 'A version is published once; the same manifest again changes nothing.' }),
    el('button', { type: 'submit', text: 'Publish' }), publishStatus);
  publishForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    const refuse = (error) => {
      file.setAttribute('aria-invalid', 'true');
      publishForm.querySelector('[data-problem-for="publish-file"]').textContent = '';
      publishStatus.replaceChildren(problem(error));
      file.focus();
    };
    file.removeAttribute('aria-invalid');
    if (!chosen) {
      refuse(new Error('Choose a manifest.json to publish.'));
      return;
    }
    let manifest;
    try {
      manifest = JSON.parse(await chosen.text());
    } catch (e) {
      refuse(new Error(`${chosen.name} is not JSON: ${e.message}`));
      return;
    }
    publishStatus.replaceChildren(loading('Publishing…'));
    try {
      const published = await api.call('POST', '/v1/modules', manifest);
      publishStatus.textContent = `Published ${published.module} ${published.version}.`;
      await onPublished(published.module);
    } catch (e) {
      refuse(e);
    }
  });
  return publishForm;
}
