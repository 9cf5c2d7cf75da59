import { describe, expect, it } from 'vitest';
import { createTokenAuthorizer, tokenDigest } from '../../src/index.js';

const ADMIN = 'admin-token-0123456789';
const READ = 'read-token-9876543210';

describe('token authorizer', () => {
  const both = createTokenAuthorizer({ admin: tokenDigest(ADMIN), read: tokenDigest(READ) });

  it('answers admin for the admin token and read for the read token', () => {
    expect(both.check(`Bearer ${ADMIN}`)).toEqual({ access: 'admin', presented: true });
    expect(both.check(`bearer   ${READ} `)).toEqual({ access: 'read', presented: true });
    expect([both.hasAdminToken, both.hasReadToken]).toEqual([true, true]);
  });

  it('tells a wrong token (presented) from no token', () => {
    expect(both.check('Bearer not-a-token-at-all')).toEqual({ access: 'none', presented: true });
    expect(both.check(undefined)).toEqual({ access: 'none', presented: false });
    // Only the Bearer form carries a token; a header given twice is no token either.
    expect(both.check(`Basic ${ADMIN}`)).toEqual({ access: 'none', presented: false });
    expect(both.check(`Bearer ${ADMIN} extra`)).toEqual({ access: 'none', presented: false });
    expect(both.check([`Bearer ${ADMIN}`, `Bearer ${ADMIN}`])).toEqual({ access: 'none', presented: false });
  });

  it('grants nothing when a token is not configured', () => {
    const readOnly = createTokenAuthorizer({ read: tokenDigest(READ) });
    expect(readOnly.check(`Bearer ${ADMIN}`)).toEqual({ access: 'none', presented: true });
    expect(readOnly.check(`Bearer ${READ}`).access).toBe('read');
    expect([readOnly.hasAdminToken, readOnly.hasReadToken]).toEqual([false, true]);
    const none = createTokenAuthorizer({});
    expect(none.check(`Bearer ${ADMIN}`)).toEqual({ access: 'none', presented: true });
    expect([none.hasAdminToken, none.hasReadToken]).toEqual([false, false]);
  });
});
