// Platform admin: a module's API keys (issue, rotate, revoke; a new key is shown once) and
// the platform's dead letters, replayed on request.

import * as api from './api.js';
import { el, empty, field, loading, page, problem, when } from './dom.js';

const enc = encodeURIComponent;

/** `#/admin/api-keys[/{module}]`. */
export async function apiKeys({ main }, preselected) {
  const moduleSelect = el('select', { name: 'module' });
  const grace = el('input', { name: 'grace', type: 'number', min: '0', max: '31536000', step: '1', value: '3600' });
  const issue = el('button', { type: 'button', 'data-key-op': 'issue', text: 'Issue a key' });
  const rotate = el('button', { type: 'button', class: 'secondary', 'data-key-op': 'rotate', text: 'Rotate' });
  const status = el('div', { role: 'status', class: 'status' });
  const secret = el('div', { id: 'new-secret', 'aria-live': 'polite' });
  const list = el('div', { class: 'module-body' }, loading());
  main.replaceChildren(page('keys-title', 'API keys',
    el('p', { class: 'muted', text: 'A module’s backend calls the platform with its key. A new key is shown once; the platform keeps only its hash.' }),
    el('form', { class: 'admin-form', novalidate: true, 'aria-label': 'API keys of a module', onsubmit: (e) => e.preventDefault() },
      field({ id: 'keys-module', label: 'Module', input: moduleSelect }),
      field({ id: 'keys-grace', label: 'Rotation grace (seconds)', input: grace,
        about: 'Rotate issues a key and the module’s other keys stop working this long after.' }),
      el('div', { class: 'actions' }, issue, rotate), status),
    secret, el('h2', { id: 'keys-list-title', text: 'Keys' }), list));

  const show = async () => {
    list.replaceChildren(loading());
    const module = moduleSelect.value;
    try {
      const keys = await api.call('GET', `/v1/modules/${enc(module)}/api-keys`);
      list.replaceChildren(keys.length ? el('table', { 'aria-labelledby': 'keys-list-title', 'data-table': 'keys' },
        el('thead', {}, el('tr', {}, ...['Key', 'Id', 'Created', 'Works until', ''].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, ...keys.map((key) => {
          const revoke = el('button', { type: 'button', class: 'small danger', 'data-revoke': key.id,
            'aria-label': `Revoke key ${key.prefix}…`, text: 'Revoke' });
          revoke.addEventListener('click', async () => {
            // A first press arms the button; the second revokes (no dialog to get lost in).
            if (!revoke.dataset.armed) {
              revoke.dataset.armed = 'yes';
              revoke.textContent = 'Confirm revoke';
              revoke.setAttribute('aria-label', `Confirm: revoke key ${key.prefix}…`);
              return;
            }
            revoke.disabled = true;
            try {
              await api.call('DELETE', `/v1/modules/${enc(module)}/api-keys/${enc(key.id)}`);
              status.textContent = `Key ${key.prefix}… revoked.`;
              await show();
            } catch (e) {
              revoke.disabled = false;
              status.replaceChildren(problem(e));
            }
          });
          return el('tr', { 'data-key': key.id }, el('td', {}, el('code', { text: `${key.prefix}…` })),
            el('td', { text: key.id }), el('td', { text: when(key.created_at) }),
            el('td', { text: key.expires_at ? when(key.expires_at * 1000) : 'until revoked' }), el('td', {}, revoke));
        })))
        : empty(`${module} has no key.`));
    } catch (e) {
      list.replaceChildren(problem(e));
    }
  };
  const issueKey = async (rotating) => {
    secret.replaceChildren();
    status.replaceChildren(loading(rotating ? 'Rotating…' : 'Issuing…'));
    const module = moduleSelect.value;
    try {
      const body = rotating ? { rotate_after_secs: Number(grace.value) } : undefined;
      const issued = await api.call('POST', `/v1/modules/${enc(module)}/api-keys`, body);
      const value = el('input', { id: 'new-secret-value', readonly: true, value: issued.key, 'aria-describedby': 'new-secret-about' });
      secret.replaceChildren(el('div', { class: 'secret', role: 'region', 'aria-labelledby': 'new-secret-label' },
        el('label', { id: 'new-secret-label', for: 'new-secret-value', text: `New key of ${module}` }), value,
        el('p', { id: 'new-secret-about', class: 'muted', text: 'Copy it now: it is shown this once and cannot be read again.' })));
      value.focus();
      value.select();
      status.textContent = rotating
        ? `Issued key ${issued.id}; ${module}’s other keys stop working in ${grace.value} s.` : `Issued key ${issued.id}.`;
      status.dataset.issued = issued.id;
      await show();
    } catch (e) {
      const errors = (e.problem && e.problem.errors) || [];
      const node = document.querySelector('[data-problem-for="keys-grace"]');
      node.textContent = errors.filter((x) => x.path === 'rotate_after_secs').map((x) => x.message).join(' ');
      if (node.textContent) grace.setAttribute('aria-invalid', 'true');
      status.replaceChildren(problem(e));
    }
  };
  issue.addEventListener('click', () => issueKey(false));
  rotate.addEventListener('click', () => issueKey(true));
  moduleSelect.addEventListener('change', () => { secret.replaceChildren(); show(); });
  try {
    const catalog = await api.call('GET', '/v1/modules');
    moduleSelect.replaceChildren(...catalog.map((m) => el('option', { value: m.name, text: m.display_name })));
    if (catalog.some((m) => m.name === preselected)) moduleSelect.value = preselected;
    if (!catalog.length) {
      list.replaceChildren(empty('No module is published.'));
      return;
    }
    await show();
  } catch (e) {
    list.replaceChildren(problem(e));
  }
}

/** `#/admin/dead-letters`: what the bus could not deliver, and a replay. */
export async function deadLetters({ main }) {
  const replay = el('button', { type: 'button', id: 'replay', text: 'Replay all', disabled: true });
  const status = el('div', { role: 'status', class: 'status' });
  const list = el('div', { class: 'module-body' }, loading());
  main.replaceChildren(page('dead-title', 'Dead letters',
    el('p', { class: 'muted', text: 'Events a module’s backend did not accept after every retry, oldest first. A replay delivers each again to its rule’s current target; delivered ones are forgotten.' }),
    el('div', { class: 'actions' }, replay), status, list));
  const table = (letters) => el('table', { 'aria-labelledby': 'dead-title', 'data-table': 'dead-letters' },
    el('thead', {}, el('tr', {}, ...['Failed', 'Module', 'Event', 'Target', 'Why', 'Attempts'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...letters.map((d) => el('tr', { 'data-dead-letter': d.id },
      el('td', { text: when(d.failed_at) }), el('td', { text: d.module }),
      el('td', { text: `${d.event['detail-type']} (${d.event.source})` }), el('td', { class: 'detail', text: d.target }),
      el('td', { class: 'detail', text: d.reason }), el('td', { text: String(d.attempts) })))));
  const show = async () => {
    list.replaceChildren(loading());
    try {
      const letters = await api.call('GET', '/v1/dead-letters');
      replay.disabled = !letters.length;
      list.replaceChildren(letters.length ? table(letters) : empty('No dead letters: every event was delivered.'));
    } catch (e) {
      replay.disabled = true;
      list.replaceChildren(problem(e));
    }
  };
  replay.addEventListener('click', async () => {
    replay.disabled = true;
    status.replaceChildren(loading('Replaying…'));
    try {
      const outcome = await api.call('POST', '/v1/dead-letters/replay');
      status.textContent = `Replayed: ${outcome.delivered} delivered, ${outcome.failed.length} failed again.`;
    } catch (e) {
      status.replaceChildren(problem(e));
    }
    await show();
  });
  await show();
}
