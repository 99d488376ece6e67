// The console's shell: sign-in, the menu of the tenant's enabled modules (built from their
// manifests) and a panel per module page. Routes live in the URL's fragment
// (`#/m/financial/invoices`); no token ever does.

import * as api from './api.js';
import { configure } from './configure.js';
import { loadModule } from './loader.js';
import { adminLinks, adminPage } from './admin.js';

const main = document.getElementById('main');
const menu = document.getElementById('menu');
const who = document.getElementById('who');

/** The signed-in user, the company they act in (the header's picker) and their tenant's modules. */
const state = { user: null, company: null, entries: [] };

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function problem(error) {
  return el('p', { class: 'error', role: 'alert', text: error.message || String(error) });
}

async function start() {
  let current;
  try {
    current = await api.session();
  } catch (e) {
    main.replaceChildren(problem(e));
    return;
  }
  if (!current.user) {
    showSignIn(current.development_users || [], current.oidc);
    return;
  }
  state.user = current.user;
  state.company = current.user.company;
  showUser();
  await buildMenu();
  route();
}

function showSignIn(users, oidc) {
  state.user = null;
  who.replaceChildren();
  menu.replaceChildren();
  // The identity provider's sign-in is a navigation: the console's server runs the code flow
  // and sets the session cookie; no token passes through this page.
  const provider = oidc && el('section', { class: 'card sign-in', 'aria-labelledby': 'sign-in-oidc-title' },
    el('h1', { id: 'sign-in-oidc-title', text: 'Sign in' }),
    el('a', { id: 'sign-in-oidc', class: 'button', href: oidc.login, text: 'Sign in with your identity provider' }));
  if (!users.length) {
    main.replaceChildren(provider || el('p', { role: 'alert', text: 'No sign-in is offered.' }));
    if (provider) provider.querySelector('a').focus();
    if (!performance.getEntriesByName('plinth:interactive').length) performance.mark('plinth:interactive');
    return;
  }
  const select = el('select', { id: 'sign-in-user', name: 'user', required: '' },
    ...users.map((u) => el('option', { value: u.id, text: u.label })));
  const status = el('p', { class: 'status', role: 'status' });
  const form = el('form', { class: 'card sign-in', 'aria-labelledby': 'sign-in-title' },
    el('h1', { id: 'sign-in-title', text: 'Sign in' }),
    el('p', { text: 'Development sign-in: the demo’s users, on this machine only.' }),
    el('label', { for: 'sign-in-user', text: 'User' }), select,
    el('button', { type: 'submit', text: 'Sign in' }), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.textContent = 'Signing in…';
    try {
      await api.signIn(select.value);
      await start();
    } catch (e) {
      status.replaceChildren(problem(e));
    }
  });
  main.replaceChildren(...[provider, form].filter(Boolean));
  select.focus();
  // The first page is interactive: the browser test reads this mark (BENCHMARKS.md).
  if (!performance.getEntriesByName('plinth:interactive').length) performance.mark('plinth:interactive');
}

function showUser() {
  const u = state.user;
  const where = u.tenant ? ` · ${u.tenant}${state.company ? ` / ${state.company}` : ''}` : ' · platform';
  const out = el('button', { type: 'button', class: 'link', text: 'Sign out' });
  out.addEventListener('click', async () => {
    const ended = await api.signOut();
    // With an identity provider, its session ends too.
    if (ended && ended.end_session) { location.assign(ended.end_session); return; }
    location.hash = '#/';
    await start();
  });
  const parts = [el('span', { id: 'signed-in-as', text: `${u.id}${where}` })];
  if (u.companies.length > 1) {
    // The company a request acts in (X-Plinth-Company); the open page loads again in it.
    const picker = el('select', { id: 'company', name: 'company' },
      ...u.companies.map((c) => el('option', { value: c, text: c })));
    picker.value = state.company;
    picker.addEventListener('change', () => {
      state.company = picker.value;
      showUser();
      document.getElementById('company').focus();
      route();
    });
    parts.push(el('label', { for: 'company', class: 'company', text: 'Company' }), picker);
  }
  who.replaceChildren(...parts, out);
}

