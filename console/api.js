// The admin API as the page speaks to it: JSON over fetch, the token from sessionStorage as a bearer
// header (no cookie), failures as `ApiError`.

const API = new URL('../admin/v1/', window.location.href);
export const TOKEN_KEY = 'sluice-console-token';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, options = {}) {
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

export function enc(value) {
  return encodeURIComponent(value);
}
