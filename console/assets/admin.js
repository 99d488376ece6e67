// The admin pages beyond the shell's first ones: which links each user's menu gets and which
// page a fragment (`#/admin/{page}/{rest}`) opens. Each page lives in its own file.

import { el } from './dom.js';
import { marketplace, moduleDetail } from './admin-marketplace.js';
import { tenantConfiguration, features, roles, auditLog } from './admin-tenant.js';
import { lifecycle } from './admin-lifecycle.js';
import { apiKeys, deadLetters } from './admin-operate.js';

const link = (admin, text) => el('li', {}, el('a', { href: `#/admin/${admin}`, 'data-admin': admin, text }));

/** Menu entries for `user`: the marketplace for everyone; tenant and platform pages by role. */
export function adminLinks(user) {
  const tenant = user.tenant_admin ? [link('roles', 'Roles and users'), link('audit', 'Audit log')] : [];
  const platform = user.platform_admin
    ? [link('lifecycle', 'Publish and install'), link('api-keys', 'API keys'), link('dead-letters', 'Dead letters')]
    : [];
  return { everyone: [link('marketplace', 'Marketplace')], tenant, platform };
}

/**
 * Shows the admin page `name` (with the rest of the fragment, `rest`) in `main`, as `context`
 * (`{user, company, main, rebuildMenu}`); false when no such page is open to the user.
 */
export function adminPage(name, rest, context) {
  const { user } = context;
  const pages = {
    marketplace: () => (rest[0] ? moduleDetail(context, rest[0]) : marketplace(context)),
    'tenant-config': () => user.tenant_admin && rest[0] && tenantConfiguration(context, rest[0]),
    features: () => user.tenant_admin && rest[0] && features(context, rest[0]),
    roles: () => user.tenant_admin && roles(context),
    audit: () => user.tenant_admin && auditLog(context),
    lifecycle: () => user.platform_admin && lifecycle(context, rest[0]),
    'api-keys': () => user.platform_admin && apiKeys(context, rest[0]),
    'dead-letters': () => user.platform_admin && deadLetters(context),
  };
  const open = Object.hasOwn(pages, name) && pages[name];
  if (!open) return false;
  const shown = open();
  if (!shown) return false;
  // From the menu, the page takes the focus (as a module's does); a page's own controls keep it.
  if (document.getElementById('menu').contains(document.activeElement)) context.main.focus();
  shown.catch((e) => console.warn(`admin page ${name}:`, e));
  return true;
}
