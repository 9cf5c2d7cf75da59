// The Sluice web console: one ES module, no framework, no build step.
//
// Everything a message carries (bodies, headers, reasons, keys, error texts) reaches the page
// through `textContent` and attribute setters only, never as markup; the server's
// Content-Security-Policy allows no inline script either. The token is kept in sessionStorage
// (this tab only) and sent as a bearer header: no cookie, so no cross-site request can use it.

const API = new URL('../admin/v1/', window.location.href);
const TOKEN_KEY = 'sluice-console-token';
const view = document.getElementById('view');
const status = document.getElementById('status');

/** Builds an element. Children that are strings become text nodes; attributes are set as attributes. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) throw new Error('no event attributes: use addEventListener');
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function button(label, onClick, attributes = {}) {
  const node = el('button', { type: 'button', ...attributes }, label);
  node.addEventListener('click', onClick);
  return node;
}

/** An in-page link: every part of the route is encoded, so a name cannot become another route. */
function link(label, ...parts) {
  return el('a', { href: `#/${parts.map((p) => encodeURIComponent(p)).join('/')}` }, label);
}

function stateOf(state) {
  return el('span', { class: `state state-${String(state).replace(/[^a-z-]/g, '')}` }, state);
}

function table(headings, rows) {
  return el(
    'table',
    {},
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        headings.map((h) => el('th', {}, h)),
      ),
    ),
    el('tbody', {}, rows),
  );
}

function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(new URL(path, API), {
    method: options.method ?? 'GET',
    headers: {
      accept: 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    cache: 'no-store',
    credentials: 'omit',
  });
  const body = await response.json().catch(() => undefined);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function enc(value) {
  return encodeURIComponent(value);
}

// ---- pages ---------------------------------------------------------------------------------------

async function endpointsPage() {
  const data = await api('endpoints');
  const rows = data.endpoints.map((e) => {
    const reason = el('input', { placeholder: 'reason', 'aria-label': `trip reason for ${e.name}`, size: 18 });
    const ks = e.killSwitch;
    const trip = button('Trip', async () => {
      await act(`endpoints/${enc(e.name)}/kill-switch/trip`, {
        reason: reason.value.trim() || 'tripped from the console',
      });
    });
    trip.dataset.action = 'trip';
    const reset = button('Reset', async () => {
      await act(`endpoints/${enc(e.name)}/kill-switch/reset`, {});
    });
    reset.dataset.action = 'reset';
    const dead = e.deadLetters.count === null ? el('span', { class: 'muted' }, 'unknown') : e.deadLetters.count;
    return el(
      'tr',
      { 'data-endpoint': e.name },
      el('td', {}, link(e.name, 'endpoints', e.name)),
      el('td', {}, stateOf(e.state)),
      el('td', {}, stateOf(e.consumer.state), e.consumer.paused ? ' (paused)' : ''),
      el('td', { class: 'num' }, e.inFlight),
      el('td', { class: 'num' }, e.counters.received),
      el('td', { class: 'num' }, e.counters.completed),
      el('td', { class: 'num' }, e.counters.deadLettered),
      el(
        'td',
        { 'data-field': 'kill-switch' },
        stateOf(ks.state),
        ks.reason ? el('div', { class: 'text muted' }, ks.reason) : null,
      ),
      el('td', { class: 'num' }, link(String(dead), 'endpoints', e.name, 'dead-letters')),
      el('td', {}, el('div', { class: 'actions' }, reason, trip, reset)),
    );
  });
  return [
    el('h1', {}, 'Endpoints'),
    el('p', { class: 'muted' }, `Bus ${data.state} · transport ${data.transport.kind} ${data.transport.state}`),
    data.outbox
      ? el(
          'p',
          { class: 'muted', 'data-field': 'outbox' },
          `Outbox: ${data.outbox.depth} waiting · oldest ${(data.outbox.oldestAgeMs / 1000).toFixed(1)} s · ` +
            `${data.outbox.movedAside} moved aside`,
        )
      : null,
    table(
      [
        'endpoint',
        'state',
        'consumer',
        'in flight',
        'received',
        'completed',
        'dead-lettered',
        'kill switch',
        'dead letters',
        '',
      ],
      rows,
    ),
  ];
}

async function act(path, body) {
  try {
    await api(path, { method: 'POST', body });
    say('Done.');
  } catch (error) {
    say(error.message, true);
  }
  await render();
}

async function endpointPage(name) {
  const e = await api(`endpoints/${enc(name)}`);
  const lastFailure = e.killSwitch.lastFailure;
  return [
    el('h1', {}, `Endpoint ${name}`),
    el('p', {}, link('Dead letters', 'endpoints', name, 'dead-letters')),
    el('h2', {}, 'Kill switch'),
    keyValues({
      state: e.killSwitch.state,
      manual: e.killSwitch.manual,
      reason: e.killSwitch.reason,
      'tripped at': e.killSwitch.trippedAt,
      trips: e.killSwitch.trips,
      'last failure': lastFailure ? `${lastFailure.at} ${lastFailure.reason}: ${lastFailure.description}` : undefined,
    }),
    el('h2', {}, 'Consumer'),
    keyValues(e.consumer),
    el('h2', {}, 'Counters'),
    keyValues(Object.fromEntries(Object.entries(e.counters).filter(([, v]) => typeof v === 'number'))),
  ];
}

function keyValues(object) {
  const rows = Object.entries(object)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) =>
      el('tr', {}, el('th', {}, k), el('td', { class: 'text' }, typeof v === 'object' ? JSON.stringify(v) : String(v))),
    );
  return el('table', {}, el('tbody', {}, rows));
}

