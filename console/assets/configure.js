// Tenant admin: the tenant's or a company's configuration of a module, in a form generated
// from the module's configuration JSON Schema (its manifest's `configuration.schema`). Each
// field shows the resolved value and the tier it came from; the API's validation problems are
// shown beside the fields they name.

import * as api from './api.js';

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** The value a field's text stands for, as its schema types it. */
function typed(schema, text) {
  if (schema.type === 'number') return text.trim() === '' ? text : Number(text);
  if (schema.type === 'integer') return /^-?\d+$/.test(text.trim()) ? Number.parseInt(text, 10) : text;
  return text;
}

/** The resolved configuration of `module` for `tenant` (and `company`, when given). */
export function resolve(tenant, module, company) {
  const query = company ? `?company=${encodeURIComponent(company)}` : '';
  return api.call('GET', `/v1/tenants/${encodeURIComponent(tenant)}/modules/${encodeURIComponent(module)}/config${query}`);
}

/**
 * Renders the form for `module` (its installed `manifest`) of `tenant`'s `company` into
 * `container`; with no `company`, the tenant's own configuration (the tier under every
 * company's).
 */
export async function configure(container, { tenant, company, module, manifest }) {
  const schema = (manifest.configuration && manifest.configuration.schema) || {};
  const properties = schema.properties || {};
  const resolved = await resolve(tenant, module, company);
  const whose = company || `tenant ${tenant}`;
  const target = company
    ? `/v1/tenants/${encodeURIComponent(tenant)}/companies/${encodeURIComponent(company)}/modules/${encodeURIComponent(module)}`
    : `/v1/tenants/${encodeURIComponent(tenant)}/modules/${encodeURIComponent(module)}`;
  const fields = new Map();
  const form = el('form', { class: 'config-form', novalidate: '' });
  for (const [name, property] of Object.entries(properties)) {
    const id = `config-${name}`;
    const input = el('input', { id, name, 'aria-describedby': `${id}-about ${id}-problem` });
    if (property.type === 'number' || property.type === 'integer') {
      input.type = 'number';
      input.step = property.type === 'integer' ? '1' : 'any';
    }
    const value = resolved.configuration[name];
    input.value = value === undefined ? '' : String(value);
    const tier = resolved.sources[name] || 'unset';
    const about = el('p', { id: `${id}-about`, class: 'muted field-about',
      text: `${property.description ? `${property.description}. ` : ''}Now ${input.value || '—'}, from the ${tier} tier.` });
    const problem = el('p', { id: `${id}-problem`, class: 'field-problem', 'data-problem-for': name });
    fields.set(name, { input, problem, property, initial: input.value });
    form.append(el('div', { class: 'field' }, el('label', { for: id, text: name }), input, about, problem));
  }
  const status = el('p', { role: 'status', class: 'status' });
  form.append(el('button', { type: 'submit', text: `Save for ${whose}` }), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const patch = {};
    for (const [name, field] of fields) {
      field.problem.textContent = '';
      field.input.removeAttribute('aria-invalid');
      if (field.input.value !== field.initial) patch[name] = typed(field.property, field.input.value);
    }
    if (!Object.keys(patch).length) {
      status.textContent = 'Nothing changed.';
      return;
    }
    status.textContent = 'Saving…';
    try {
      await api.call('PUT', target, { configuration_patch: patch });
      status.textContent = `Saved for ${whose}.`;
      await configure(container, { tenant, company, module, manifest });
      container.querySelector('.config-form [role=status]').textContent = `Saved for ${whose}.`;
      container.dispatchEvent(new CustomEvent('plinth:saved'));
    } catch (e) {
      const problems = (e.problem && e.problem.errors) || [];
      let placed = 0;
      for (const problem of problems) {
        const name = String(problem.path || '').replace(/^configuration(_patch)?\./, '').split('.')[0];
        const field = fields.get(name);
        if (field) {
          field.problem.textContent = problem.message;
          field.input.setAttribute('aria-invalid', 'true');
          if (!placed) field.input.focus();
          placed += 1;
        }
      }
      status.textContent = placed ? `Not saved: ${e.problem.detail || e.message}` : `Not saved: ${e.message}`;
    }
  });
  const about = company
    ? `Company ${company}: values it sets override the tenant’s, which override the module’s defaults.`
    : `Tenant ${tenant}: values it sets override the module’s defaults, and each company may override them.`;
  container.replaceChildren(el('p', { class: 'muted', text: about }), form);
}
