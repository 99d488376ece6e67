// Tenant admin: the tenant-level configuration of a module (the company form's generator),
// the resolved configuration with each value's tier, feature toggles, roles and their users,
// and the audit log.

import * as api from './api.js';
import { configure, resolve } from './configure.js';
import { clearProblems, el, empty, field, loading, page, placeProblems, problem, when } from './dom.js';

const enc = encodeURIComponent;

/** `#/admin/tenant-config/{module}`: the tenant's form, and what a company then resolves to. */
export async function tenantConfiguration({ user, company, main }, module) {
  const form = el('div', { class: 'module-body' }, loading());
  const resolved = el('div', { class: 'module-body', 'aria-live': 'polite' });
  main.replaceChildren(page('tenant-config-title', `Tenant configuration of ${module}`,
    el('p', {}, el('a', { href: `#/admin/configure/${enc(module)}`, text: `${company ? `${company}’s` : 'A company’s'} override` }),
      ' · ', el('a', { href: `#/admin/features/${enc(module)}`, text: 'Feature toggles' })),
    el('div', { class: 'split' }, form,
      el('div', {}, el('h2', { id: 'resolved-title', text: `Resolved${company ? ` for ${company}` : ''}` }), resolved))));
  const showResolved = async () => {
    try {
      resolved.replaceChildren(resolvedTable(await resolve(user.tenant, module, company)));
    } catch (e) {
      resolved.replaceChildren(problem(e));
    }
  };
  try {
    const manifest = await api.call('GET', `/v1/modules/${enc(module)}/manifest`);
    document.getElementById('tenant-config-title').textContent = `Tenant configuration of ${manifest.display_name || module}`;
    await configure(form, { tenant: user.tenant, company: null, module, manifest });
    form.addEventListener('plinth:saved', showResolved);
    await showResolved();
  } catch (e) {
    form.replaceChildren(problem(e));
  }
}

