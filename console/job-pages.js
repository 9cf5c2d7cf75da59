// The jobs' pages: the list, and one job followed until it ends.

import { act, renderSoon } from './actions.js';
import { api, enc } from './api.js';
import { button, el, link, stateOf, table } from './dom.js';

export async function jobsPage() {
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

export async function jobPage(id) {
  const { job } = await api(`jobs/${enc(id)}`);
  const finished = ['succeeded', 'failed', 'cancelled'].includes(job.state);
  if (!finished) renderSoon(500);
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
