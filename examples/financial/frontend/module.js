// The financial module's console page (an integrated ES module: no build step). The shell
// calls `init` with the tenant context, the company's resolved configuration and an API
// client for this module's routes, then `loadPage(page, container)`.

let context;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const percent = (rate) => `${Math.round(rate * 10000) / 100} %`;

function money(amount, currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency}`;
  }
}

async function invoicesPage(container) {
  const config = context.configuration;
  const api = context.api;
  const terms = el('p', { class: 'muted', 'data-terms': '' },
    `Company ${context.company}: numbers start with ${config.invoice_prefix}, tax ${percent(config.tax_rate)}, `
    + `${config.currency}, due in ${config.payment_terms_days} days.`);
  const customer = el('input', { id: 'invoice-customer', name: 'customer', required: '', autocomplete: 'organization' });
  const amount = el('input', { id: 'invoice-amount', name: 'amount', type: 'number', min: '0.01', step: '0.01', required: '', inputmode: 'decimal' });
  const description = el('input', { id: 'invoice-description', name: 'description' });
  const status = el('p', { role: 'status', class: 'status' });
  const form = el('form', { class: 'invoice-form', 'aria-labelledby': 'new-invoice' },
    el('h2', { id: 'new-invoice', text: 'New invoice' }),
    el('label', { for: 'invoice-customer', text: 'Customer' }), customer,
    el('label', { for: 'invoice-amount', text: `Amount before tax (${config.currency})` }), amount,
    el('label', { for: 'invoice-description', text: 'Description (optional)' }), description,
    el('button', { type: 'submit', text: 'Create invoice' }), status);
  const rows = el('tbody');
  const table = el('table', { 'aria-labelledby': 'invoice-list' },
    el('thead', {}, el('tr', {}, ...['Number', 'Customer', 'Subtotal', 'Tax', 'Total', 'Status'].map((h) => el('th', { scope: 'col', text: h })))),
    rows);
  const list = el('section', {}, el('h2', { id: 'invoice-list', text: 'Invoices' }), table);

  async function refresh() {
    const invoices = await api.get('/invoices');
    rows.replaceChildren(...invoices.map((invoice) => el('tr', { 'data-invoice': invoice.number },
      el('td', { text: invoice.number }),
      el('td', { text: invoice.customer }),
      el('td', { text: money(invoice.subtotal, invoice.currency) }),
      el('td', { text: `${money(invoice.tax, invoice.currency)} (${percent(invoice.tax_rate)})` }),
      el('td', { text: money(invoice.total, invoice.currency) }),
      el('td', { text: invoice.status }))));
    if (!invoices.length) rows.append(el('tr', {}, el('td', { colspan: '6', text: 'No invoice yet.' })));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.textContent = 'Creating…';
    try {
      const created = await api.post('/invoices', {
        customer: customer.value,
        amount: Number(amount.value),
        description: description.value,
      });
      status.textContent = `Created ${created.number}: ${money(created.total, created.currency)} with tax.`;
      form.reset();
      await refresh();
    } catch (e) {
      status.textContent = `Not created: ${e.message}`;
    }
  });

  container.replaceChildren(terms, form, list);
  await refresh();
}

export default {
  init(given) {
    context = given;
  },
  async loadPage(page, container) {
    if (page !== 'index' && page !== 'invoices') {
      container.replaceChildren(el('p', { text: `The financial module has no page ${page}.` }));
      return;
    }
    await invoicesPage(container);
  },
};
