// The explain page: a key's timeline (oldest first), the ordering guard's state and what to redrive.

import { api, enc } from './api.js';
import { el, link, table } from './dom.js';

/** Search a key; with one, its timeline (oldest first), the ordering guard's state and what to redrive. */
export async function explainPage(key) {
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
