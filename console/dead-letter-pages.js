// An endpoint's dead letters: counts by reason and failure group (with redrive and purge), one
// group's page of messages, and one dead letter.

import { startJob } from './actions.js';
import { api, enc } from './api.js';
import { button, el, keyValues, link, table } from './dom.js';

export async function deadLettersPage(name) {
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

export async function groupPage(name, group, cursor) {
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

export async function messagePage(name, id) {
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