/** Each resolved value and the tier (module, tenant, company) it came from. */
function resolvedTable(resolution) {
  const keys = Object.keys(resolution.configuration).sort();
  if (!keys.length) return empty('Nothing is configured.');
  return el('table', { 'aria-labelledby': 'resolved-title', 'data-table': 'resolved' },
    el('thead', {}, el('tr', {}, ...['Key', 'Value', 'Tier'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...keys.map((key) => el('tr', { 'data-resolved': key },
      el('td', { text: key }), el('td', { text: JSON.stringify(resolution.configuration[key]) }),
      el('td', {}, el('span', { class: `tier tier-${resolution.sources[key] || 'unset'}`, text: resolution.sources[key] || 'unset' }))))));
}

/** `#/admin/features/{module}`: the manifest's features, each on or off for the tenant. */
export async function features({ user, main }, module) {
  const list = el('ul', { class: 'toggles', id: 'feature-list' }, el('li', {}, loading()));
  main.replaceChildren(page('features-title', `Features of ${module}`,
    el('p', { class: 'muted', text: 'A feature switched here is on or off for every company of the tenant, unless a company overrides it.' }),
    list));
  const tenantPath = `/v1/tenants/${enc(user.tenant)}/modules/${enc(module)}`;
  try {
    const [manifest, rows, resolution] = await Promise.all([
      api.call('GET', `/v1/modules/${enc(module)}/manifest`),
      api.call('GET', `/v1/tenants/${enc(user.tenant)}/modules`),
      resolve(user.tenant, module, null)]);
    document.getElementById('features-title').textContent = `Features of ${manifest.display_name || module}`;
    const row = rows.find((r) => r.module === module) || { enabled_features: [], disabled_features: [] };
    const toggles = { on: new Set(row.enabled_features), off: new Set(row.disabled_features) };
    let on = new Set(resolution.features || []);
    const declared = manifest.features || [];
    if (!declared.length) {
      list.replaceChildren(el('li', {}, empty(`${module} declares no feature.`)));
      return;
    }
    list.replaceChildren(...declared.map((feature) => {
      const id = `feature-${feature.name}`;
      const box = el('input', { type: 'checkbox', id, 'data-feature': feature.name, 'aria-describedby': `${id}-about` });
      box.checked = on.has(feature.name);
      const said = el('span', { class: 'toggle-status', role: 'status' });
      box.addEventListener('change', async () => {
        box.disabled = true;
        said.replaceChildren();
        const next = { on: new Set(toggles.on), off: new Set(toggles.off) };
        (box.checked ? next.on : next.off).add(feature.name);
        (box.checked ? next.off : next.on).delete(feature.name);
        try {
          await api.call('PUT', tenantPath, { enabled_features: [...next.on], disabled_features: [...next.off] });
          toggles.on = next.on;
          toggles.off = next.off;
          on = new Set((await resolve(user.tenant, module, null)).features || []);
          box.checked = on.has(feature.name);
          said.textContent = box.checked ? 'On for the tenant.' : 'Off for the tenant.';
        } catch (e) {
          box.checked = !box.checked;
          said.replaceChildren(problem(e));
        } finally {
          box.disabled = false;
          box.focus();
        }
      });
      return el('li', {}, box, el('label', { for: id, text: ` ${feature.name}` }),
        el('span', { id: `${id}-about`, class: 'muted feature-about', text: ` ${feature.description || ''} (default ${feature.default ? 'on' : 'off'})` }), said);
    }));
  } catch (e) {
    list.replaceChildren(el('li', {}, problem(e)));
  }
}

/** `#/admin/roles`: the tenant's roles, who holds them, and forms to change both. */
export async function roles({ user, main }) {
  const tenant = enc(user.tenant);
  const roleList = roleSection(tenant);
  const userList = userSection(tenant, roleList.select);
  main.replaceChildren(page('roles-title', `Roles and users of ${user.tenant}`,
    el('div', { class: 'split' }, userList.node, roleList.node)));
  try {
    const companies = await api.call('GET', `/v1/tenants/${tenant}/companies`);
    userList.scope.append(...companies.map((c) => el('option', { value: c.id, text: `In ${c.name || c.id}` })));
    await roleList.show();
  } catch (e) {
    roleList.body.replaceChildren(problem(e));
  }
  try {
    await userList.show();
  } catch (e) {
    userList.body.replaceChildren(problem(e));
  }
}

/** A refusal made here, before any call, in the API's shape: `detail` about the field `path`. */
const refusal = (path, detail) => Object.assign(new Error(detail), { problem: { detail, errors: [{ path, message: detail }] } });

/** The roles' table and the form that creates or changes one; `select` lists them to assign. */
function roleSection(tenant) {
  const body = el('div', { class: 'module-body' }, loading());
  const status = el('div', { role: 'status', class: 'status' });
  const select = el('select', { name: 'role' });
  const form = el('form', { class: 'admin-form', novalidate: true, 'aria-labelledby': 'role-form-title' },
    el('h2', { id: 'role-form-title', text: 'Create or change a role' }),
    field({ id: 'role-name', label: 'Role name', input: el('input', { name: 'name', autocomplete: 'off' }) }),
    field({ id: 'role-permissions', label: 'Permissions', about: 'Module permissions, separated by spaces or commas (financial:invoices.read).',
      input: el('input', { name: 'permissions', autocomplete: 'off' }) }),
    field({ id: 'role-description', label: 'Description (optional)', input: el('input', { name: 'description', autocomplete: 'off' }) }),
    el('button', { type: 'submit', text: 'Save role' }), status);
  const show = async () => {
    const known = await api.call('GET', `/v1/tenants/${tenant}/roles`);
    body.replaceChildren(known.length ? el('table', { 'aria-labelledby': 'roles-list-title', 'data-table': 'roles' },
      el('thead', {}, el('tr', {}, ...['Role', 'Permissions', 'Description'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...known.map((r) => el('tr', { 'data-role': r.name },
        el('td', { text: r.name }), el('td', { text: r.permissions.join(', ') }), el('td', { text: r.description || '' })))))
      : empty('No role yet: create one below.'));
    const chosen = select.value;
    select.replaceChildren(...known.map((r) => el('option', { value: r.name, text: r.name })));
    if (known.some((r) => r.name === chosen)) select.value = chosen;
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    const permissions = form.elements.permissions.value.split(/[\s,]+/).filter(Boolean);
    const description = form.elements.description.value.trim();
    status.replaceChildren(loading('Saving…'));
    try {
      if (!name) throw refusal('role', 'a role needs a name');
      await api.call('PUT', `/v1/tenants/${tenant}/roles/${enc(name)}`, { permissions, ...(description ? { description } : {}) });
      clearProblems(form);
      status.textContent = `Role ${name} saved.`;
      await show();
    } catch (e) {
      placeProblems(form, e, status, (path) => (path.startsWith('permissions') ? 'role-permissions'
        : path.startsWith('description') ? 'role-description' : path === 'role' ? 'role-name' : null));
    }
  });
  const node = el('div', {}, el('h2', { id: 'roles-list-title', text: 'Roles' }), body, form);
  return { node, body, select, show };
}

/** Who holds which role (each with Remove), and the form that assigns one. */
function userSection(tenant, roleSelect) {
  const body = el('div', { class: 'module-body' }, loading());
  const status = el('div', { role: 'status', class: 'status' });
  const scope = el('select', { name: 'scope' }, el('option', { value: '', text: 'Tenant-wide' }));
  const form = el('form', { class: 'admin-form', novalidate: true, 'aria-labelledby': 'assign-title' },
    el('h2', { id: 'assign-title', text: 'Assign a role' }),
    field({ id: 'assign-user', label: 'User', about: 'The user’s id (their token’s sub).', input: el('input', { name: 'user', autocomplete: 'off' }) }),
    field({ id: 'assign-role', label: 'Role', input: roleSelect }),
    field({ id: 'assign-scope', label: 'Where', input: scope }),
    el('button', { type: 'submit', text: 'Assign' }), status);
  // The assignment API replaces a user's roles: read them, change them, write them back.
  const change = async (who, mutate) => {
    const path = `/v1/tenants/${tenant}/users/${enc(who)}/roles`;
    const current = await api.call('GET', path);
    const next = { roles: [...(current.roles || [])], companies: { ...(current.companies || {}) } };
    mutate(next);
    return api.call('PUT', path, next);
  };
  const held = (u) => [...(u.roles || []).map((r) => [r, null]),
    ...Object.entries(u.companies || {}).flatMap(([c, rs]) => rs.map((r) => [r, c]))];
  let show;
  const removeButton = (u, role, company) => {
    const where = company ? ` in ${company}` : '';
    const remove = el('button', { type: 'button', class: 'small secondary', 'data-unassign': `${u.user}:${role}${company ? `:${company}` : ''}`,
      'aria-label': `Remove ${role}${where} from ${u.user}`, text: 'Remove' });
    remove.addEventListener('click', async () => {
      status.replaceChildren(loading('Removing…'));
      try {
        await change(u.user, (next) => {
          if (company) next.companies[company] = next.companies[company].filter((r) => r !== role);
          else next.roles = next.roles.filter((r) => r !== role);
        });
        await show();
        status.textContent = `${role}${where} removed from ${u.user}.`;
      } catch (e) {
        status.replaceChildren(problem(e));
      }
    });
    return el('li', {}, el('span', { text: `${role}${where} ` }), remove);
  };
  const userRow = (u) => el('tr', { 'data-user': u.user }, el('td', { text: u.user }),
    el('td', {}, el('ul', { class: 'held' }, ...held(u).map(([role, company]) => removeButton(u, role, company)))));
  show = async () => {
    const rows = (await api.call('GET', `/v1/tenants/${tenant}/users`)).filter((u) => held(u).length);
    body.replaceChildren(rows.length ? el('table', { 'aria-labelledby': 'users-title', 'data-table': 'users' },
      el('thead', {}, el('tr', {}, ...['User', 'Roles'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...rows.map(userRow)))
      : empty('Nobody holds a role yet.'));
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const who = form.elements.user.value.trim();
    const role = roleSelect.value;
    const company = scope.value;
    status.replaceChildren(loading('Assigning…'));
    try {
      if (!who) throw refusal('user', 'name the user');
      if (!role) throw refusal('roles', 'create a role first');
      await change(who, (next) => {
        if (company) next.companies[company] = [...new Set([...(next.companies[company] || []), role])];
        else next.roles = [...new Set([...next.roles, role])];
      });
      clearProblems(form);
      await show();
      status.textContent = `${role} assigned to ${who}${company ? ` in ${company}` : ''}.`;
    } catch (e) {
      placeProblems(form, e, status, (path) => (path === 'user' ? 'assign-user'
        : path.startsWith('roles') || path.startsWith('companies') ? 'assign-role' : null));
    }
  });
  const node = el('div', {}, el('h2', { id: 'users-title', text: 'Users' }), body, form);
  return { node, body, scope, show: () => show() };
}

/** `#/admin/audit`: who changed what, newest first, a page at a time. */
export async function auditLog({ user, main }) {
  const body = el('div', { class: 'module-body', 'aria-live': 'polite' });
  const newer = el('button', { type: 'button', class: 'secondary', 'data-page': 'newer', text: 'Newer', disabled: true });
  const older = el('button', { type: 'button', class: 'secondary', 'data-page': 'older', text: 'Older', disabled: true });
  const where = el('span', { class: 'muted', role: 'status', id: 'audit-page' });
  main.replaceChildren(page('audit-title', `Audit log of ${user.tenant}`,
    body, el('div', { class: 'pager' }, newer, where, older)));
  // The cursors of the pages shown so far: `after` of page n is cursors[n].
  const cursors = [null];
  let at = 0;
  const show = async (index) => {
    body.replaceChildren(loading());
    newer.disabled = true;
    older.disabled = true;
    try {
      const after = cursors[index];
      const answer = await api.call('GET', `/v1/tenants/${enc(user.tenant)}/audit?limit=20${after ? `&after=${enc(after)}` : ''}`);
      at = index;
      cursors[index + 1] = answer.next || null;
      body.replaceChildren(answer.records.length ? el('table', { 'aria-labelledby': 'audit-title', 'data-table': 'audit' },
        el('thead', {}, el('tr', {}, ...['When', 'Who', 'What', 'On', 'Detail'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, ...answer.records.map((r) => el('tr', { 'data-audit': r.action },
          el('td', { text: when(r.at) }), el('td', { text: r.actor }), el('td', { text: r.action }), el('td', { text: r.target }),
          el('td', { class: 'detail', text: r.detail === null || r.detail === undefined ? '' : JSON.stringify(r.detail) })))))
        : empty('Nothing has been changed yet.'));
      where.textContent = `Page ${index + 1}`;
      newer.disabled = index === 0;
      older.disabled = !answer.next;
    } catch (e) {
      body.replaceChildren(problem(e));
    }
  };
  newer.addEventListener('click', () => show(at - 1));
  older.addEventListener('click', () => show(at + 1));
  await show(0);
}