async function deadLettersPage(name) {
  const stats = await api(`endpoints/${enc(name)}/dead-letters/stats`);
  const sections = [
    el('h1', {}, `Dead letters of ${name}`),
    el(
      'p',
      { class: 'muted' },
      `${stats.scanned} looked at${stats.truncated ? ' (more exist past the scan limit)' : ''}`,
    ),
  ];
  if (stats.scanned === 0) sections.push(el('p', {}, 'No dead letters.'));
  for (const { reason, count } of stats.reasons) {
    const groups = stats.groups.filter((g) => g.reason === reason);
    sections.push(
      el('h2', { 'data-reason': reason }, `${reason} · ${count}`),
      table(
        ['failure', 'error type', 'message type', 'count', 'first', 'last', ''],
        groups.map((g) =>
          el(
            'tr',
            { 'data-group': g.id },
            el('td', { class: 'text' }, link(g.text || '(no text)', 'endpoints', name, 'groups', g.id)),
            el('td', {}, g.errorType),
            el('td', {}, g.messageType ?? ''),
            el('td', { class: 'num' }, g.count),
            el('td', {}, g.firstFailedAt ?? ''),
            el('td', {}, g.lastFailedAt ?? ''),
            el('td', {}, groupActions(name, g.id, g.count)),
          ),
        ),
      ),
    );
  }
  return sections;
}

function groupActions(name, group, count) {
  const reason = el('input', { placeholder: 'redrive reason', size: 16, 'aria-label': 'redrive reason' });
  const redrive = button('Redrive', async () => {
    await startJob(`endpoints/${enc(name)}/dead-letters/redrive`, {
      selection: { filter: { group } },
      reason: reason.value.trim() || 'redriven from the console',
    });
  });
  redrive.dataset.action = 'redrive';
  const purge = button(
    'Purge',
    async () => {
      if (!window.confirm(`Remove ${count} dead letters of this group for good?`)) return;
      await startJob(`endpoints/${enc(name)}/dead-letters/purge`, { selection: { filter: { group } }, expect: count });
    },
    { class: 'danger' },
  );
  purge.dataset.action = 'purge';
  return el('div', { class: 'actions' }, reason, redrive, purge);
}

async function startJob(path, body) {
  try {
    const { job } = await api(path, { method: 'POST', body });
    window.location.hash = `#/jobs/${enc(job.id)}`;
  } catch (error) {
    say(error.message, true);
  }
}

async function groupPage(name, group, cursor) {
  const query = new URLSearchParams({ group, limit: '50' });
  if (cursor) query.set('cursor', cursor);
  const page = await api(`endpoints/${enc(name)}/dead-letters?${query}`);
  const rows = page.items.map((d) =>
    el(
      'tr',
      { 'data-dead-letter': d.id },
      el('td', {}, link(d.messageId || d.id, 'endpoints', name, 'messages', d.id)),
      el('td', {}, d.messageType ?? ''),
      el('td', { class: 'text' }, d.text),
      el('td', {}, d.failedAt ?? ''),
      el('td', { class: 'num' }, d.attempts ?? ''),
    ),
  );
  return [
    el('h1', {}, `Failure group ${group}`),
    el('p', {}, link(`← dead letters of ${name}`, 'endpoints', name, 'dead-letters')),
    table(['message', 'type', 'failure', 'failed at', 'attempts'], rows),
    page.next ? link('Next page', 'endpoints', name, 'groups', group, page.next) : null,
  ];
}

async function messagePage(name, id) {
  const d = await api(`endpoints/${enc(name)}/dead-letters/messages/${enc(id)}`);
  let body = d.body.text;
  let shown = d.body.encoding === 'hex' ? 'hex (not UTF-8)' : 'text';
  if (d.body.encoding === 'utf8') {
    try {
      body = JSON.stringify(JSON.parse(d.body.text), null, 2);
      shown = 'JSON';
    } catch {
      // Not JSON: shown as the text it is.
    }
  }
  return [
    el('h1', {}, `Dead letter ${d.messageId || d.id}`),
    el('p', {}, link(`← dead letters of ${name}`, 'endpoints', name, 'dead-letters')),
    el('h2', {}, 'Fault'),
    keyValues(d.fault ?? { reason: d.reason, text: d.text }),
    el('h2', {}, 'Headers'),
    keyValues(d.headers),
    el('h2', {}, `Body · ${d.body.size} bytes · ${shown}`),
    el('pre', { 'data-field': 'body' }, body),
  ];
}