/** The tenant's enabled modules, each with its installed manifest's name and frontend. */
async function buildMenu() {
  state.entries = [];
  const u = state.user;
  if (!u.tenant) {
    const more = adminLinks(u);
    const parts = [el('p', { class: 'muted', text: 'No tenant: no module menu.' }), el('ul', {}, ...more.everyone)];
    if (u.platform_admin) {
      parts.push(el('h2', { class: 'menu-title', text: 'Platform' }),
        el('ul', {}, el('li', {}, el('a', { href: '#/admin/installed', 'data-admin': 'installed', text: 'Installed modules' })), ...more.platform));
    }
    menu.replaceChildren(...parts);
    return;
  }
  let enabled;
  try {
    enabled = (await api.call('GET', `/v1/tenants/${encodeURIComponent(u.tenant)}/modules`)).filter((m) => m.enabled);
  } catch (e) {
    menu.replaceChildren(problem(e));
    return;
  }
  const manifests = await Promise.allSettled(enabled.map((m) => api.call('GET', `/v1/modules/${encodeURIComponent(m.module)}/manifest`)));
  state.entries = enabled.map((m, i) => {
    const manifest = manifests[i].status === 'fulfilled' ? manifests[i].value : null;
    return {
      module: m.module,
      version: manifest ? manifest.version : null,
      display_name: (manifest && manifest.display_name) || m.module,
      frontend: manifest ? manifest.frontend : null,
      failure: manifests[i].status === 'rejected' ? manifests[i].reason : null,
    };
  }).sort((a, b) => a.display_name.localeCompare(b.display_name));
  const items = state.entries.map((entry) => el('li', {},
    el('a', { href: `#/m/${entry.module}`, 'data-module': entry.module, text: entry.display_name })));
  const parts = [el('h2', { class: 'menu-title', text: 'Modules' }), el('ul', { id: 'module-menu' }, ...items)];
  const more = adminLinks(u);
  const admin = u.tenant_admin
    ? [el('li', {}, el('a', { href: '#/admin/modules', 'data-admin': 'modules', text: 'Enable modules' })), ...more.tenant] : [];
  parts.push(el('h2', { class: 'menu-title', text: 'Administration' }), el('ul', {}, ...more.everyone, ...admin));
  menu.replaceChildren(...parts);
}

/** Tenant admin: the installed modules, each enabled or not for the tenant, with a switch. */
async function adminModules() {
  const u = state.user;
  const tenant = encodeURIComponent(u.tenant);
  const list = el('ul', { class: 'toggles' });
  main.replaceChildren(el('section', { class: 'card', 'aria-labelledby': 'admin-title' },
    el('h1', { id: 'admin-title', text: `Modules of ${u.tenant}` }),
    el('p', { class: 'muted', text: 'An enabled module is in every user’s menu; disabling keeps its configuration.' }),
    list));
  let catalog;
  let rows;
  try {
    [catalog, rows] = await Promise.all([api.call('GET', '/v1/modules'), api.call('GET', `/v1/tenants/${tenant}/modules`)]);
  } catch (e) {
    list.replaceWith(problem(e));
    return;
  }
  const enabled = new Set(rows.filter((r) => r.enabled).map((r) => r.module));
  list.replaceChildren(...catalog.map((module) => {
    const id = `enable-${module.name}`;
    const box = el('input', { type: 'checkbox', id, 'data-enable': module.name });
    box.checked = enabled.has(module.name);
    const said = el('span', { class: 'toggle-status', role: 'status' });
    box.addEventListener('change', async () => {
      box.disabled = true;
      said.replaceChildren();
      try {
        const path = `/v1/tenants/${tenant}/modules/${encodeURIComponent(module.name)}`;
        if (box.checked) await api.call('PUT', path, { enabled: true });
        else await api.call('DELETE', path);
        // The menu first: "Enabled." means it is in the menu too.
        await buildMenu();
        markCurrent();
        said.textContent = box.checked ? 'Enabled.' : 'Disabled.';
      } catch (e) {
        box.checked = !box.checked;
        said.replaceChildren(problem(e));
      } finally {
        box.disabled = false;
      }
    });
    const settings = el('a', { href: `#/admin/configure/${module.name}`, class: 'configure', 'data-configure': module.name, text: 'Configure' });
    const tenantWide = el('a', { href: `#/admin/tenant-config/${module.name}`, class: 'configure', 'data-tenant-config': module.name,
      'aria-label': `Tenant configuration of ${module.display_name}`, text: 'Tenant' });
    const toggles = el('a', { href: `#/admin/features/${module.name}`, class: 'configure', 'data-features': module.name,
      'aria-label': `Features of ${module.display_name}`, text: 'Features' });
    return el('li', {}, box, el('label', { for: id, text: ` ${module.display_name} (${module.latest_version})` }), settings, tenantWide, toggles, said);
  }));
}

