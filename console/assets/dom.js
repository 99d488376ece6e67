// Small DOM helpers the admin pages share: elements, the three states of a page (loading,
// empty, error) and an API's refusal placed where it belongs.

/** `<tag attributes…>children</tag>`; `text` sets the text, `on…` adds a listener. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children);
  return node;
}

/** An error as an alert: the API's `detail` (and its `errors`, when no field shows them). */
export function problem(error, { withErrors = true } = {}) {
  const errors = (withErrors && error.problem && error.problem.errors) || [];
  const node = el('div', { class: 'error', role: 'alert' }, el('span', { text: error.message || String(error) }));
  if (errors.length) {
    node.append(el('ul', {}, ...errors.map((e) => el('li', { text: `${e.path}: ${e.message}` }))));
  }
  return node;
}

/** A page's loading state. */
export const loading = (what = 'Loading…') => el('p', { class: 'muted', role: 'status', text: what });

/** A page's empty state. */
export const empty = (what) => el('p', { class: 'muted empty', text: what });

/** A card with a title (`id` for its label), the way every admin page starts. */
export function page(id, title, ...children) {
  return el('section', { class: 'card admin-page', 'aria-labelledby': id }, el('h1', { id, text: title }), ...children);
}

/**
 * A labelled field: `{id, label, input, about?}`; returns the wrapper, whose `problem` element
 * shows the API's message about it.
 */
export function field({ id, label, input, about }) {
  const problemNode = el('p', { id: `${id}-problem`, class: 'field-problem', 'data-problem-for': id });
  input.id = id;
  input.setAttribute('aria-describedby', `${about ? `${id}-about ` : ''}${id}-problem`);
  const wrapper = el('div', { class: 'field' }, el('label', { for: id, text: label }), input,
    about ? el('p', { id: `${id}-about`, class: 'muted field-about', text: about }) : '', problemNode);
  return wrapper;
}

/** Takes away what an earlier refusal showed beside `form`'s fields. */
export function clearProblems(form) {
  for (const node of form.querySelectorAll('.field-problem')) node.textContent = '';
  for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
}

/**
 * Shows a refusal: each of its `errors` under the field whose `data-problem-for` its path maps
 * to (`fieldOf(path)` gives that field's id), the first such field focused; the rest in
 * `status`. Returns how many were placed beside fields.
 */
export function placeProblems(form, error, status, fieldOf) {
  clearProblems(form);
  const errors = (error.problem && error.problem.errors) || [];
  let placed = 0;
  for (const e of errors) {
    const id = fieldOf(String(e.path || ''));
    const node = id && form.querySelector(`[data-problem-for="${CSS.escape(id)}"]`);
    const input = id && document.getElementById(id);
    if (!node || !input) continue;
    node.textContent = e.message;
    input.setAttribute('aria-invalid', 'true');
    if (!placed) input.focus();
    placed += 1;
  }
  status.replaceChildren(placed ? el('span', { class: 'refused', text: `Refused: ${(error.problem && error.problem.detail) || error.message}` })
    : problem(error));
  return placed;
}

/** When a time (RFC 3339) was, in the reader's locale. */
export function when(at) {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? String(at || '') : date.toLocaleString();
}
