// {{display_name}}'s console page: an ES module the Plinth console loads as it is (no build
// step). `plinth module publish` publishes this folder (the manifest's `frontend.bundle`)
// with the version; the console checks each file against the SHA-384 it was published with.
// The contract (docs/console.md): a default export with `init(context)` and
// `loadPage(page, container)`; `context.api` calls this module's own routes.

let context;

export default {
  init(given) {
    context = given;
  },
  async loadPage(page, container) {
    const hello = document.createElement('p');
    hello.dataset.hello = '';
    hello.textContent = `${context.configuration.greeting}, ${context.user.id}, from {{display_name}} (company ${context.company}).`;
    const status = document.createElement('p');
    status.setAttribute('role', 'status');
    status.textContent = 'Reading items…';
    container.replaceChildren(hello, status);
    try {
      const items = await context.api.get('/items');
      status.textContent = `${items.length} item(s) in GET /items.`;
    } catch (e) {
      status.textContent = `GET /items failed: ${e.message}`;
    }
  },
};
