// What a page does besides showing: actions posted to the API, and showing the current page again
// (after an action, or soon while a job runs). `console.js` says how a page is shown.

import { api, enc } from './api.js';
import { say } from './dom.js';

let render = async () => {};
let following;

/** Sets how the current page is shown (console.js's `render`). */
export function renderWith(renderPage) {
  render = renderPage;
}

/** Shows the current page again in `ms` (a job still running); a render before then cancels it. */
export function renderSoon(ms) {
  following = setTimeout(() => render(), ms);
}

/** Cancels a pending {@link renderSoon}. */
export function stopFollowing() {
  clearTimeout(following);
}

export async function act(path, body) {
  try {
    await api(path, { method: 'POST', body });
    say('Done.');
  } catch (error) {
    say(error.message, true);
  }
  await render();
}

export async function startJob(path, body) {
  try {
    const { job } = await api(path, { method: 'POST', body });
    window.location.hash = `#/jobs/${enc(job.id)}`;
  } catch (error) {
    say(error.message, true);
  }
}
