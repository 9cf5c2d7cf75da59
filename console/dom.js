// Building the page: elements from plain values (text stays text), links to in-page routes,
// tables, and the status line.

const status = document.getElementById('status');

/** Builds an element. Children that are strings become text nodes; attributes are set as attributes. */
export function el(tag, attributes = {}, ...children) {
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

export function button(label, onClick, attributes = {}) {
  const node = el('button', { type: 'button', ...attributes }, label);
  node.addEventListener('click', onClick);
  return node;
}

/** An in-page link: every part of the route is encoded, so a name cannot become another route. */
export function link(label, ...parts) {
  return el('a', { href: `#/${parts.map((p) => encodeURIComponent(p)).join('/')}` }, label);
}

export function stateOf(state) {
  return el('span', { class: `state state-${String(state).replace(/[^a-z-]/g, '')}` }, state);
}

export function table(headings, rows) {
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

export function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

export function keyValues(object) {
  const rows = Object.entries(object)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) =>
      el('tr', {}, el('th', {}, k), el('td', { class: 'text' }, typeof v === 'object' ? JSON.stringify(v) : String(v))),
    );
  return el('table', {}, el('tbody', {}, rows));
}
