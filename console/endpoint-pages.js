// The endpoints' pages: all of them with their kill switches, and one endpoint.

import { act } from './actions.js';
import { api, enc } from './api.js';
import { button, el, keyValues, link, stateOf, table } from './dom.js';

export async function endpointsPage() {
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

export async function endpointPage(name) {
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