/** Marks the menu's link to the page shown. */
function markCurrent() {
  const shown = location.hash.replace(/^#/, '').split('?')[0].split('/')[2];
  for (const link of menu.querySelectorAll('a[data-module], a[data-admin]')) {
    if ((link.dataset.module || link.dataset.admin) === shown) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** Shows the page the fragment names. */
function route() {
  if (!state.user) return;
  // A page's own state may follow `?` (the marketplace's filters).
  const [, kind, module, ...page] = location.hash.replace(/^#/, '').split('?')[0].split('/');
  markCurrent();
  if (kind === 'admin' && module === 'installed' && state.user.platform_admin) {
    installedModules();
  } else if (kind === 'admin' && module === 'modules' && state.user.tenant_admin) {
    adminModules();
  } else if (kind === 'admin' && module === 'configure' && page[0] && state.user.tenant_admin) {
    configureModule(page[0]);
  } else if (kind === 'admin' && adminPage(module, page, { user: state.user, company: state.company, main, rebuildMenu: buildMenu })) {
    // An admin page of admin.js is shown.
  } else if (kind === 'm' && module) {
    openModule(module, page.join('/') || 'index');
  } else {
    main.replaceChildren(el('section', { class: 'card' },
      el('h1', { text: 'Welcome' }),
      el('p', { text: state.entries.length ? 'Pick a module from the menu.' : 'No module is enabled for your tenant yet.' })));
  }
}

/** Platform admin: each installed module, its installation's status and its instances' health. */
async function installedModules() {
  const rows = el('tbody');
  main.replaceChildren(el('section', { class: 'card', 'aria-labelledby': 'installed-title' },
    el('h1', { id: 'installed-title', text: 'Installed modules' }),
    el('div', { class: 'module-body' }, el('table', { 'aria-labelledby': 'installed-title' },
      el('thead', {}, el('tr', {}, ...['Module', 'Version', 'Status', 'Instances'].map((h) => el('th', { scope: 'col', text: h })))),
      rows))));
  try {
    const catalog = await api.call('GET', '/v1/modules');
    const details = await Promise.all(catalog.map(async (module) => {
      const path = `/v1/modules/${encodeURIComponent(module.name)}`;
      const [installation, instances] = await Promise.allSettled([
        api.call('GET', `${path}/installation`), api.call('GET', `${path}/instances`)]);
      return { module, installation: installation.value, instances: instances.value || [] };
    }));
    rows.replaceChildren(...details.map(({ module, installation, instances }) => {
      const healthy = instances.filter((i) => i.health === 'healthy').length;
      return el('tr', { 'data-installed': module.name },
        el('td', { text: module.display_name }),
        el('td', { text: (installation && installation.installed_version) || '—' }),
        el('td', { text: installation ? installation.status : 'not installed' }),
        el('td', { text: `${healthy} of ${instances.length} healthy` }));
    }));
  } catch (e) {
    rows.replaceChildren(el('tr', {}, el('td', { colspan: '4' }, problem(e))));
  }
}

/** Tenant admin: the configuration form of `module` for the company acted in. */
async function configureModule(module) {
  const u = state.user;
  const body = el('div', { class: 'module-body' });
  main.replaceChildren(el('section', { class: 'panel', 'aria-labelledby': 'configure-title' },
    el('h1', { id: 'configure-title', text: `Configure ${module}` }), body));
  try {
    const manifest = await api.call('GET', `/v1/modules/${encodeURIComponent(module)}/manifest`);
    document.getElementById('configure-title').textContent = `Configure ${manifest.display_name || module}`;
    await configure(body, { tenant: u.tenant, company: state.company, module, manifest });
  } catch (e) {
    body.replaceChildren(problem(e));
  }
}

/** Opens `module`'s `page` in a panel of its own: whatever its bundle does, only this panel shows it. */
async function openModule(module, page) {
  const entry = state.entries.find((e) => e.module === module);
  const body = el('div', { class: 'module-body' });
  const panel = el('section', { class: 'panel', 'data-module-panel': module, 'aria-labelledby': 'panel-title' },
    el('h1', { id: 'panel-title', text: entry ? entry.display_name : module }), body);
  main.replaceChildren(panel);
  // From the menu, the page takes the focus; from the company picker, the picker keeps it.
  if (document.activeElement?.id !== 'company') main.focus();
  try {
    if (!entry) throw new Error(`${module} is not enabled for your tenant`);
    if (entry.failure) throw entry.failure;
    const u = state.user;
    const company = state.company;
    const resolved = await api.call('GET', `/v1/tenants/${encodeURIComponent(u.tenant)}/modules/${encodeURIComponent(module)}/config${company ? `?company=${encodeURIComponent(company)}` : ''}`);
    const context = {
      user: { id: u.id },
      tenant: u.tenant,
      company,
      configuration: resolved.configuration,
      features: resolved.features || [],
    };
    await loadModule(entry, page, body, context);
  } catch (e) {
    body.replaceChildren(el('div', { class: 'error', role: 'alert', 'data-bundle-error': module },
      el('strong', { text: 'This module’s page failed to load. ' }), document.createTextNode(e.message || String(e))));
  }
}

window.addEventListener('hashchange', route);
start();
