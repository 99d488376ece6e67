// The warehouse module's console page (an integrated ES module: no build step): the
// company's stock items from `GET /items`, items running low marked (the configuration's
// `low_stock_threshold`), and a form that adds an item (`POST /items`).

import { el } from './dom.js';

let context;

async function itemsPage(container) {
  const config = context.configuration;
  const api = context.api;
  const about = el('p', { class: 'muted' },
    `Company ${context.company}: items at or below ${config.low_stock_threshold} ${config.default_unit} are marked low.`);
  const rows = el('tbody');
  const table = el('table', { 'aria-labelledby': 'item-list' },
    el('thead', {}, el('tr', {}, ...['SKU', 'Item', 'In stock', 'Level'].map((h) => el('th', { scope: 'col', text: h })))),
    rows);
  const sku = el('input', { id: 'item-sku', name: 'sku', required: '', autocomplete: 'off' });
  const name = el('input', { id: 'item-name', name: 'name', required: '' });
  const quantity = el('input', { id: 'item-quantity', name: 'quantity', type: 'number', min: '0', step: '1', value: '0', inputmode: 'numeric' });
  const status = el('p', { role: 'status', class: 'status' });
  const form = el('form', { class: 'invoice-form', 'aria-labelledby': 'new-item' },
    el('h2', { id: 'new-item', text: 'New item' }),
    el('label', { for: 'item-sku', text: 'SKU' }), sku,
    el('label', { for: 'item-name', text: 'Name' }), name,
    el('label', { for: 'item-quantity', text: `Quantity (${config.default_unit})` }), quantity,
    el('button', { type: 'submit', text: 'Add item' }), status);

  async function refresh() {
    const items = await api.get('/items');
    rows.replaceChildren(...items.map((item) => el('tr', { 'data-item': item.sku },
      el('td', { text: item.sku }),
      el('td', { text: item.name }),
      el('td', { text: `${item.quantity} ${item.unit}` }),
      el('td', { text: item.quantity <= config.low_stock_threshold ? 'low' : 'ok' }))));
    if (!items.length) rows.append(el('tr', {}, el('td', { colspan: '4', text: 'No item yet.' })));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.textContent = 'Adding…';
    try {
      const added = await api.post('/items', { sku: sku.value, name: name.value, quantity: Number(quantity.value) });
      status.textContent = `Added ${added.sku}.`;
      form.reset();
      await refresh();
    } catch (e) {
      status.textContent = `Not added: ${e.message}`;
    }
  });

  container.replaceChildren(about,
    el('section', {}, el('h2', { id: 'item-list', text: 'Stock' }), table), form);
  await refresh();
}

export default {
  init(given) {
    context = given;
  },
  async loadPage(page, container) {
    if (page !== 'index' && page !== 'items') {
      container.replaceChildren(el('p', { text: `The warehouse module has no page ${page}.` }));
      return;
    }
    await itemsPage(container);
  },
};
