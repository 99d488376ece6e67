// The marketplace (any signed-in user): the catalog filtered by category, tag and tier (the
// catalog API's own `?category=&tag=&tier=`), and a module's detail: its versions,
// permissions, dependencies and configuration schema.

import * as api from './api.js';
import { el, empty, loading, page, problem, when } from './dom.js';

const TIERS = ['free', 'basic', 'premium', 'enterprise'];

/** `#/admin/marketplace?category=…`: the filter lives in the fragment, so Back restores it. */
function filterOfHash() {
  const query = location.hash.split('?')[1] || '';
  const params = new URLSearchParams(query);
  return { category: params.get('category') || '', tag: params.get('tag') || '', tier: params.get('tier') || '', q: params.get('q') || '' };
}

function select(id, label, values, chosen) {
  const node = el('select', { id, name: id.replace('market-', '') },
    el('option', { value: '', text: `Any ${label.toLowerCase()}` }), ...values.map((v) => el('option', { value: v, text: v })));
  node.value = values.includes(chosen) ? chosen : '';
  return el('div', { class: 'field' }, el('label', { for: id, text: label }), node);
}

export async function marketplace({ main }) {
  const results = el('div', { class: 'module-body', 'aria-live': 'polite' }, loading());
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the marketplace' });
  main.replaceChildren(page('market-title', 'Marketplace',
    el('p', { class: 'muted', text: 'Every published module. Filter by category, tag and the subscription tier that may enable it.' }),
    form, results));
  let all;
  try {
    all = await api.call('GET', '/v1/modules');
  } catch (e) {
    results.replaceChildren(problem(e));
    return;
  }
  const chosen = filterOfHash();
  const categories = [...new Set(all.map((m) => m.category).filter(Boolean))].sort();
  const tags = [...new Set(all.flatMap((m) => m.tags || []))].sort();
  const search = el('input', { id: 'market-q', name: 'q', type: 'search', value: chosen.q });
  form.replaceChildren(
    el('div', { class: 'field' }, el('label', { for: 'market-q', text: 'Search' }), search),
    select('market-category', 'Category', categories, chosen.category),
    select('market-tag', 'Tag', tags, chosen.tag),
    select('market-tier', 'Tier', TIERS, chosen.tier),
    el('button', { type: 'submit', text: 'Filter' }));
  const show = async () => {
    const filter = new URLSearchParams();
    for (const name of ['category', 'tag', 'tier']) {
      const value = form.elements[name].value;
      if (value) filter.set(name, value);
    }
    results.replaceChildren(loading('Searching…'));
    try {
      const found = await api.call('GET', `/v1/modules${filter.toString() ? `?${filter}` : ''}`);
      const words = search.value.trim().toLowerCase();
      const matching = found.filter((m) => !words
        || [m.name, m.display_name, m.description || '', ...(m.tags || [])].join(' ').toLowerCase().includes(words));
      if (search.value.trim()) filter.set('q', search.value.trim());
      history.replaceState(null, '', `#/admin/marketplace${filter.toString() ? `?${filter}` : ''}`);
      results.replaceChildren(matching.length ? cards(matching) : empty('No module matches these filters.'));
    } catch (e) {
      results.replaceChildren(problem(e));
    }
  };
  form.addEventListener('submit', (event) => { event.preventDefault(); show(); });
  for (const node of form.querySelectorAll('select')) node.addEventListener('change', show);
  await show();
}

function cards(modules) {
  return el('ul', { class: 'market', id: 'market-results' }, ...modules.map((m) => el('li', { class: 'market-entry', 'data-market': m.name },
    el('h2', {}, el('a', { href: `#/admin/marketplace/${encodeURIComponent(m.name)}`, 'data-detail': m.name, text: m.display_name })),
    el('p', { text: m.description || '' }),
    el('p', { class: 'muted', text: `${m.category || 'no category'} · ${m.subscription_tier} tier · ${m.latest_version}` }),
    el('p', { class: 'tags' }, ...(m.tags || []).map((t) => el('span', { class: 'tag', text: t }))))));
}

/** `#/admin/marketplace/{module}`: the catalog entry and each published version. */
export async function moduleDetail({ main }, module) {
  const body = el('div', { class: 'module-body' }, loading());
  main.replaceChildren(page('detail-title', module, el('p', {}, el('a', { href: '#/admin/marketplace', text: '← Marketplace' })), body));
  try {
    const path = `/v1/modules/${encodeURIComponent(module)}`;
    const [entry, versions] = await Promise.all([api.call('GET', path), api.call('GET', `${path}/versions`)]);
    document.getElementById('detail-title').textContent = entry.display_name;
    const latest = versions.find((v) => v.version === entry.latest_version) || versions[0];
    const manifest = (latest && latest.manifest) || {};
    body.replaceChildren(
      el('p', { text: entry.description || '' }),
      el('dl', { class: 'facts' },
        el('dt', { text: 'Category' }), el('dd', { text: entry.category || '—' }),
        el('dt', { text: 'Tags' }), el('dd', { text: (entry.tags || []).join(', ') || '—' }),
        el('dt', { text: 'Tier' }), el('dd', { text: entry.subscription_tier }),
        el('dt', { text: 'Latest' }), el('dd', { text: entry.latest_version })),
      el('h2', { text: 'Versions' }), table('versions', ['Version', 'Published', 'By'],
        versions.map((v) => [v.version, when(v.published_at), v.published_by])),
      el('h2', { text: `Permissions (${latest ? latest.version : '—'})` }),
      (manifest.permissions || []).length
        ? table('permissions', ['Permission', 'What it allows'], manifest.permissions.map((p) => [p.code, p.description || '']))
        : empty('It declares no permission.'),
      el('h2', { text: 'Dependencies' }), dependencies(manifest.dependencies || {}),
      el('h2', { text: 'Configuration schema' }), schema(manifest.configuration || {}));
  } catch (e) {
    body.replaceChildren(problem(e));
  }
}

function table(name, headings, rows) {
  return el('table', { 'data-table': name },
    el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', { text: c }))))));
}

function dependencies(deps) {
  const rows = [];
  if (deps.platform_version) rows.push(['platform', deps.platform_version, 'required']);
  for (const r of deps.required_modules || []) rows.push([r.name, r.version || 'any', 'required']);
  for (const name of deps.optional_modules || []) rows.push([name, 'any', 'optional']);
  return rows.length ? table('dependencies', ['Needs', 'Version', 'Kind'], rows) : empty('No dependency.');
}

function schema(configuration) {
  const properties = (configuration.schema && configuration.schema.properties) || {};
  const required = new Set((configuration.schema && configuration.schema.required) || []);
  const defaults = configuration.defaults || {};
  const rows = Object.entries(properties).map(([name, p]) => {
    const limits = ['minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'enum']
      .filter((k) => p[k] !== undefined).map((k) => `${k} ${Array.isArray(p[k]) ? p[k].join('|') : p[k]}`).join(', ');
    return [name, p.type || '—', required.has(name) ? 'yes' : 'no',
      defaults[name] === undefined ? '—' : JSON.stringify(defaults[name]), [p.description, limits].filter(Boolean).join('; ')];
  });
  return rows.length ? table('schema', ['Key', 'Type', 'Required', 'Default', 'About'], rows) : empty('Nothing to configure.');
}
