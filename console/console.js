// The Sluice web console: ES modules, no framework, no build step. This one routes and renders;
// the pages, the API client and the page-building helpers are the modules it imports.
//
// Everything a message carries (bodies, headers, reasons, keys, error texts) reaches the page
// through `textContent` and attribute setters only, never as markup; the server's
// Content-Security-Policy allows no inline script either. The token is kept in sessionStorage
// (this tab only) and sent as a bearer header: no cookie, so no cross-site request can use it.

import { renderWith, stopFollowing } from './actions.js';
import { ApiError, TOKEN_KEY } from './api.js';
import { deadLettersPage, groupPage, messagePage } from './dead-letter-pages.js';
import { el, say } from './dom.js';
import { endpointPage, endpointsPage } from './endpoint-pages.js';
import { explainPage } from './explain-page.js';
import { jobPage, jobsPage } from './job-pages.js';

const view = document.getElementById('view');

// ---- routing ---------------------------------------------------------------------------------------

/** The page for a hash route; each part was encoded by `link`, so it decodes to what it was. */
function pageFor(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [first, name, section, id, cursor] = parts;
  if (first === 'jobs') return name ? () => jobPage(name) : jobsPage;
  if (first === 'explain') return () => explainPage(name);
  if (first === 'endpoints' && name) {
    if (section === 'dead-letters') return () => deadLettersPage(name);
    if (section === 'groups' && id) return () => groupPage(name, id, cursor);
    if (section === 'messages' && id) return () => messagePage(name, id);
    return () => endpointPage(name);
  }
  return endpointsPage;
}

async function render() {
  stopFollowing();
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    view.replaceChildren(el('p', {}, 'Enter a read or admin token above.'));
    return;
  }
  try {
    const content = await pageFor(window.location.hash)();
    view.replaceChildren(...content.filter(Boolean));
  } catch (error) {
    const text = error instanceof ApiError && error.status === 401 ? 'The token is missing or wrong.' : error.message;
    view.replaceChildren(el('p', { class: 'error' }, text));
    say(text, true);
  }
}

renderWith(render);
document.getElementById('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('token');
  if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = '';
  say('');
  render();
});
document.getElementById('token-forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  render();
});
window.addEventListener('hashchange', () => {
  say('');
  render();
});
render();