async function jobsPage() {
  const { jobs } = await api('jobs');
  return [
    el('h1', {}, 'Jobs'),
    table(
      ['job', 'kind', 'endpoint', 'state', 'done', 'created'],
      jobs.map((j) =>
        el(
          'tr',
          {},
          el('td', {}, link(j.id.slice(0, 8), 'jobs', j.id)),
          el('td', {}, j.kind),
          el('td', {}, j.endpoint),
          el('td', {}, stateOf(j.state)),
          el('td', { class: 'num' }, `${j.progress.done}/${j.progress.total ?? '?'}`),
          el('td', {}, j.createdAt),
        ),
      ),
    ),
  ];
}

let following;

async function jobPage(id) {
  const { job } = await api(`jobs/${enc(id)}`);
  const finished = ['succeeded', 'failed', 'cancelled'].includes(job.state);
  if (!finished) following = setTimeout(() => render(), 500);
  const { total, done, succeeded, missing } = job.progress;
  return [
    el('h1', {}, `${job.kind} of ${job.endpoint}`),
    el('p', { 'data-field': 'job-state' }, stateOf(job.state), job.error ? ` · ${job.error}` : ''),
    el('progress', { max: total ?? 1, value: total === null ? undefined : done }),
    el(
      'p',
      { 'data-field': 'job-progress' },
      `${done} of ${total ?? '?'} handled · ${succeeded} ${job.kind === 'redrive' ? 'moved' : 'removed'} · ${missing} no longer there`,
    ),
    finished ? null : button('Cancel', () => act(`jobs/${enc(id)}/cancel`, {}), { 'data-action': 'cancel' }),
    el('p', {}, link(`Dead letters of ${job.endpoint}`, 'endpoints', job.endpoint, 'dead-letters')),
  ];
}

// ---- explain -------------------------------------------------------------------------------------

/** Search a key; with one, its timeline (oldest first), the ordering guard's state and what to redrive. */
async function explainPage(key) {
  const input = el('input', { id: 'explain-key', placeholder: 'entity key', 'aria-label': 'entity key', size: 40 });
  if (key !== undefined) input.value = key;
  const form = el('form', { id: 'explain-form', class: 'actions' }, input, el('button', { type: 'submit' }, 'Explain'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (input.value !== '') window.location.hash = `#/explain/${enc(input.value)}`;
  });
  const content = [el('h1', {}, 'Explain a key'), form];
  if (key === undefined) return content;
  const data = await api(`explain/keys/${enc(key)}`);
  content.push(
    el('h2', {}, 'Key ', el('code', { id: 'explain-current-key' }, data.key)),
    el(
      'ul',
      { id: 'explain-guard' },
      data.guard.map((g) =>
        el(
          'li',
          { 'data-endpoint': g.endpoint },
          el('strong', {}, g.endpoint),
          ': ',
          g.lastApplied
            ? `${g.lastApplied.tombstone ? 'deleted' : 'at'} ${g.lastApplied.occurredAt} by message ${g.lastApplied.messageId}`
            : 'no version recorded',
          g.history ? '' : ' (this endpoint keeps no history)',
        ),
      ),
    ),
  );
  if (data.entries.length === 0) {
    content.push(el('p', { class: 'muted' }, 'Nothing recorded for this key.'));
  } else {
    const rows = data.entries.map((e) =>
      el(
        'tr',
        { 'data-outcome': e.outcome, 'data-message-id': e.messageId },
        el('td', {}, e.recordedAt),
        el('td', {}, e.endpoint),
        el(
          'td',
          {},
          e.inDeadLetterQueue ? link(e.messageId, 'endpoints', e.endpoint, 'messages', e.messageId) : e.messageId,
        ),
        el('td', {}, e.messageType),
        el('td', {}, e.occurredAt),
        el(
          'td',
          { class: 'text', 'data-field': 'summary' },
          e.summary,
          e.hint ? el('div', { class: 'error', 'data-field': 'hint' }, e.hint) : null,
        ),
        el(
          'td',
          { class: 'text' },
          e.caused.map((c) => el('div', {}, `${c.destinationKind} ${c.messageType} (${c.messageId})`)),
        ),
      ),
    );
    content.push(table(['recorded at', 'endpoint', 'message', 'type', 'occurred at', 'what happened', 'caused'], rows));
  }
  for (const s of data.deadLetters) {
    if (s.error) content.push(el('p', { class: 'error' }, `Dead letters of ${s.endpoint} not read: ${s.error}`));
    else if (s.truncated)
      content.push(
        el('p', { class: 'muted' }, `Dead letters of ${s.endpoint}: only the first ${s.scanned} looked at.`),
      );
  }
  return content;
}

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
  clearTimeout(following);
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
